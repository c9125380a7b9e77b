"""Sweeps: a grid of scenarios x policies x parameters x seeds, run through an Executor.

A sweep file (YAML)::

    scenarios: [default, scenarios/flash.yaml]   # "default" = the bundled scenario
    policies: [threshold, hpa]
    grid:                                        # per policy name: field -> values
      threshold: {upper: [0.7, 0.8], lower: [0.3, 0.4]}
    seeds: [0, 1]
    engine: fluid
    start_h: 0          # optional window applied to every scenario
    duration_h: 6

Each grid point is applied to the policy's spec with `model_copy(update=...)` and
re-validated, so a misspelt field or a bad value fails before anything runs.
Each seed is one replication (it seeds the workload's sampling and the engine);
the oracle runs once per scenario and seed, and every row carries its cost ratio
to it.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.executor import Executor
from planner.inputs import check_policies, resolve_policies
from planner.json_values import json_safe
from planner.runs import OracleTask, RunTask, Task, TaskOutcome, execute_run, run_tasks
from planner.scenario_input import ClusterOverrides, WorkloadOverrides, resolve_scenario
from planner.spec_update import updated_spec
from policies.spec import PolicySpecBase
from sim.engines import EngineName
from sim.errors import PolicyError, ScenarioError
from sim.result import RunResult
from sim.scenario import Scenario, format_validation, read_yaml

DEFAULT_SCENARIO = "default"


class SweepFile(BaseModel):
    """The validated content of a sweep YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: list[str] = Field(default_factory=lambda: [DEFAULT_SCENARIO], min_length=1)
    policies: list[str] = Field(min_length=1)
    grid: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    engine: EngineName = "fluid"
    start_h: float | None = Field(default=None, ge=0.0)
    duration_h: float | None = Field(default=None, gt=0.0)
    scale_mean_rps: float | None = Field(default=None, gt=0.0)


@dataclass(frozen=True)
class SweepCase:
    """One run: a scenario, a (parameterised) policy spec, a seed. Pickles for executors."""

    scenario_label: str
    scenario: Scenario
    policy_label: str
    spec: PolicySpecBase
    params: dict[str, Any]
    seed: int
    engine: str


@dataclass(frozen=True)
class SweepPlan:
    """All cases of a sweep, plus the distinct scenarios they were expanded from."""

    scenarios: dict[str, Scenario]
    cases: tuple[SweepCase, ...]

    def size(self) -> int:
        return len(self.cases)


@dataclass(frozen=True)
class SweepRow:
    """The outcome of one case (a flat record for tables, CSV and JSON)."""

    scenario: str
    policy: str
    params: dict[str, Any]
    seed: int
    engine: str
    cost_usd: float
    gpu_hours: float
    slo_attainment: float
    p50_latency_s: float
    p95_latency_s: float
    p99_latency_s: float
    dropped: int
    scaling_actions: int
    meets_slo: bool
    cost_vs_oracle: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (numpy scalars converted, NaN as null)."""
        return dict(json_safe(asdict(self)))


def _param_label(params: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in params.items())


def _grid_points(axes: dict[str, list[Any]], where: str) -> list[dict[str, Any]]:
    for name, values in axes.items():
        if not values:
            raise ScenarioError(f"{where}.{name}: empty list of values; give at least one")
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def load_sweep(path: Path, cluster: ClusterOverrides | None = None) -> SweepPlan:
    """Read a sweep file and expand it into cases.

    `cluster` (the command's pool and SLO flags) applies to every scenario.

    Raises:
        ScenarioError: The file is missing, not YAML, or fails validation.
        PolicyError: A policy or grid field is unknown, or a grid value is invalid.
    """
    raw = read_yaml(path, "sweep")
    try:
        sweep_file = SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(format_validation(exc, str(path), "sweep file")) from None
    return expand_sweep(sweep_file, path.resolve().parent, cluster)


def expand_sweep(
    sweep_file: SweepFile, base_dir: Path, cluster: ClusterOverrides | None = None
) -> SweepPlan:
    """Cases in a stable order: scenario, policy, grid point, seed.

    Every policy is checked against every scenario (`check_policies`) here, before
    anything runs: a spillover policy in a sweep over a scenario without a
    spillover pool fails at once.
    """
    stray = sorted(set(sweep_file.grid) - set(sweep_file.policies))
    if stray:
        raise PolicyError(f"grid names policies not in 'policies': {stray}")
    overrides = WorkloadOverrides(
        start_h=sweep_file.start_h,
        duration_h=sweep_file.duration_h,
        scale_mean_rps=sweep_file.scale_mean_rps,
    )
    scenarios: dict[str, Scenario] = {}
    for label in sweep_file.scenarios:
        path = None if label == DEFAULT_SCENARIO else _relative(base_dir, label)
        scenarios[label] = resolve_scenario(path, overrides, cluster=cluster)
    specs = resolve_policies(sweep_file.policies)
    for scenario in scenarios.values():
        check_policies(scenario, specs)
    cases: list[SweepCase] = []
    for (label, scenario), (name, spec) in itertools.product(
        scenarios.items(), zip(sweep_file.policies, specs, strict=True)
    ):
        points = _grid_points(sweep_file.grid.get(name, {}), f"grid.{name}")
        for params in points:
            tuned = updated_spec(spec, params, f"grid.{name}")
            policy_label = spec.display_name() + (f"[{_param_label(params)}]" if params else "")
            for seed in sweep_file.seeds:
                # The seed drives the workload's sampling as well as the engine, as
                # `simulate --seed` does: each seed is one independent replication.
                seeded = scenario.model_copy(update={"seed": seed})
                cases.append(
                    SweepCase(label, seeded, policy_label, tuned, params, seed, sweep_file.engine)
                )
    return SweepPlan(scenarios=scenarios, cases=tuple(cases))


def _relative(base_dir: Path, text: str) -> Path:
    candidate = Path(text)
    return candidate if candidate.is_absolute() else base_dir / candidate


def case_task(case: SweepCase) -> RunTask:
    """The shared run task of one sweep case."""
    return RunTask(case.scenario, case.spec, case.seed, case.engine)


def sweep_row(case: SweepCase, result: RunResult) -> SweepRow:
    """One CSV row of a case's run."""
    return SweepRow(
        scenario=case.scenario_label,
        policy=case.policy_label,
        params=case.params,
        seed=case.seed,
        engine=case.engine,
        cost_usd=result.cost_usd,
        gpu_hours=result.gpu_hours,
        slo_attainment=result.slo_attainment,
        p50_latency_s=result.p50_latency_s,
        p95_latency_s=result.p95_latency_s,
        p99_latency_s=result.p99_latency_s,
        dropped=result.dropped,
        scaling_actions=result.scaling_actions,
        meets_slo=result.meets_slo,
    )


def run_case(case: SweepCase) -> SweepRow:
    """One case, in this process (the row without its oracle ratio)."""
    return sweep_row(case, execute_run(case_task(case)))


#: Told after each batch of tasks: (tasks done, tasks in all).
SweepProgress = Callable[[int, int], None]
#: Batches per worker-count of tasks when progress is asked for: each batch ends
#: with the slowest task in it, so a few large batches keep the workers nearly as
#: busy as one batch while still reporting about ten times over the sweep.
PROGRESS_BATCHES = 10


def run_sweep(
    plan: SweepPlan,
    executor: Executor,
    *,
    progress: SweepProgress | None = None,
    workers: int = 1,
) -> list[SweepRow]:
    """Run every case and the oracle of each (scenario, seed, engine) on `executor`.

    Without `progress` the tasks go in one batch (every worker busy to the end);
    with it, in about `PROGRESS_BATCHES` batches of at least `2 x workers` tasks,
    each reported when done. Rows come back in plan order either way.
    """
    # one oracle per scenario, seed and engine: it is verified by replay in the engine
    # that reports it, on the seed its cases run
    references: dict[tuple[str, int, str], Scenario] = {}
    for case in plan.cases:
        references.setdefault((case.scenario_label, case.seed, case.engine), case.scenario)
    tasks: list[Task] = [
        OracleTask(scenario, engine, seed) for (_, seed, engine), scenario in references.items()
    ]
    tasks += [case_task(case) for case in plan.cases]
    outcomes: list[TaskOutcome] = []
    if progress is None:
        outcomes = run_tasks(tasks, executor)
    else:
        size = max(2 * workers, -(-len(tasks) // PROGRESS_BATCHES))
        progress(0, len(tasks))
        for first in range(0, len(tasks), size):
            outcomes += run_tasks(tasks[first : first + size], executor)
            progress(len(outcomes), len(tasks))
    oracles = {key: outcome.oracle for key, outcome in zip(references, outcomes, strict=False)}
    out = []
    for case, outcome in zip(plan.cases, outcomes[len(references) :], strict=True):
        row = sweep_row(case, outcome.run)
        oracle = oracles[(case.scenario_label, case.seed, case.engine)]
        out.append(replace(row, cost_vs_oracle=oracle.ratio(row.cost_usd)))
    return out


CSV_COLUMNS = (
    "scenario",
    "policy",
    "params",
    "seed",
    "engine",
    "cost_usd",
    "gpu_hours",
    "slo_attainment",
    "p50_latency_s",
    "p95_latency_s",
    "p99_latency_s",
    "dropped",
    "scaling_actions",
    "meets_slo",
    "cost_vs_oracle",
)


def rows_to_csv(rows: list[SweepRow]) -> str:
    """CSV text, one row per case; `params` as `key=value;...`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = row.to_json()
        record["params"] = ";".join(f"{k}={v}" for k, v in row.params.items())
        writer.writerow(record)
    return buffer.getvalue()
