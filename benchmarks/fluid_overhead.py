"""Benchmark: how much of a fluid run is the compiled kernel, how much Python.

For each preset on the 14-day ServeGen m-small scenario of `whatif_14d.py`, the
wall time of the policy's whole fluid run (set-up, the policy's fit, every
decision) over the time spent inside the compiled kernel during that same run
(each kernel call timed, in a second run of the same policy right after: the
timing wrapper itself is left out of the run's wall time). The ratio is the
median over `--repeat` such pairs, the times the fastest of them. Arrivals are
sampled once and shared, as in a what-if. Goal: <= 1.5x for every preset. (A
single interval spanning the whole horizon is no baseline: the kernel's
per-second work depends on the capacity the decisions chose.)

The kernel-timed run also times each change of the fleet (`Fleet.set_desired`).
`--clock cpu` times CPU instead of wall time (the process's CPU for the run, the
thread's around each kernel call): on a machine shared with other work, wall time
also counts the time the run waits for a core, and the ratios move by 0.1-0.3x
from one run to the next; CPU time moves by about 0.05x.

Prints a table, then as its last line one JSON object with the figures,
`cpu_count` and package versions. With `--check`, each preset is also run asked at
every tick (`sim.replay.AskedEveryTick`, which hides its quiet spans and bands) and
its bill, attainment and every change with its reason must be the same as the
run's; the table says so ("same as asked").

Usage:
    .venv/bin/python benchmarks/fluid_overhead.py [--mean-rps X] [--repeat N] [--clock cpu]
        [--policies hpa,threshold] [--check] [--start-h H]

`--start-h H` runs the trace from hour H to its end, the hours before it the
policies' history: from 96 the forecasting presets fit their forecasts (and so run
without bands), instead of falling back to reactive sizing for want of history.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
from machine_info import machine
from rich.console import Console
from rich.table import Table
from whatif_14d import TRACE
from whatif_14d import scenario as whatif_scenario  # benchmarks/ is on sys.path as a script

from planner.inputs import build_history, build_scenario_workload
from policies.registry import resolve
from sim.contract import Policy
from sim.control import ControlLoop
from sim.engine import make_context
from sim.fluid import FluidEngine
from sim.fluid import quiet_kernel as Q
from sim.fluid.serverless import ServerlessRun
from sim.replay import AskedEveryTick, FixedPolicy
from sim.scenario import Scenario
from sim.workload.model import Workload

PRESETS = ["fixed:16", "hpa", "aws-target-tracking", "threshold", "step", "scheduled",
           "predictive", "anomaly"]  # fmt: skip
PACKAGES = ("scaleplan", "numpy", "numba")


def timed_run(
    engine: FluidEngine,
    scenario: Scenario,
    workload: Workload,
    policy: Policy,
    history: Workload | None,
    *,
    time_kernel: bool = True,
    cpu: bool = False,
    changes: list[float] | None = None,
) -> tuple[float, float]:
    """(seconds of the whole run, seconds inside the compiled kernel), as
    `FluidEngine.run` does it, with the kernel calls timed one by one (NaN without
    `time_kernel`: then nothing is added to the run). Wall time, or with `cpu` the
    process's CPU time for the run and the thread's around each kernel call. With
    `changes`, each change of the fleet (`Fleet.set_desired`) is timed too and
    [seconds, changes] added to it."""
    run_clock = time.process_time if cpu else time.perf_counter
    call_clock = time.thread_time if cpu else time.perf_counter
    started = run_clock()
    run = engine.start(scenario, workload, 0)
    assert not isinstance(run, ServerlessRun), "the scenario is an instance pool"
    kernel, spent = run._kernel, [0.0 if time_kernel else float("nan")]

    def timed(*args: Any) -> Any:
        began = call_clock()
        reading = kernel(*args)
        spent[0] += call_clock() - began
        return reading

    # a quiet span (a fixed capacity, a schedule) runs its intervals in one compiled
    # call instead (`kernel.advance_quiet`): timed the same way
    quiet = Q.advance_quiet

    def timed_quiet(*args: Any) -> Any:
        began = call_clock()
        reading = quiet(*args)
        spent[0] += call_clock() - began
        return reading

    if time_kernel:
        run._kernel = timed
        Q.advance_quiet = timed_quiet  # type: ignore[assignment]
    if changes is not None:
        set_desired = run.fleet.set_desired

        def timed_change(desired: int, reason: str, now_s: float) -> None:
            began = call_clock()
            set_desired(desired, reason, now_s)
            changes[0] += call_clock() - began
            changes[1] += 1

        run.fleet.set_desired = timed_change  # type: ignore[method-assign]
    policy_rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[1])
    context = make_context(scenario, workload, policy_rng, history=history)
    loop = ControlLoop(policy, run.actuators(), context)
    loop.reset()
    try:
        run.simulate(loop, 0)
    finally:
        Q.advance_quiet = quiet
    return run_clock() - started, spent[0]


def same_as_asked(
    engine: FluidEngine, scenario: Scenario, workload: Workload, name: str,
    history: Workload | None,
) -> bool:  # fmt: skip
    """Whether `name`'s run is the run asked at every tick: bill, attainment, changes."""
    runs = [
        engine.run(scenario, workload, policy, seed=0, history=history)
        for policy in (resolve(name).build(), AskedEveryTick(resolve(name).build()))
    ]
    banded, asked = runs
    return (banded.cost_usd, banded.slo_attainment, banded.decisions) == (
        asked.cost_usd, asked.slo_attainment, asked.decisions,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mean-rps", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per preset; the fastest")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--policies", default=",".join(PRESETS), help="comma-separated")
    parser.add_argument("--check", action="store_true", help="compare with the asked run")
    parser.add_argument("--start-h", type=float, default=0.0, help="hours of history first")
    args = parser.parse_args()
    cpu = args.clock == "cpu"
    load_before = os.getloadavg()[0]
    scenario = whatif_scenario(TRACE, args.mean_rps)
    if args.start_h:
        window = {"start_h": args.start_h, "duration_h": 14 * 24 - args.start_h}
        scenario = scenario.model_copy(
            update={"workload": scenario.workload.model_copy(update=window)}
        )
    workload = build_scenario_workload(scenario)
    history = build_history(scenario)
    engine = FluidEngine()
    engine.run(scenario, workload, FixedPolicy(16), seed=0)  # compile, sample, cache
    rows: dict[str, dict[str, float]] = {}
    for name in args.policies.split(","):
        runs, kernels, changes = [], [], [0.0, 0.0]
        for _ in range(args.repeat):
            plain, _ = timed_run(
                engine, scenario, workload, resolve(name).build(), history, time_kernel=False,
                cpu=cpu,
            )  # fmt: skip
            _, kernel_s = timed_run(
                engine, scenario, workload, resolve(name).build(), history, cpu=cpu,
                changes=changes,
            )  # fmt: skip
            runs.append(plain)
            kernels.append(kernel_s)
        ratio = float(np.median([r / k for r, k in zip(runs, kernels, strict=True)]))
        per_change_us = changes[0] / changes[1] * 1e6 if changes[1] else float("nan")
        rows[name] = {
            "run_s": min(runs), "kernel_s": min(kernels), "ratio": ratio,
            "changes": changes[1] / args.repeat, "change_us": per_change_us,
        }  # fmt: skip
        if args.check:
            rows[name]["same_as_asked"] = same_as_asked(engine, scenario, workload, name, history)

    days = workload.duration_s / 86400
    title = (
        f"fluid run / kernel-only, {args.clock} time ({days:.0f} d, "
        f"{scenario.decision_interval_s:g} s decisions)"
    )
    table = Table(title=title, title_justify="left")
    columns = ["policy", "run s", "kernel s", "x kernel", "changes", "us a change"]
    for column in columns + (["same as asked"] if args.check else []):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in rows.items():
        cells = [
            name, f"{row['run_s']:.2f}", f"{row['kernel_s']:.2f}", f"{row['ratio']:.2f}",
            f"{row['changes']:.0f}", f"{row['change_us']:.1f}",
        ]  # fmt: skip
        if args.check:
            cells.append("yes" if row["same_as_asked"] else "NO")
        table.add_row(*cells)
    Console(width=110).print(table)
    figures = {
        "benchmark": "fluid_overhead",
        "runs": rows,
        "worst_ratio": max(r["ratio"] for r in rows.values()),
        "clock": args.clock,
        "load_before": load_before,
        **machine(PACKAGES),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
