"""What would let a policy meet the SLO when none does: pool changes, each measured.

When no candidate meets the SLO on the scoring window, the retrain report should not
stop at "nothing works": it says which change to the pool would make something work,
from the engine's own runs. The changes (faster starts, a shorter provisioning delay,
more headroom) and how each is sized are in `planner.retrain.pool_changes`. Only the
scenario's main pool changes; a spillover endpoint is left as it is.

The advice goes in stages and stops at the first stage where a run meets the SLO:
each single change; then every change at once; then the faster starts with the floor
at a higher quantile of the need; then with the floor at the busiest minute's need
(`pool_changes.escalations`). The report so names the weakest measured change that
is enough, and the last stage makes sure there is one wherever the pool's maximum
(or the oracle's larger one) can meet the SLO at all. When an escalation's floor
meets after a lower one missed, the floor between them is bisected for the spec
that met (`MAX_BISECTIONS` runs, to within `BISECTION_RESOLUTION`) and the smallest
that meets is reported too.

Nothing is estimated: every figure is an engine run. The runs are bounded: the first
`MAX_SPECS` specs (the caller passes its best first) are each run once on the
unchanged scenario (the baseline the extra cost is measured against) and once under
each change tried: at most 3 single changes and 3 escalations, then at most 6
bisection runs, so at most 3 + 3 x 6 + 6 = 27 runs.

Costs are the engine's bills. The engines do not bill a warm pool's stopped
instances (EC2 bills only their EBS volumes), so a warm pool's extra cost here is the
extra running time its faster starts buy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from planner.executor import Executor
from planner.oracle import OracleSummary
from planner.retrain.pool_changes import (
    PoolChange,
    escalations,
    floor_patch,
    needed_replicas,
    pool_changes,
)
from planner.runs import RunTask, execute_run, run_tasks, scenario_inputs
from policies.spec import PolicySpecBase
from sim.result import RunResult
from sim.scenario import Scenario

#: Specs re-run under each change (the caller's best first).
MAX_SPECS = 3
#: Probes of the floor bisection after an escalation met (one spec each), and the
#: share of the floor it stops within.
MAX_BISECTIONS = 6
BISECTION_RESOLUTION = 0.05


@dataclass(frozen=True)
class Remedy:
    """One pool change and what one policy measured under it.

    Attributes:
        change: The change in words ("warm pool of 20 instances (warm start 30 s)").
        scenario_patch: The pool fields changed, as a user would set them in the
            scenario's `pool:` block (delays as `Delay` mappings, or seconds when fixed).
        policy: Display name of the policy re-run under the change.
        slo_attainment: Its attainment under the change (0..1), measured.
        cost_usd: Its bill under the change, measured.
        meets_slo: Whether that attainment reaches the SLO target.
        extra_cost_usd: `cost_usd` less the same policy's bill without the change
            (same engine, seed and window).
        baseline_attainment: The same policy's attainment without the change.
        basis: How the change was sized, from the workload and the pool.
    """

    change: str
    scenario_patch: dict[str, Any]
    policy: str
    slo_attainment: float
    cost_usd: float
    meets_slo: bool
    extra_cost_usd: float
    baseline_attainment: float
    basis: str

    def to_json(self) -> dict[str, Any]:
        """The remedy as a JSON-ready mapping (for the retrain report)."""
        return {
            "change": self.change,
            "scenario_patch": self.scenario_patch,
            "policy": self.policy,
            "slo_attainment": self.slo_attainment,
            "cost_usd": self.cost_usd,
            "meets_slo": self.meets_slo,
            "extra_cost_usd": self.extra_cost_usd,
            "baseline_attainment": self.baseline_attainment,
            "basis": self.basis,
        }


def what_would_help(
    scenario: Scenario,
    specs: Sequence[PolicySpecBase],
    *,
    seed: int,
    engine: str = "fluid",
    executor: Executor | None = None,
    oracle: OracleSummary | None = None,
) -> list[Remedy]:
    """Re-run the best specs under each pool change that applies, and report the runs.

    Args:
        scenario: The scoring window, with the pool and SLO nothing met.
        specs: The candidates, best first; only the first `MAX_SPECS` are run.
        seed: Seed of every run (the same arrivals for the baseline and each change).
        engine: The engine that scored the candidates.
        executor: Where the runs go; default one after another in this process.
        oracle: The window's oracle, if solved: when it is infeasible and names the
            pool size that would meet the SLO, the headroom change raises the maximum.

    Returns:
        One remedy per (change, spec): the single changes in the order faster starts,
        shorter delay, headroom, then (only when none of those meets the SLO) the
        escalations up to the first that does, then the bisected smallest floor that
        meets (one spec) when there is one below that escalation's; specs in the given
        order. Empty when no change applies.

    Raises:
        ValueError: No spec was given.
    """
    if not specs:
        raise ValueError("what_would_help needs at least one policy spec to re-run")
    chosen = list(specs[:MAX_SPECS])
    workload, _ = scenario_inputs(scenario)
    needed_max = oracle.needed_max_replicas if oracle is not None else None
    needed = needed_replicas(scenario, workload)  # one queueing pass for every stage
    singles = pool_changes(scenario, workload, needed_max_replicas=needed_max, needed=needed)
    if not singles:
        return []
    runs = _Runs(scenario, chosen, seed, engine, executor)
    remedies = runs.under(singles)
    if sufficient(remedies) is not None:
        return remedies
    failed: PoolChange | None = None
    stages = escalations(scenario, workload, singles, needed_max_replicas=needed_max, needed=needed)
    for stage in stages:
        measured = runs.under([stage])
        remedies += measured
        enough = sufficient(measured)
        if enough is not None:
            if failed is not None:
                remedies += _lowest_floor(runs, failed, stage, measured.index(enough))
            break
        failed = stage
    return remedies


def _lowest_floor(
    runs: _Runs, failed: PoolChange, enough: PoolChange, spec_index: int
) -> list[Remedy]:
    """Between an escalation's floor that missed and the next one's that met, the
    smallest floor that meets for the spec that met (bisected, the other fields as in
    the stage that met). On a heavy-tailed need the busiest minute's floor can be
    sixty times the quantile's (NAB KO: 39 and 2,334 replicas), so "a floor of the
    busiest minute" alone would be a poor answer. Empty when no lower floor meets."""
    low = int(failed.patch.get("min_replicas", runs.scenario.pool.min_replicas))
    high = int(enough.patch["min_replicas"])
    found: Remedy | None = None
    for _ in range(MAX_BISECTIONS):
        if high - low <= max(1, math.ceil(BISECTION_RESOLUTION * high)):
            break
        middle = (low + high) // 2
        probe = runs.one(_with_floor(runs.scenario, enough, middle), spec_index)
        if probe.meets_slo:
            high, found = middle, probe
        else:
            low = middle
    return [] if found is None else [found]


def _with_floor(scenario: Scenario, change: PoolChange, floor: int) -> PoolChange:
    """`change` with its floor set to `floor` (initial replicas raised only as needed)."""
    floor_fields = ("min_replicas", "initial_replicas")
    others = {k: v for k, v in change.patch.items() if k not in floor_fields}
    patch = {**others, **floor_patch(scenario.pool, floor)}
    return PoolChange(
        change=re.sub(r"floor of \d+ replicas", f"floor of {floor} replicas", change.change),
        patch=patch,
        basis=(
            f"the smallest floor that met the SLO between the escalations' "
            f"{change.patch['min_replicas']} and the one before, bisected"
        ),
    )


class _Runs:
    """The specs' runs under pool changes, each against the same specs' baseline runs
    (made once, with the first batch of changes)."""

    def __init__(
        self,
        scenario: Scenario,
        specs: list[PolicySpecBase],
        seed: int,
        engine: str,
        executor: Executor | None,
    ) -> None:
        self.scenario, self._specs, self._seed = scenario, specs, seed
        self._engine, self._executor = engine, executor
        self._baseline: list[RunResult] = []

    def under(self, changes: list[PoolChange]) -> list[Remedy]:
        scenarios = [patched(self.scenario, change.patch) for change in changes]
        if not self._baseline:
            scenarios.insert(0, self.scenario)
        results = self._run(scenarios)
        if not self._baseline:
            self._baseline, results = results[: len(self._specs)], results[len(self._specs) :]
        width = len(self._specs)
        return [
            _remedy(change, run, base)
            for i, change in enumerate(changes)
            for run, base in zip(results[i * width : (i + 1) * width], self._baseline, strict=True)
        ]

    def one(self, change: PoolChange, spec_index: int) -> Remedy:
        """One spec's run under `change`, against that spec's baseline run."""
        assert self._baseline, "the first batch of changes makes the baseline runs"
        spec = self._specs[spec_index]
        task = RunTask(patched(self.scenario, change.patch), spec, self._seed, self._engine)
        (run,) = self._execute([task])
        return _remedy(change, run, self._baseline[spec_index])

    def _run(self, scenarios: list[Scenario]) -> list[RunResult]:
        return self._execute(
            [RunTask(s, spec, self._seed, self._engine) for s in scenarios for spec in self._specs]
        )

    def _execute(self, tasks: list[RunTask]) -> list[RunResult]:
        if self._executor is None:
            return [execute_run(task) for task in tasks]
        return [outcome.run for outcome in run_tasks(tasks, self._executor)]


def sufficient(remedies: Sequence[Remedy]) -> Remedy | None:
    """The cheapest remedy that meets the SLO (the first of equals); None if none does."""
    meeting = [remedy for remedy in remedies if remedy.meets_slo]
    return min(meeting, key=lambda remedy: remedy.cost_usd) if meeting else None


def _remedy(change: PoolChange, run: RunResult, base: RunResult) -> Remedy:
    return Remedy(
        change=change.change,
        scenario_patch=change.patch,
        policy=run.policy,
        slo_attainment=run.slo_attainment,
        cost_usd=run.cost_usd,
        meets_slo=run.meets_slo,
        extra_cost_usd=run.cost_usd - base.cost_usd,
        baseline_attainment=base.slo_attainment,
        basis=change.basis,
    )


def patched(scenario: Scenario, patch: dict[str, Any]) -> Scenario:
    """`scenario` with its pool's fields replaced by `patch`, validated again."""
    pool = {**scenario.pool.model_dump(), **patch}
    return Scenario.model_validate({**scenario.model_dump(), "pool": pool})
