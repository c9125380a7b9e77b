"""A precomputed 48 h capacity schedule for a policy no native construct can express.

As AWS predictive scaling does (an hourly forecast for the next 48 hours), but the
forecaster is the policy itself: it runs in the fluid engine on the traffic it was
tuned on (its scenario), and what it decided there, hour by hour of the day (or of
the week when the traffic covers one), becomes the desired capacity of the same
hours in the next 48 hours from `now`. Each hour takes the highest capacity the
policy set in that hour: a schedule holds capacity for a whole hour, so it must
cover the hour's busiest interval. Hours the traffic never covered take the
highest capacity of the whole run, which over-provisions rather than under-provisions,
and the notes say how many there were. `planner control` keeps the schedule fresh
(see docs/emit.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policies.spec import PolicySpecBase
from policies.stack_config import Bounds, CapacitySchedule
from sim.scenario import Scenario

HORIZON_H = 48
STEP_S = 3600
WEEK_H = 7 * 24
#: t = 0 of a workload without an epoch (`policies.scheduled.DEFAULT_EPOCH_S`: a Monday).
_DEFAULT_EPOCH_S = 4 * 86400.0


@dataclass(frozen=True)
class ComputedSchedule:
    """The schedule and how it was made (for the CLI's notes and the docs)."""

    schedule: CapacitySchedule
    hours_covered: int
    hours_filled_with_peak: int
    seasonality: str  # "hour of day" or "hour of week"
    notes: tuple[str, ...]


def next_hour(now: datetime) -> datetime:
    """The first whole UTC hour at or after `now` (a schedule never starts in the past)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    floor = now.replace(minute=0, second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(hours=1)


def within_bounds(scenario: Scenario, bounds: Bounds) -> Scenario:
    """`scenario` with its pool's replica bounds replaced by the target's."""
    pool = scenario.pool.model_copy(
        update={"min_replicas": bounds.min, "max_replicas": bounds.max, "initial_replicas": None}
    )
    return scenario.model_copy(update={"pool": pool})


def compute_schedule(
    spec: PolicySpecBase, scenario: Scenario, bounds: Bounds, *, now: datetime, seed: int = 0
) -> ComputedSchedule:
    """Run `spec` on `scenario` (fluid engine) and fold its decisions into 48 hourly values."""
    from planner.runs import RunTask, execute_run, scenario_inputs

    bounded = within_bounds(scenario, bounds)
    workload, _ = scenario_inputs(bounded)
    result = execute_run(RunTask(bounded, spec, seed=seed, engine="fluid"))
    epoch_s = workload.epoch_s if workload.epoch_s is not None else _DEFAULT_EPOCH_S
    times = result.series.time_s
    desired = result.series.desired
    covered_s = float(times[-1] - times[0]) if len(times) else 0.0
    weekly = covered_s >= WEEK_H * 3600
    period_h = WEEK_H if weekly else 24

    def key(epoch_seconds: float) -> int:
        # 1970-01-01 was a Thursday: shift by 3 days so keys count from Monday 00:00.
        hours = math.floor(epoch_seconds / 3600.0)
        return (hours + (72 if weekly else 0)) % period_h

    profile: dict[int, float] = {}
    for t, value in zip(times, desired, strict=True):
        k = key(epoch_s + float(t))
        profile[k] = max(profile.get(k, 0.0), float(value))
    peak = max(profile.values(), default=float(bounds.max))
    start = next_hour(now)
    values: list[int] = []
    filled = 0
    for h in range(HORIZON_H):
        k = key((start + timedelta(hours=h)).timestamp())
        if k not in profile:
            filled += 1
        value = math.ceil(profile.get(k, peak) - 1e-9)
        values.append(min(max(value, bounds.min), bounds.max))
    notes = [
        f"schedule: {spec.display_name()} ran on {scenario.name} ({covered_s / 3600:.1f} h of "
        f"traffic, fluid engine, seed {seed}) within bounds [{bounds.min}, {bounds.max}]; "
        f"each of the next {HORIZON_H} h from {start.isoformat()} takes the highest capacity "
        f"it set in the same hour of the {'week' if weekly else 'day'}"
    ]
    if filled:
        notes.append(
            f"schedule: {filled} of {HORIZON_H} hours fall in hours the traffic does not cover "
            f"and hold the run's peak ({math.ceil(peak - 1e-9)}); give a scenario with at "
            "least a day of traffic for a real profile"
        )
    schedule = CapacitySchedule(start=start, step_s=STEP_S, desired=tuple(values))
    return ComputedSchedule(
        schedule=schedule,
        hours_covered=len(profile),
        hours_filled_with_peak=filled,
        seasonality="hour of week" if weekly else "hour of day",
        notes=tuple(notes),
    )
