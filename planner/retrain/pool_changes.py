"""The pool changes the retrain advice tries, sized from the workload (no runs here).

Three kinds of change apply to a pool, those its kind allows:

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
  when the oracle found the pool's maximum too small to meet the SLO at all, that
  larger maximum.

When no single change is enough, `escalations` builds the stronger ones the advice
tries next, in order: every change at once, then that with the floor raised to a
higher quantile of the need, then to the busiest minute's need. The last one holds
the capacity the busiest minute needs all the time: it meets the SLO wherever the
pool's maximum can, so the report always ends with a measured answer (and its cost).

"Needed replicas" per minute are those carrying that minute's mean rate at the SLO in
the M/M/c model the pool sizing uses (`planner.pool_sizing.replicas_for`, a replica
being `max_batch` servers), on rates rounded up to a 1 % grid so a long window costs a
few hundred queueing solves, not one per minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.pool_sizing import replicas_for
from sim.capacity.distributions import Delay
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool, Pool, ServerlessEndpoint
from sim.engine import token_profile
from sim.scenario import Scenario
from sim.workload import rate_series
from sim.workload.model import FloatArray, Workload

#: Changes tried one at a time: faster starts, a shorter delay, more headroom.
MAX_CHANGES = 3
#: Width of the bins whose needed replicas size the warm pool and the floor: a minute,
#: as the pool sizing uses (long enough that a queue within the SLO cannot absorb it).
NEED_BIN_S = 60.0
#: SageMaker serverless's highest max concurrency (developer guide; the pool's bound).
SERVERLESS_MAX_CONCURRENCY = 200
#: Relative step of the grid rates are rounded up to before the queueing solve.
RATE_GRID_STEP = 0.01


@dataclass(frozen=True)
class PoolChange:
    """A change to the pool, before any run: what it is, the fields, why that size."""

    change: str
    patch: dict[str, Any]
    basis: str


def pool_changes(
    scenario: Scenario,
    workload: Workload,
    *,
    needed_max_replicas: int | None = None,
    needed: FloatArray | None = None,
) -> list[PoolChange]:
    """The changes that apply to `scenario`'s pool, sized from `workload` (no runs).

    A change that would change nothing (a warm pool no larger than the one there, an
    image pull already at 0, delays already 0, a floor not above the current one and
    no larger maximum) is left out. `needed` is `needed_replicas(scenario, workload)`
    when the caller has it already.
    """
    pool = scenario.pool
    if needed is None:
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
    pool: Pool, needed: FloatArray, quantile: float, needed_max_replicas: int | None
) -> PoolChange | None:
    """A floor at `quantile` of the needed replicas and, when the oracle named a larger
    maximum, that maximum: one change (a floor above the old maximum needs both)."""
    top = _maximum(pool, needed_max_replicas)
    parts = [_floor(pool, needed, quantile, top), _larger_maximum(pool, top)]
    kept = [part for part in parts if part is not None]
    return together(kept) if kept else None


def _floor(pool: Pool, needed: FloatArray, quantile: float, top: int) -> PoolChange | None:
    observed = needed[np.isfinite(needed)]
    level = float(np.quantile(observed, quantile)) if len(observed) else 0.0
    floor = min(math.ceil(level), top)
    if floor <= pool.min_replicas:
        return None
    patch = floor_patch(pool, floor)
    which = "the busiest minute" if quantile >= 1.0 else f"the {quantile:.1%} quantile"
    return PoolChange(
        change=f"floor of {floor} replicas (min_replicas)",
        patch=patch,
        basis=(
            f"the floor is {which} of the replicas needed per minute at the SLO "
            f"({level:.0f}; the busiest minute needs {np.max(observed):.0f})"
        ),
    )


def floor_patch(pool: Pool, floor: int) -> dict[str, Any]:
    """The pool fields a floor of `floor` replicas sets: `min_replicas`, and the initial
    replicas raised to it when they would start below it."""
    patch: dict[str, Any] = {"min_replicas": floor}
    if pool.initial_replicas is not None and pool.initial_replicas < floor:
        patch["initial_replicas"] = floor
    return patch


def _larger_maximum(pool: Pool, top: int) -> PoolChange | None:
    if top <= pool.max_replicas:
        return None
    return PoolChange(
        change=f"max replicas {pool.max_replicas} -> {top}",
        patch={"max_replicas": top},
        basis=f"the oracle found {top} replicas the smallest maximum that meets the SLO",
    )


def _maximum(pool: Pool, needed_max_replicas: int | None) -> int:
    """The pool's maximum, raised to the oracle's answer when that is larger."""
    if needed_max_replicas is None or needed_max_replicas <= pool.max_replicas:
        return pool.max_replicas
    if isinstance(pool, ServerlessEndpoint):
        return min(needed_max_replicas, SERVERLESS_MAX_CONCURRENCY)
    return needed_max_replicas


def together(changes: list[PoolChange]) -> PoolChange:
    """Several changes as one: patches merged in order (a later floor replaces an
    earlier one), words and bases joined."""
    patch: dict[str, Any] = {}
    for change in changes:
        patch.update(change.patch)
    return PoolChange(
        change=" + ".join(change.change for change in changes),
        patch=patch,
        basis="; ".join(change.basis for change in changes),
    )


# -- escalations: tried only when no single change meets the SLO --------------------


def escalations(
    scenario: Scenario,
    workload: Workload,
    singles: list[PoolChange],
    *,
    needed_max_replicas: int | None = None,
    needed: FloatArray | None = None,
) -> list[PoolChange]:
    """The stronger changes, weakest first: every single change at once (when there are
    two or more), then the faster starts and shorter delay with the floor at the
    quantile halfway from the SLO target to 1, then with the floor at the busiest
    minute's need (each with the oracle's larger maximum, if any).

    A stage whose patch repeats an earlier change's is left out. `needed` is
    `needed_replicas(scenario, workload)` when the caller has it already.
    """
    pool = scenario.pool
    if needed is None:
        needed = needed_replicas(scenario, workload)
    target = scenario.slo.target_attainment
    top = _maximum(pool, needed_max_replicas)
    speedups = [c for c in singles if not {"min_replicas", "max_replicas"} & c.patch.keys()]
    stages = [together(singles)] if len(singles) >= 2 else []
    for quantile in ((1.0 + target) / 2.0, 1.0):
        floor = _floor(pool, needed, quantile, top)
        if floor is not None:
            maximum = _larger_maximum(pool, top)
            stages.append(together([*speedups, *([maximum] if maximum else []), floor]))
    found: list[PoolChange] = []
    for stage in stages:
        if all(stage.patch != seen.patch for seen in [*singles, *found]):
            found.append(stage)
    return found
