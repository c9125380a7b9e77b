"""What-if orchestration: scenario -> workload -> policies -> runs -> oracle -> ratios.

This is `planner simulate` without the terminal: it takes resolved inputs and
returns a `WhatIfReport` value that the CLI renders as a table, JSON, plots and
HTML. Progress is reported through a callback so the module holds no UI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.executor import Executor, LocalExecutor
from planner.inputs import HOUR_S, resolve_policies
from planner.json_values import json_safe
from planner.oracle import OracleSummary
from planner.runs import OracleTask, RunTask, Task, run_task, run_tasks, scenario_inputs
from sim.engine import make_context
from sim.engines import make_engine
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

#: Called before each stage with a short label ("workload", "oracle", a policy name).
ProgressFn = Callable[[str], None]


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
    #: Where the runs went: "1 process", "2 processes", or the executor's name.
    ran_on: str = "1 process"

    def to_json(self) -> dict[str, Any]:
        """The `planner simulate --json` document (schema in docs/cli.md)."""
        return {
            "scenario": self.scenario.model_dump(mode="json", exclude={"base_dir"}),
            "engine": self.engine,
            "seed": self.seed,
            "oracle": self.oracle.to_json(),
            "results": [json_safe(result.summary()) for result in self.results],
        }


#: Workloads at least this long may run their policies on more than one process:
#: below it, starting worker processes (imports, JIT cache loads) costs more than
#: the runs. Measured with benchmarks/whatif_14d.py on 2 idle cores: 14 days and
#: six policies take 13.7 s in one process and 9.0 s on two.
PARALLEL_FROM_S = 7 * 24 * HOUR_S


#: Samples of the runnable processes (`/proc/loadavg`), this far apart.
_RUNNABLE_SAMPLES, _RUNNABLE_GAP_S = 5, 0.01


def default_workers(workload: Workload, runs: int) -> int:
    """Processes for `runs` independent runs: one unless the workload is long and the
    machine has idle cores.

    Idle cores are the CPU count less the cores other work keeps busy (`busy_cores`):
    on a busy machine extra workers only compete with the work already there (two
    workers were 1.6x slower than one on a loaded 2-core machine).
    """
    if workload.duration_s < PARALLEL_FROM_S:
        return 1
    busy = busy_cores()
    if busy is None:  # no load average on this platform: assume busy, stay serial
        return 1
    return max(1, min(runs, (os.cpu_count() or 1) - busy))


def busy_cores() -> int | None:
    """Cores other work keeps busy: the 1-minute load average, rounded, but no more
    than the other processes runnable now where the system says (Linux), the most of
    a few samples over 40 ms. The average lags: for a minute after a run ends it still
    counts it (a what-if started right after another read 0.6 and ran on one worker,
    8.7 s instead of 6.0). None without a load average."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    busy = round(load)
    others = runnable_others()
    return busy if others is None else min(busy, others)


def runnable_others() -> int | None:
    """Processes other than this one running or ready to run now (None: not known)."""
    most = None
    for sample in range(_RUNNABLE_SAMPLES):
        if sample:
            time.sleep(_RUNNABLE_GAP_S)
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                runnable = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        # (the count includes this process, which is running while it reads)
        most = runnable - 1 if most is None else max(most, runnable - 1)
    return most


def _counting(tell: ProgressFn, total: int, where: str) -> Callable[[int], None]:
    """Progress for tasks running side by side: how many of them have finished."""
    return lambda done: tell(f"{done} of {total} runs done (policies and the oracle, {where})")


def run_whatif(
    scenario: Scenario,
    *,
    engine: str = "fluid",
    seed: int | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> WhatIfReport:
    """Run every policy of `scenario` and the oracle on its workload.

    Args:
        scenario: A resolved scenario (overrides already applied); its `policies`
            list names the policies to compare.
        engine: `fluid` (fast, per-second) or `des` (request by request).
        seed: Seed of every stochastic path; default the scenario's seed.
        workers: Local processes running policies (and the oracle) side by side;
            None picks `default_workers`. Results do not depend on it.
        progress: Optional callback told the name of each stage as it starts.
        executor: Where the runs go (e.g. a `RayExecutor`); default local processes.

    Returns:
        The report, results in the order the policies were named.
    """
    tell = progress or (lambda _label: None)
    run_seed = scenario.seed if seed is None else seed
    timings: dict[str, float] = {}
    # Resolve policies and the engine before the (possibly slow) trace load, so a typo
    # in a policy name fails at once.
    specs = resolve_policies(scenario.policies)
    make_engine(engine)
    seeded = (
        scenario if scenario.seed == run_seed else scenario.model_copy(update={"seed": run_seed})
    )

    tell("loading the workload")
    started = time.perf_counter()
    workload, _ = scenario_inputs(seeded)
    timings["workload"] = time.perf_counter() - started

    # The oracle first: it is among the longest tasks, and on several workers a long one
    # handed out last leaves the others idle while it finishes.
    tasks: list[Task] = [OracleTask(seeded, engine, run_seed)]
    tasks += [RunTask(seeded, spec, run_seed, engine) for spec in specs]
    if executor is None:
        processes = workers if workers is not None else default_workers(workload, len(tasks))
        ran_on = "1 process"
        if processes <= 1:
            outcomes = []
            for task in tasks:
                tell("oracle" if isinstance(task, OracleTask) else task.spec.display_name())
                outcomes.append(run_task(task))
        else:
            where = ran_on = f"{processes} processes"
            tell(f"{len(specs)} policies and the oracle on {where}")
            with LocalExecutor(max_workers=processes) as pool:
                outcomes = run_tasks(tasks, pool, _counting(tell, len(tasks), where))
    else:
        ran_on = executor.name
        tell(f"{len(specs)} policies and the oracle on {executor.name}")
        outcomes = run_tasks(tasks, executor, _counting(tell, len(tasks), executor.name))

    reference, *runs = outcomes
    oracle = reference.oracle
    timings["oracle"] = reference.elapsed_s
    for outcome in runs:
        timings[f"policy:{outcome.run.policy}"] = outcome.elapsed_s

    context = make_context(seeded, workload, np.random.default_rng(run_seed))
    return WhatIfReport(
        scenario=scenario,
        engine=engine,
        seed=run_seed,
        workload=workload,
        replica_capacity_rps=context.replica_capacity_rps,
        oracle=oracle,
        results=tuple(replace(o.run, cost_vs_oracle=oracle.ratio(o.run.cost_usd)) for o in runs),
        timings_s=timings,
        ran_on=ran_on,
    )
