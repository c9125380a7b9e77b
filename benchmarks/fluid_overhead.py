"""Benchmark: how much of a fluid run is the compiled kernel, how much Python.

For each preset on the 14-day ServeGen m-small scenario of `whatif_14d.py`, the
wall time of the policy's fluid run over the wall time of the compiled kernel
alone on the same run (a fixed policy with one decision interval spanning the
whole horizon: the kernel advances every second, Python runs once). Arrivals
are sampled once and shared, as in a what-if. Goal: <= 1.5x for every preset.

Prints a table, then as its last line one JSON object with the figures,
`cpu_count` and package versions.

Usage:
    .venv/bin/python benchmarks/fluid_overhead.py [--mean-rps X] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version
from typing import Any

from rich.console import Console
from rich.table import Table
from whatif_14d import TRACE
from whatif_14d import scenario as whatif_scenario  # benchmarks/ is on sys.path as a script

from planner.inputs import build_history, build_scenario_workload
from policies.registry import resolve
from sim.fluid import FluidEngine
from sim.replay import FixedPolicy

PRESETS = ["fixed:16", "hpa", "aws-target-tracking", "threshold", "step", "scheduled",
           "predictive", "anomaly"]  # fmt: skip
PACKAGES = ("scaleplan", "numpy", "numba")


def _best_of(repeat: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mean-rps", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    scenario = whatif_scenario(TRACE, args.mean_rps)
    workload = build_scenario_workload(scenario)
    history = build_history(scenario)
    engine = FluidEngine()
    engine.run(scenario, workload, FixedPolicy(16), seed=0)  # compile, sample, cache
    horizon = scenario.model_copy(update={"decision_interval_s": float(workload.duration_s)})
    kernel_s = _best_of(args.repeat, lambda: engine.run(horizon, workload, FixedPolicy(16), seed=0))
    rows: dict[str, dict[str, float]] = {}
    for name in PRESETS:
        spec = resolve(name)
        run_s = _best_of(
            args.repeat,
            lambda spec=spec: engine.run(scenario, workload, spec.build(), seed=0, history=history),
        )
        rows[name] = {"run_s": run_s, "ratio": run_s / kernel_s}

    days = workload.duration_s / 86400
    title = f"fluid run / kernel-only ({days:.0f} d, {scenario.decision_interval_s:g} s decisions)"
    table = Table(title=title, title_justify="left")
    for column in ("policy", "run s", "x kernel"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    table.add_row("kernel only", f"{kernel_s:.2f}", "1.00")
    for name, row in rows.items():
        table.add_row(name, f"{row['run_s']:.2f}", f"{row['ratio']:.2f}")
    Console(width=100).print(table)
    figures = {
        "benchmark": "fluid_overhead",
        "kernel_only_s": kernel_s,
        "runs": rows,
        "worst_ratio": max(r["ratio"] for r in rows.values()),
        "load_before": load_before,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in PACKAGES},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
