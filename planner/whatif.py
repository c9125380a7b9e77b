"""What-if orchestration: scenario -> workload -> policies -> runs -> oracle -> ratios.

This is `planner simulate` without the terminal: it takes resolved inputs and
returns a `WhatIfReport` value that the CLI renders as a table, JSON, plots and
HTML. Progress is reported through a callback so the module holds no UI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from policies.spec import PolicySpecBase
from sim.engine import Engine, make_context
from sim.errors import PolicyError, ScenarioError
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

HOUR_S = 3600.0
EngineName = Literal["fluid", "des"]
ENGINES: tuple[EngineName, ...] = ("fluid", "des")

#: Called before each stage with a short label ("workload", "oracle", a policy name).
ProgressFn = Callable[[str], None]


def make_engine(name: str) -> Engine:
    """The engine a `--engine` flag names (imported lazily: each pulls in numba or SimPy)."""
    if name == "fluid":
        from sim.fluid import FluidEngine

        return FluidEngine()
    if name == "des":
        from sim.des import DesEngine

        return DesEngine()
    raise ScenarioError(f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")


def build_scenario_workload(scenario: Scenario) -> Workload:
    """The scenario's workload with its window and scaling applied."""
    from sim.workload import build_workload

    return build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)


def resolve_policies(names: Sequence[str]) -> list[PolicySpecBase]:
    """Registry specs for policy names (`hpa`, `bundle:PATH`, ...), in order.

    Raises:
        PolicyError: A name is unknown, a bundle is unreadable, or a name repeats.
    """
    from policies.registry import resolve

    specs = [resolve(name.strip()) for name in names if name.strip()]
    if not specs:
        raise PolicyError("no policy named; pass --policies NAME[,NAME...]")
    seen: dict[str, str] = {}
    for name, spec in zip(names, specs, strict=True):
        label = spec.display_name()
        if label in seen:
            raise PolicyError(
                f"policies {seen[label]!r} and {name!r} both display as {label!r}; "
                "give one a distinct name (e.g. a bundle with its own spec name)"
            )
        seen[label] = name
    return specs


def build_history(scenario: Scenario) -> Workload | None:
    """The trace before the scenario's window, for policies that fit on history.

    Scaled by the same factor as the window (so a forecaster sees the level it will
    run at); None when the window starts at the trace's beginning or the workload
    is synthetic. Modulation and token overrides shape the run, not the history.
    """
    from sim.workload import load_trace, mean_rps, observed_s, scale_to_mean, slice_window

    spec = scenario.workload
    if spec.start_h <= 0.0 or spec.format == "synthetic" or spec.path is None:
        return None
    raw = load_trace(scenario.resolve_path(spec.path), spec.format, spec.bin_s)
    start_s = spec.start_h * HOUR_S
    end_s = raw.duration_s if spec.duration_h is None else start_s + spec.duration_h * HOUR_S
    if start_s >= raw.duration_s:
        return None  # build_workload reports the bad window with the full message
    history = slice_window(raw, 0.0, start_s)
    if spec.scale_mean_rps is None:
        return history
    window = slice_window(raw, start_s, min(end_s, raw.duration_s))
    if (
        min(observed_s(history), observed_s(window)) <= 0
        or min(mean_rps(history), mean_rps(window)) <= 0
    ):
        # An all-gap history carries nothing to fit; an empty window is reported by
        # build_workload with the full message.
        return None
    factor = spec.scale_mean_rps / mean_rps(window)
    return scale_to_mean(history, mean_rps(history) * factor, np.random.default_rng(scenario.seed))


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python numbers, NaN/inf to None (no data)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if np.isfinite(number) else None
    return value


@dataclass(frozen=True)
class OracleSummary:
    """The offline optimum's totals (the reference every policy is divided by)."""

    cost_usd: float
    gpu_hours: float
    #: SLO attainment the capacity model predicts for the oracle's schedule (0..1).
    predicted_attainment: float
    #: Ready replicas per decision interval.
    schedule: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"cost_usd": json_safe(self.cost_usd), "gpu_hours": json_safe(self.gpu_hours)}

    def ratio(self, cost_usd: float) -> float | None:
        """`cost_usd` as a multiple of the oracle's cost; None when the oracle costs nothing."""
        return cost_usd / self.cost_usd if self.cost_usd > 0 else None


@dataclass(frozen=True)
class WhatIfReport:
    """Everything one what-if run produced, ready to render."""

    scenario: Scenario
    engine: str
    seed: int
    workload: Workload
    replica_capacity_rps: float
    oracle: OracleSummary
    results: tuple[RunResult, ...]
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `planner simulate --json` document (schema in docs/cli.md)."""
        return {
            "scenario": self.scenario.model_dump(mode="json", exclude={"base_dir"}),
            "engine": self.engine,
            "seed": self.seed,
            "oracle": self.oracle.to_json(),
            "results": [json_safe(result.summary()) for result in self.results],
        }


def solve_reference(scenario: Scenario, workload: Workload) -> OracleSummary:
    """Run the oracle and keep what the report needs."""
    from sim.oracle import solve_oracle

    solved = solve_oracle(scenario, workload)
    return OracleSummary(
        cost_usd=float(solved.cost_usd),
        gpu_hours=float(solved.gpu_hours),
        predicted_attainment=float(solved.predicted_attainment),
        schedule=tuple(float(v) for v in solved.replicas),
    )


@dataclass(frozen=True)
class _Task:
    """One unit of a what-if run, shippable to a worker process: a policy or the oracle."""

    scenario: Scenario
    workload: Workload
    history: Workload | None
    engine: str
    seed: int
    spec: PolicySpecBase | None  # None: the oracle


def _run_task(task: _Task) -> tuple[RunResult | OracleSummary, float]:
    """Run one task; return its outcome and its own wall-clock seconds."""
    started = time.perf_counter()
    if task.spec is None:
        return solve_reference(task.scenario, task.workload), time.perf_counter() - started
    result = make_engine(task.engine).run(
        task.scenario, task.workload, task.spec.build(), seed=task.seed, history=task.history
    )
    if result.policy != task.spec.display_name():
        result = replace(result, policy=task.spec.display_name())
    return result, time.perf_counter() - started


#: Workloads at least this long run their policies in parallel by default: below it,
#: starting worker processes (imports, JIT cache loads) costs more than it saves.
PARALLEL_FROM_S = 6 * HOUR_S


def default_workers(workload: Workload, runs: int) -> int:
    """Processes for `runs` independent runs: one for short workloads, else up to the CPUs."""
    if workload.duration_s < PARALLEL_FROM_S:
        return 1
    return max(1, min(runs, os.cpu_count() or 1))


def run_whatif(
    scenario: Scenario,
    *,
    engine: str = "fluid",
    seed: int | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> WhatIfReport:
    """Run every policy of `scenario` and the oracle on its workload.

    Args:
        scenario: A resolved scenario (overrides already applied); its `policies`
            list names the policies to compare.
        engine: `fluid` (fast, per-second) or `des` (request by request).
        seed: Seed of every stochastic path; default the scenario's seed.
        workers: Processes running policies (and the oracle) side by side; None
            picks `default_workers`. Results do not depend on it.
        progress: Optional callback told the name of each stage as it starts.

    Returns:
        The report, results in the order the policies were named.
    """
    from planner.executor import LocalExecutor

    tell = progress or (lambda _label: None)
    run_seed = scenario.seed if seed is None else seed
    timings: dict[str, float] = {}
    # Resolve policies and the engine before the (possibly slow) trace load, so a typo
    # in a policy name fails at once.
    specs = resolve_policies(scenario.policies)
    make_engine(engine)

    tell("loading the workload")
    started = time.perf_counter()
    workload = build_scenario_workload(scenario)
    history = build_history(scenario)
    timings["workload"] = time.perf_counter() - started

    tasks = [_Task(scenario, workload, history, engine, run_seed, spec) for spec in [*specs, None]]
    processes = workers if workers is not None else default_workers(workload, len(tasks))
    outcomes: list[tuple[RunResult | OracleSummary, float]] = []
    if processes <= 1:
        for task in tasks:
            tell("oracle" if task.spec is None else task.spec.display_name())
            outcomes.append(_run_task(task))
    else:
        tell(f"{len(specs)} policies and the oracle on {processes} processes")
        with LocalExecutor(max_workers=processes) as pool:
            outcomes = pool.map(_run_task, tasks)

    results: list[RunResult] = []
    oracle: OracleSummary | None = None
    for outcome, elapsed_s in outcomes:
        if isinstance(outcome, OracleSummary):
            oracle = outcome
            timings["oracle"] = elapsed_s
        else:
            results.append(outcome)
            timings[f"policy:{outcome.policy}"] = elapsed_s
    assert oracle is not None  # the last task is always the oracle

    context = make_context(scenario, workload, np.random.default_rng(run_seed))
    return WhatIfReport(
        scenario=scenario,
        engine=engine,
        seed=run_seed,
        workload=workload,
        replica_capacity_rps=context.replica_capacity_rps,
        oracle=oracle,
        results=tuple(replace(r, cost_vs_oracle=oracle.ratio(r.cost_usd)) for r in results),
        timings_s=timings,
    )
