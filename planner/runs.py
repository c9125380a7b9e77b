"""The planner's two units of work, mapped over an `Executor` by every command.

`RunTask` is one policy on one scenario and seed; `OracleTask` is the offline
optimum of one scenario. What-if, sweep and tune all build these and hand them to
`run_tasks`, which maps `run_task` over a local or Ray executor. A task carries
only the scenario (small, picklable); each process loads the scenario's workload
and history once (`scenario_inputs`) and keeps one engine per name, so the fluid
engine's sampled arrivals are shared by every policy of a (workload, seed).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from planner.executor import Executor
from planner.inputs import build_history, build_scenario_workload
from planner.oracle import OracleSummary, solve_reference
from policies.spec import PolicySpecBase
from sim.engine import Engine
from sim.engines import make_engine
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload


@dataclass(frozen=True)
class RunTask:
    """One policy on one scenario and seed, in one engine."""

    scenario: Scenario
    spec: PolicySpecBase
    seed: int
    engine: str = "fluid"


@dataclass(frozen=True)
class OracleTask:
    """The offline optimum of one scenario, verified by replay in `engine` on `seed`
    (default the scenario's seed): the same arrivals every policy of that seed sees."""

    scenario: Scenario
    engine: str = "fluid"
    seed: int | None = None


Task = RunTask | OracleTask


@dataclass(frozen=True)
class TaskOutcome:
    """What a task produced and how long it took (its own wall-clock seconds)."""

    task: Task
    result: RunResult | OracleSummary
    elapsed_s: float

    @property
    def run(self) -> RunResult:
        assert isinstance(self.result, RunResult), "not a policy run"
        return self.result

    @property
    def oracle(self) -> OracleSummary:
        assert isinstance(self.result, OracleSummary), "not an oracle"
        return self.result


@functools.lru_cache(maxsize=8)
def _inputs(scenario_json: str) -> tuple[Workload, Workload | None]:
    scenario = Scenario.model_validate_json(scenario_json)
    return build_scenario_workload(scenario), build_history(scenario)


def scenario_inputs(scenario: Scenario) -> tuple[Workload, Workload | None]:
    """The scenario's workload and history, loaded once per process."""
    return _inputs(scenario.model_dump_json())


@functools.cache
def engine_named(name: str) -> Engine:
    """One engine per name per process (engines keep per-workload caches)."""
    return make_engine(name)


def execute_run(task: RunTask) -> RunResult:
    """Run one policy; the result carries the spec's display name."""
    workload, history = scenario_inputs(task.scenario)
    result = engine_named(task.engine).run(
        task.scenario, workload, task.spec.build(), seed=task.seed, history=history
    )
    label = task.spec.display_name()
    return result if result.policy == label else replace(result, policy=label)


def run_task(task: Task) -> TaskOutcome:
    """Worker function: a policy run or an oracle solve (module level, so it ships)."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    # One BLAS thread per task: tasks run side by side on the executor's processes,
    # and the forecasters' small solves only spin extra threads (see forecasters.py).
    with threadpool_limits(limits=1, user_api="blas"):
        if isinstance(task, OracleTask):
            workload, _ = scenario_inputs(task.scenario)
            outcome: RunResult | OracleSummary = solve_reference(
                task.scenario, workload, engine=engine_named(task.engine), seed=task.seed
            )
        else:
            outcome = execute_run(task)
    return TaskOutcome(task, outcome, time.perf_counter() - started)


def run_tasks(
    tasks: Sequence[Task], executor: Executor, on_done: Callable[[int], None] | None = None
) -> list[TaskOutcome]:
    """Every task's outcome, in order, run wherever `executor` puts them; `on_done(k)`
    is told when k of them have finished."""
    return executor.map(run_task, list(tasks), on_done)
