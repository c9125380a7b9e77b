"""Benchmark: the verified oracle alone (`planner.oracle.solve_reference`) on a long run.

The what-if benchmarks time the oracle beside the policies; this one times only the
oracle, CPU and wall-clock, on the scenario of `whatif_14d.py` (14 days of ServeGen
m-small, 2..64 replicas) or of `volatile_8w.py` (8 weeks of NAB Twitter FB, 1..4,000),
`--repeat` times in one process (the first run includes loading the compiled kernels
from numba's cache). CPU time is the steadier figure on a machine shared with other
work. Prints one JSON object per run: cost, attainment, the winning plan, replays.

Usage:
    .venv/bin/python benchmarks/oracle_alone.py [--case 14d|8w] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import volatile_8w  # benchmarks/ is on sys.path as a script
import whatif_14d
from machine_info import machine

from planner.oracle import solve_reference
from planner.runs import scenario_inputs

PACKAGES = ("scaleplan", "numpy", "numba")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("14d", "8w"), default="14d")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.case == "8w":
        scenario = volatile_8w.scenario(volatile_8w.TRACE, 96.0)
    else:
        scenario = whatif_14d.scenario(whatif_14d.TRACE, 20.0)
    workload, _ = scenario_inputs(scenario)
    for run in range(args.repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        oracle = solve_reference(scenario, workload)
        figures = {
            "benchmark": "oracle_alone",
            "case": args.case,
            "run": run,
            "cost_usd": oracle.cost_usd,
            "attainment": oracle.attainment,
            "chosen": oracle.chosen,
            "replays": oracle.replays,
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall,
            "load_1m": os.getloadavg()[0],
            **machine(PACKAGES),
        }
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
