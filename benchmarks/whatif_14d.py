"""Benchmark: a 14-day what-if on the ServeGen m-small trace, six policies plus the oracle.

The fluid engine, end to end as `planner simulate` runs it (trace loading
included), on the machine at hand. Prints a table of per-stage timings and the
policies' results, then, as its last line, one JSON object with the figures,
`cpu_count` and package versions. Goal (issue 8): under 8 s wall-clock on a quiet 2-core machine.

Usage:
    .venv/bin/python benchmarks/whatif_14d.py [--trace DIR] [--mean-rps X]
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
from rich.table import Table

from planner.report.table import whatif_table
from planner.whatif import run_whatif
from sim.scenario import Scenario, scenario_from_dict

# The shared traces sit beside the repository (../shared/traces, see its README).
TRACE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "servegen" / "m-small"
POLICIES = ["hpa", "aws-target-tracking", "threshold", "step", "predictive", "fixed"]
PACKAGES = ("scaleplan", "numpy", "numba", "scipy", "pandas", "statsmodels", "pydantic")


def scenario(trace: Path, mean_rps: float) -> Scenario:
    """The default scenario's cluster and SLO on the full 14-day trace, rescaled."""
    data: dict[str, Any] = {
        "name": "servegen-m-small-14d",
        "description": "ServeGen m-small, 14 days, scaled; g5.xlarge node pool",
        "workload": {"format": "servegen", "path": str(trace), "scale_mean_rps": mean_rps},
        "pool": {
            "kind": "gpu-node-pool",
            "instance_type": "g5.xlarge",
            "min_replicas": 2,
            "max_replicas": 64,
            "initial_replicas": 16,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "policies": POLICIES,
        "seed": 0,
    }
    return scenario_from_dict(data, "benchmark scenario", Path.cwd())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--mean-rps", type=float, default=20.0)
    args = parser.parse_args()

    console = Console(width=140)
    # The machine may be shared: record its load so timings can be read in context.
    load_before = os.getloadavg()[0]
    wall_start = time.perf_counter()
    setup_start = time.perf_counter()
    resolved = scenario(args.trace, args.mean_rps)
    setup_s = time.perf_counter() - setup_start
    report = run_whatif(resolved, engine="fluid")
    wall_s = time.perf_counter() - wall_start

    timings = {"setup": setup_s, **report.timings_s}
    table = Table(title="whatif_14d stage timings (s)", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in timings.items():
        table.add_row(stage, f"{seconds:.2f}")
    table.add_row("[bold]total wall-clock[/bold]", f"[bold]{wall_s:.2f}[/bold]")
    table.caption = "stages after the workload run side by side on worker processes"
    table.width = 72
    console.print(table)
    console.print(whatif_table(report))

    figures: dict[str, Any] = {
        "benchmark": "whatif_14d",
        "trace": str(args.trace),
        "horizon_h": report.workload.duration_s / 3600.0,
        "mean_rps": args.mean_rps,
        "engine": "fluid",
        "wall_s": round(wall_s, 3),
        "stage_s": {k: round(v, 3) for k, v in timings.items()},
        "oracle_cost_usd": round(report.oracle.cost_usd, 2),
        "results": {
            r.policy: {
                "cost_usd": round(r.cost_usd, 2),
                "cost_vs_oracle": None if r.cost_vs_oracle is None else round(r.cost_vs_oracle, 3),
                "slo_attainment": round(r.slo_attainment, 5),
                "scaling_actions": r.scaling_actions,
            }
            for r in report.results
        },
        "goal_s": 30.0,
        "ran_on": report.ran_on,
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        **machine(PACKAGES),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
