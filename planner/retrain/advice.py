"""What would let a policy meet the SLO when none does: pool changes, each measured.

When no candidate meets the SLO on the scoring window, the retrain report should not
stop at "nothing works": it says which change to the pool would make something work,
from the engine's own runs. Three kinds of change are tried, those that apply to the
pool's kind:

- **Faster starts.** An EC2 ASG gets a warm pool (stopped instances that start in
  `warm_start_s` instead of a full `instance_boot_s`), sized to the largest rise in
  needed replicas within one provisioning delay: the replicas a policy must add that
  no boot could deliver in time. A GPU node pool has no warm pool; its analogue is a
  node image with the serving image pre-pulled (`image_pull_s` 0). A serverless
  endpoint has neither (its warm capacity is provisioned concurrency: the floor below).
- **A shorter delay.** Every provisioning step halved (node boot, image pull, model
  load; instance boot and model load; a serverless cold start).
- **More headroom.** A floor (`min_replicas`) at the SLO target's quantile of the
  replicas needed per minute (the 95th percentile for a 0.95 target: the policy has to
  scale above the floor, and so wait for a boot, only in the remaining minutes); and,
  when the oracle found the pool's maximum too small to meet the SLO at all
  (`OracleSummary.needed_max_replicas`), that larger maximum.

Only the scenario's main pool changes; a spillover endpoint is left as it is.

"Needed replicas" per minute are those carrying that minute's mean rate at the SLO in
the M/M/c model the pool sizing uses (`planner.pool_sizing.replicas_for`, a replica
being `max_batch` servers), on rates rounded up to a 1 % grid so a long window costs a
few hundred queueing solves, not one per minute.

Nothing is estimated: every figure is an engine run. The runs are bounded: the first
`MAX_SPECS` specs (the caller passes its best first) are each run once on the
unchanged scenario (the baseline the extra cost is measured against) and once under
each applicable change (at most `MAX_CHANGES`), so at most 3 + 3 x 3 = 12 runs.

Costs are the engine's bills. The engines do not bill a warm pool's stopped
instances (EC2 bills only their EBS volumes), so a warm pool's extra cost here is the
extra running time its faster starts buy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.executor import Executor
from planner.oracle import OracleSummary
from planner.pool_sizing import replicas_for
from planner.runs import RunTask, execute_run, run_tasks, scenario_inputs
from policies.spec import PolicySpecBase
from sim.capacity.distributions import Delay
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool, Pool, ServerlessEndpoint
from sim.engine import token_profile
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload import rate_series
from sim.workload.model import FloatArray, Workload

#: Specs re-run under each change (the caller's best first).
MAX_SPECS = 3
#: Changes tried: faster starts, a shorter delay, more headroom.
MAX_CHANGES = 3
#: Width of the bins whose needed replicas size the warm pool and the floor: a minute,
#: as the pool sizing uses (long enough that a queue within the SLO cannot absorb it).
NEED_BIN_S = 60.0
#: SageMaker serverless's highest max concurrency (developer guide; the pool's bound).
SERVERLESS_MAX_CONCURRENCY = 200
#: Relative step of the grid rates are rounded up to before the queueing solve.
RATE_GRID_STEP = 0.01


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


@dataclass(frozen=True)
class PoolChange:
    """A change to the pool, before any run: what it is, the fields, why that size."""

    change: str
    patch: dict[str, Any]
    basis: str


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
        One remedy per (change, spec), changes in the order faster starts, shorter
        delay, headroom, specs in the given order; empty when no change applies.

    Raises:
        ValueError: No spec was given.
    """
    if not specs:
        raise ValueError("what_would_help needs at least one policy spec to re-run")
    chosen = list(specs[:MAX_SPECS])
    workload, _ = scenario_inputs(scenario)
    needed_max = oracle.needed_max_replicas if oracle is not None else None
    changes = pool_changes(scenario, workload, needed_max_replicas=needed_max)
    scenarios = [scenario, *(patched(scenario, change.patch) for change in changes)]
    tasks = [RunTask(s, spec, seed, engine) for s in scenarios for spec in chosen]
    if executor is None:
        results = [execute_run(task) for task in tasks]
    else:
        results = [outcome.run for outcome in run_tasks(tasks, executor)]
    baseline = results[: len(chosen)]
    remedies = []
    for i, change in enumerate(changes):
        runs = results[(i + 1) * len(chosen) : (i + 2) * len(chosen)]
        remedies += [_remedy(change, run, base) for run, base in zip(runs, baseline, strict=True)]
    return remedies


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


# -- the changes -----------------------------------------------------------------


def pool_changes(
    scenario: Scenario, workload: Workload, *, needed_max_replicas: int | None = None
) -> list[PoolChange]:
    """The changes that apply to `scenario`'s pool, sized from `workload` (no runs).

    A change that would change nothing (a warm pool no larger than the one there, an
    image pull already at 0, delays already 0, a floor not above the current one and
    no larger maximum) is left out.
    """
    pool = scenario.pool
    needed = needed_replicas(scenario, workload)
    changes = [
        _faster_starts(pool, needed),
        _shorter_delay(pool),
        _headroom(pool, needed, scenario.slo.target_attainment, needed_max_replicas),
    ]
    kept = [change for change in changes if change is not None]
    assert len(kept) <= MAX_CHANGES
    return kept


def needed_replicas(scenario: Scenario, workload: Workload) -> FloatArray:
    """Replicas carrying each minute's mean rate at the SLO (NaN where the minute is
    missing), on rates rounded up to a `RATE_GRID_STEP` grid."""
    rates, missing = rate_series(workload, NEED_BIN_S)
    service = scenario.pool.service
    service_s = service.mean_service_s(token_profile(workload), service.max_batch)
    out = np.full(len(rates), np.nan)
    seen = ~missing & np.isfinite(rates)
    positive = seen & (rates > 0)
    out[seen & ~positive] = 0.0
    if not positive.any():
        return out
    log_step = math.log1p(RATE_GRID_STEP)
    steps = np.ceil(np.log(rates[positive]) / log_step)
    levels, where = np.unique(steps, return_inverse=True)
    per_level = np.array(
        [replicas_for(scenario, math.exp(level * log_step), service_s)[0] for level in levels],
        dtype=float,
    )
    out[positive] = per_level[where]
    return out


def largest_rise(needed: FloatArray, window_s: float) -> int:
    """The largest rise in `needed` (one value per `NEED_BIN_S`) within `window_s`:
    max over t of needed(t) less the least need in the `window_s` before it."""
    lag = max(1, math.ceil(window_s / NEED_BIN_S - 1e-9))
    low = needed.copy()
    for shift in range(1, min(lag, len(needed) - 1) + 1):
        earlier = np.concatenate((np.full(shift, np.nan), needed[:-shift]))
        low = np.fmin(low, earlier)  # fmin skips the NaN of missing minutes
    rises = needed - low
    return int(np.nanmax(rises)) if np.isfinite(rises).any() else 0


def _faster_starts(pool: Pool, needed: FloatArray) -> PoolChange | None:
    if isinstance(pool, Ec2AutoScalingGroup):
        delay_s = pool.provisioning_mean_s()
        rise = largest_rise(needed, delay_s)
        size = min(max(pool.nodes_for(rise), 1), pool.nodes_for(pool.max_replicas))
        if size <= pool.warm_pool_size:
            return None
        return PoolChange(
            change=(
                f"warm pool of {size} instances (warm start {pool.warm_start_s.mean_s:.0f} s "
                f"instead of a {pool.instance_boot_s.mean_s:.0f} s boot)"
            ),
            patch={"warm_pool_size": size},
            basis=(
                f"the largest rise in needed replicas within one provisioning delay "
                f"({delay_s:.0f} s: boot and model load) is {rise}, on {size} instance(s) "
                f"of {pool.replicas_per_node} replica(s) each"
            ),
        )
    if isinstance(pool, GpuNodePool):
        pull_s = pool.image_pull_s.mean_s
        if pull_s <= 0:
            return None
        return PoolChange(
            change=f"image pre-pulled on the node image (image pull {pull_s:.0f} s -> 0 s)",
            patch={"image_pull_s": 0.0},
            basis=(
                "a GPU node pool has no warm pool; a node image that carries the serving "
                f"image cuts the {pool.provisioning_mean_s():.0f} s provisioning delay "
                f"by its {pull_s:.0f} s image pull"
            ),
        )
    return None  # serverless: warm capacity is provisioned concurrency, the headroom change


def _delay_fields(pool: Pool) -> dict[str, Delay]:
    if isinstance(pool, GpuNodePool):
        return {
            "node_boot_s": pool.node_boot_s,
            "image_pull_s": pool.image_pull_s,
            "model_load_s": pool.model_load_s,
        }
    if isinstance(pool, Ec2AutoScalingGroup):
        return {"instance_boot_s": pool.instance_boot_s, "model_load_s": pool.model_load_s}
    return {"cold_start_s": pool.cold_start_s}


def _shorter_delay(pool: Pool) -> PoolChange | None:
    delays = {name: d for name, d in _delay_fields(pool).items() if d.mean_s > 0}
    if not delays:
        return None
    halved = {name: d.model_copy(update={"mean_s": d.mean_s / 2}) for name, d in delays.items()}
    steps = ", ".join(
        f"{name.removesuffix('_s').replace('_', ' ')} {d.mean_s:.0f} s"
        for name, d in halved.items()
    )
    before = sum(d.mean_s for d in delays.values())
    return PoolChange(
        change=f"provisioning delay halved ({steps})",
        patch={name: _as_set(d) for name, d in halved.items()},
        basis=f"every provisioning step's mean halved: {before:.0f} s -> {before / 2:.0f} s",
    )


def _as_set(delay: Delay) -> float | dict[str, Any]:
    """A delay as a user writes it: seconds when fixed, else the mapping."""
    return delay.mean_s if delay.kind == "fixed" else delay.model_dump(mode="json")


def _headroom(
    pool: Pool, needed: FloatArray, target: float, needed_max_replicas: int | None
) -> PoolChange | None:
    top = pool.max_replicas
    if needed_max_replicas is not None and needed_max_replicas > top:
        top = needed_max_replicas
        if isinstance(pool, ServerlessEndpoint):
            top = min(top, SERVERLESS_MAX_CONCURRENCY)
    observed = needed[np.isfinite(needed)]
    quantile = float(np.quantile(observed, target)) if len(observed) else 0.0
    floor = min(math.ceil(quantile), top)
    patch: dict[str, Any] = {}
    words, basis = [], []
    if floor > pool.min_replicas:
        patch["min_replicas"] = floor
        if pool.initial_replicas is not None and pool.initial_replicas < floor:
            patch["initial_replicas"] = floor
        words.append(f"floor of {floor} replicas (min_replicas)")
        basis.append(
            f"the floor is the {target:.0%} quantile of the replicas needed per minute at "
            f"the SLO ({quantile:.0f}; the busiest minute needs {np.max(observed):.0f})"
        )
    if top > pool.max_replicas:
        patch["max_replicas"] = top
        words.append(f"max replicas {pool.max_replicas} -> {top}")
        basis.append(f"the oracle found {top} replicas the smallest maximum that meets the SLO")
    if not patch:
        return None
    return PoolChange(change="; ".join(words), patch=patch, basis="; ".join(basis))
