"""Benchmark: quiet spans (`sim.control.drive`) on the 14-day what-if (or 8 weeks), on and off.

A schedule replay or a fixed capacity says when its request may next change, so the
control loop skips the ticks in between and the fluid run advances over them in one
compiled call. This times, in one process and alternated, the same work with the
spans taken and with the loop asking at every tick as it did before them (the
policy wrapped so it hides `next_change_tick`; for the oracle, whose policies are
built inside `planner.oracle`, `sim.control.quiet_run` answering None):

- a `fixed:16` fluid run of the 14 days (80,640 decision ticks of 15 s), best of
  `--repeats`, and checks both runs' results are the same bit for bit;
- `planner.oracle.solve_reference` on the same scenario (`--oracle-rounds` each),
  and checks both bills are the same to the digit.

`--case 8w` does the same on `benchmarks/volatile_8w.py`'s scenario (8 weeks of
NAB FB traffic, 293,620 ticks, a fleet of up to 4,000 replicas).

Prints one line per timing, then, as its last line, one JSON object with the
figures, the load average, `cpu_count` and package versions.

Usage:
    .venv/bin/python benchmarks/quiet_spans.py [--case 14d|8w] [--repeats N]
        [--oracle-rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import volatile_8w  # benchmarks/ is on sys.path as a script
import whatif_14d
from machine_info import machine

import sim.control
import sim.fluid.checkpoint
from planner.oracle import solve_reference
from sim.engines import make_engine
from sim.fluid import FluidEngine
from sim.replay import AskedEveryTick, FixedPolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.build import build_workload

PACKAGES = ("scaleplan", "numpy", "numba")


@contextlib.contextmanager
def spans_off() -> Iterator[None]:
    """Every loop asks at every tick (the oracle's policies cannot be wrapped)."""
    taken = sim.control.quiet_run

    def never(run: object, loop: object) -> None:
        del run, loop

    sim.control.quiet_run = never
    sim.fluid.checkpoint.quiet_run = never
    try:
        yield
    finally:
        sim.control.quiet_run = taken
        sim.fluid.checkpoint.quiet_run = taken


def same(a: RunResult, b: RunResult) -> bool:
    """Every field of two results, the series array by array."""
    for spec in dataclasses.fields(RunResult):
        x, y = getattr(a, spec.name), getattr(b, spec.name)
        if spec.name == "series":
            columns = (c.name for c in dataclasses.fields(x))
            if not all(
                np.array_equal(getattr(x, c), getattr(y, c), equal_nan=True) for c in columns
            ):
                return False
        elif x != y and not (isinstance(x, float) and np.isnan(x) and np.isnan(y)):
            return False
    return True


def case_scenario(case: str) -> tuple[Scenario, Path]:
    """The benchmark's scenario (the one its own benchmark runs) and its trace."""
    if case == "8w":
        return volatile_8w.scenario(volatile_8w.TRACE, 96.0), volatile_8w.TRACE
    return whatif_14d.scenario(whatif_14d.TRACE, 20.0), whatif_14d.TRACE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("14d", "8w"), default="14d")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oracle-rounds", type=int, default=2)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    resolved, trace = case_scenario(args.case)
    workload = build_workload(resolved.workload, resolved.resolve_path, seed=0)

    engine = FluidEngine()
    engine.run(resolved, workload, FixedPolicy(16), seed=0)  # sampling and compilation
    fixed_s: dict[str, list[float]] = {"quiet": [], "asked": []}
    results: dict[str, RunResult] = {}
    for _ in range(args.repeats):
        modes = (("quiet", FixedPolicy(16)), ("asked", AskedEveryTick(FixedPolicy(16))))
        for mode, policy in modes:
            start = time.perf_counter()
            results[mode] = engine.run(resolved, workload, policy, seed=0)
            fixed_s[mode].append(time.perf_counter() - start)
            print(f"fixed:16 {mode}: {fixed_s[mode][-1]:.2f} s", flush=True)
    fixed_same = same(results["quiet"], results["asked"])

    oracle_s: dict[str, list[float]] = {"quiet": [], "asked": []}
    bills: dict[str, set[float]] = {"quiet": set(), "asked": set()}
    replays = 0
    for _ in range(args.oracle_rounds):
        for mode in ("asked", "quiet"):
            with spans_off() if mode == "asked" else contextlib.nullcontext():
                start = time.perf_counter()
                summary = solve_reference(resolved, workload, engine=make_engine("fluid"))
                oracle_s[mode].append(time.perf_counter() - start)
            bills[mode].add(summary.cost_usd)
            replays = summary.replays
            took = oracle_s[mode][-1]
            print(f"oracle {mode}: {took:.2f} s, USD {summary.cost_usd!r}", flush=True)

    figures: dict[str, Any] = {
        "benchmark": "quiet_spans",
        "case": args.case,
        "trace": str(trace),
        "ticks": len(results["quiet"].series.time_s),
        "fixed16_s": {k: [round(v, 3) for v in s] for k, s in fixed_s.items()},
        "fixed16_best_s": {k: round(min(s), 3) for k, s in fixed_s.items()},
        "fixed16_same_result": fixed_same,
        "oracle_s": {k: [round(v, 2) for v in s] for k, s in oracle_s.items()},
        "oracle_cost_usd": {k: sorted(b) for k, b in bills.items()},
        "oracle_same_bill": len(bills["quiet"] | bills["asked"]) == 1,
        "oracle_replays": replays,
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        **machine(PACKAGES),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
