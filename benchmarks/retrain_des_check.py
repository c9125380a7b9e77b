"""Benchmark: a retraining contest's candidates scored again in the SimPy engine.

The contest (`benchmarks/retrain_volatile.py`) scores in the fluid engine. This
replays chosen candidates of one case, with the exact specs the contest printed in
its last JSON line, on the same scoring window and seed in both engines, so the
fluid engine's verdict can be checked against the request-level one.

Usage:
    .venv/bin/python benchmarks/retrain_volatile.py --cases FB --trials 8 > fb.log
    .venv/bin/python benchmarks/retrain_des_check.py --log fb.log --case FB \\
        --labels hpa-tuned,aws-target-tracking-tuned [--seed 0]

Prints one line per candidate and engine (attainment, cost, wall seconds) and, as
its last line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from machine_info import machine
from retrain_volatile import PACKAGES, nab_case, servegen_case

from planner.runs import RunTask, execute_run
from planner.tune import scale_factor, windowed
from policies.kinds import spec_from_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="retrain_volatile.py's output")
    parser.add_argument("--case", required=True, help="FB, IBM, KO, CRM or servegen")
    parser.add_argument("--labels", required=True, help="candidate labels, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = json.loads(args.log.read_text().strip().splitlines()[-1])["cases"][args.case]
    candidates = {c["label"]: c for c in figures["candidates"]}
    scenario, _train = servegen_case() if args.case == "servegen" else nab_case(args.case)
    start_h, duration_h = figures["windows"]["score_h"]
    score = windowed(scenario, (start_h, duration_h), scale_factor(scenario))
    rows: list[dict[str, Any]] = []
    for label in args.labels.split(","):
        spec = spec_from_dict(candidates[label]["spec"])
        for engine in ("fluid", "des"):
            started = time.perf_counter()
            result = execute_run(RunTask(score, spec, args.seed, engine))
            wall_s = time.perf_counter() - started
            rows.append(
                {
                    "label": label,
                    "engine": engine,
                    "slo_attainment": result.slo_attainment,
                    "cost_usd": result.cost_usd,
                    "wall_s": wall_s,
                }
            )
            print(
                f"{label:<28} {engine:<6} {result.slo_attainment:7.2%}  "
                f"USD {result.cost_usd:10,.0f}  {wall_s:6.0f} s",
                flush=True,
            )
    summary = {
        "benchmark": "retrain_des_check",
        "case": args.case,
        "seed": args.seed,
        "rows": rows,
        **machine(PACKAGES),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
