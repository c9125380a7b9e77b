"""Benchmark: eight weeks of volatile traffic on a large fleet, every preset plus the oracle.

NAB's Twitter volume for FB (5-minute bins, 2015-02-26 to 2015-04-23), scaled to a
20 req/s mean so its peaks reach about 1,400 req/s, on a g5.xlarge node pool of
1 to 4,000 replicas (initial 8), SLO 95 % within 25 s. A what-if's cost must grow
with the traffic's own work, not with the fleet's size: every preset and the
oracle, end to end as `planner simulate` runs them (trace loading included).
Goal: under 60 s wall-clock on a quiet 2-core machine.

Prints per-stage timings and the results, then, as its last line, one JSON object
with the figures, `cpu_count` and package versions.

Usage:
    .venv/bin/python benchmarks/volatile_8w.py [--trace FILE] [--start-h H]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from machine_info import machine
from rich.console import Console

from planner.report.table import whatif_table
from planner.whatif import run_whatif
from policies.registry import list_presets
from sim.scenario import Scenario, scenario_from_dict

TRACE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "nab" / "Twitter_volume_FB.csv"
PACKAGES = ("scaleplan", "numpy", "numba", "scipy", "statsmodels")


def scenario(trace: Path, start_h: float) -> Scenario:
    data: dict[str, Any] = {
        "name": "nab-twitter-fb-8w",
        "description": "NAB Twitter volume FB, 8 weeks, scaled to 20 req/s; g5.xlarge, max 4000",
        "workload": {
            "format": "nab", "path": str(trace), "scale_mean_rps": 20.0, "start_h": start_h,
        },
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 1, "max_replicas": 4000, "initial_replicas": 8,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "policies": [name for name in list_presets() if name != "spillover"],
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "benchmark scenario", Path.cwd())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--start-h", type=float, default=96.0)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    report = run_whatif(scenario(args.trace, args.start_h), engine="fluid")
    wall_s = time.perf_counter() - started
    console = Console(width=150)
    console.print(whatif_table(report))
    for stage, seconds in report.timings_s.items():
        console.print(f"  {stage:<32} {seconds:7.2f} s")
    console.print(f"  {'total wall-clock':<32} {wall_s:7.2f} s (load before {load_before:.1f})")
    figures = {
        "benchmark": "volatile_8w",
        "wall_s": wall_s,
        "days": report.workload.duration_s / 86400.0,
        "timings_s": report.timings_s,
        "oracle_cost_usd": report.oracle.cost_usd,
        "results": {
            r.policy: {"cost_vs_oracle": r.cost_vs_oracle, "slo_attainment": r.slo_attainment}
            for r in report.results
        },
        "load_before": load_before,
        **machine(PACKAGES),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
