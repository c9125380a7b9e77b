"""The four hysteresis stages as pure functions of (explicit state, input).

Order, as in the Kubernetes HPA controller (`replica_calculator.go` and
`horizontal.go`): dead band -> stabilisation window -> rate limit -> clamp to
bounds. Each stage returns a `StageResult` whose `reason` is the Kubernetes
condition reason when the stage bound (`WithinTolerance`, `ScaleDownStabilized`,
`ScaleUpLimit`, `TooManyReplicas`, ...) and a pass-through code otherwise.
State (recent recommendations, recent scale events) is passed in and returned,
never hidden, so every stage has a table test.

The values (`StageResult`, `Recommendation`, `ScaleEvent`) are named tuples, not
frozen dataclasses: they are as immutable, and several are built every decision
of every run, where a frozen dataclass's `__init__` costs three times as much.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from operator import attrgetter
from typing import NamedTuple

from policies.hysteresis.config import DirectionRules

WITHIN_TOLERANCE = "WithinTolerance"
OUTSIDE_TOLERANCE = "OutsideTolerance"
SCALE_UP_STABILIZED = "ScaleUpStabilized"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
READY_FOR_NEW_SCALE = "ReadyForNewScale"
SCALE_UP_LIMIT = "ScaleUpLimit"
SCALE_DOWN_LIMIT = "ScaleDownLimit"
DESIRED_WITHIN_RANGE = "DesiredWithinRange"
TOO_MANY_REPLICAS = "TooManyReplicas"
TOO_FEW_REPLICAS = "TooFewReplicas"
WITHIN_BOUNDS = "WithinBounds"

#: Reasons meaning "this stage did not change the value".
PASS_THROUGH = frozenset(
    {OUTSIDE_TOLERANCE, READY_FOR_NEW_SCALE, DESIRED_WITHIN_RANGE, WITHIN_BOUNDS}
)


class StageResult(NamedTuple):
    """A stage's output value and why."""

    value: int
    reason: str

    @property
    def bound(self) -> bool:
        """True when the stage changed (held back or capped) its input."""
        return self.reason not in PASS_THROUGH


class Recommendation(NamedTuple):
    """An unstabilised recommendation, kept for the stabilisation window."""

    time_s: float
    replicas: int


class ScaleEvent(NamedTuple):
    """An applied change of `replicas` (a magnitude, always > 0) at `time_s`."""

    time_s: float
    replicas: int


_TIME_S = attrgetter("time_s")
_REPLICAS = attrgetter("replicas")


def within_tolerance(ratio: float, tolerance_up: float, tolerance_down: float) -> bool:
    """Kubernetes `Tolerances.isWithin`: 1 - down <= ratio <= 1 + up (inclusive)."""
    return (1.0 - tolerance_down) <= ratio <= (1.0 + tolerance_up)


def dead_band(
    current: int,
    recommended: int,
    *,
    tolerance_up: float,
    tolerance_down: float,
    ratio: float | None = None,
) -> StageResult:
    """Keep `current` while the ratio is within the tolerance band.

    Args:
        current: Replicas now.
        recommended: The raw recommendation.
        tolerance_up: Band above 1 (a ratio up to 1 + tolerance_up is ignored).
        tolerance_down: Band below 1.
        ratio: The ratio to test; the HPA passes metric / target. Defaults to
            recommended / current. With current = 0 there is no ratio and the
            recommendation passes.
    """
    if ratio is None:
        if current <= 0:
            return StageResult(recommended, OUTSIDE_TOLERANCE)
        ratio = recommended / current
    if within_tolerance(ratio, tolerance_up, tolerance_down):
        return StageResult(current, WITHIN_TOLERANCE)
    return StageResult(recommended, OUTSIDE_TOLERANCE)


def stabilise(
    history: tuple[Recommendation, ...],
    *,
    now_s: float,
    current: int,
    recommended: int,
    up_window_s: float,
    down_window_s: float,
) -> tuple[StageResult, tuple[Recommendation, ...]]:
    """The stabilisation window (Kubernetes `stabilizeRecommendationWithBehaviors`).

    Scale-up follows the lowest recommendation of the up window, scale-down the
    highest of the down window; the value starts at `current` and moves only as
    far as both windows allow. A recommendation is in a window when its time is
    strictly after `now_s - window`. The raw recommendation is recorded.

    Args:
        history: Earlier recommendations in time order, as the previous call
            returned them.

    Returns:
        The stabilised value and the new history (pruned to the longer window).
    """
    up_floor = recommended
    down_ceiling = recommended
    # The history is in time order, so each window is a suffix of it: find where it
    # starts by bisection and take its extreme in C (this runs every decision). Only
    # one window can bind: the up window's lowest value holds a scale-up back and
    # cannot move a recommendation at or below `current`; the down window's highest
    # holds a scale-down back and cannot move one at or above it. So the up window
    # is read only when scaling up, the down window only when scaling down (and
    # neither in the steady state, where the recommendation is `current`).
    if history:
        newest_s = history[-1].time_s
        up_cutoff = now_s - up_window_s
        if recommended > current and newest_s > up_cutoff:
            start = bisect_right(history, up_cutoff, key=_TIME_S)
            lowest = min(map(_REPLICAS, history[start:]))
            if lowest < up_floor:
                up_floor = lowest
        down_cutoff = now_s - down_window_s
        if recommended < current and newest_s > down_cutoff:
            # the history is kept to the longer window, usually this one: all of it, or
            # all but its oldest, lies inside
            if history[0].time_s > down_cutoff:
                highest = max(map(_REPLICAS, history))
            elif history[1].time_s > down_cutoff:  # (two or more: the newest is inside)
                highest = max(map(_REPLICAS, history[1:]))
            else:
                start = bisect_right(history, down_cutoff, key=_TIME_S)
                highest = max(map(_REPLICAS, history[start:]))
            if highest > down_ceiling:
                down_ceiling = highest
    value = current if current > up_floor else up_floor
    if value > down_ceiling:
        value = down_ceiling
    keep_cutoff = now_s - (up_window_s if up_window_s > down_window_s else down_window_s)
    # drop the expired head (usually none or one: look at the head before bisecting)
    if not history or history[0].time_s > keep_cutoff:
        first = 0
    elif len(history) == 1 or history[1].time_s > keep_cutoff:
        first = 1
    else:
        first = bisect_right(history, keep_cutoff, key=_TIME_S)
    new_history = (history[first:] if first else history) + (Recommendation(now_s, recommended),)
    if value == recommended:
        return StageResult(value, READY_FOR_NEW_SCALE), new_history
    reason = SCALE_UP_STABILIZED if recommended >= current else SCALE_DOWN_STABILIZED
    return StageResult(value, reason), new_history


def _changed_in_period(events: tuple[ScaleEvent, ...], now_s: float, period_s: float) -> int:
    if not events:
        return 0
    cutoff = now_s - period_s
    return sum(event.replicas for event in events if event.time_s > cutoff)


def _period_start(
    current: int,
    *,
    now_s: float,
    period_s: float,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
) -> int:
    """Replicas at the start of a rate policy's period: current - added + removed within it."""
    added = _changed_in_period(up_events, now_s, period_s)
    removed = _changed_in_period(down_events, now_s, period_s)
    return current - added + removed


def scale_up_limit(
    current: int,
    *,
    now_s: float,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    rules: DirectionRules,
) -> int | None:
    """Highest replicas the scale-up policies allow now; None when unlimited.

    Each policy measures from the replicas at the start of its period
    (`_period_start`); Percent rounds up so a small fleet
    can always grow (Kubernetes `calculateScaleUpLimitWithScalingRules`).
    """
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        start = _period_start(
            current,
            now_s=now_s,
            period_s=policy.period_s,
            up_events=up_events,
            down_events=down_events,
        )
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1.0 + policy.value / 100.0)))
    limit = max(proposals) if rules.select_policy == "Max" else min(proposals)
    # Events still in the period can push the limit below current: hold, never shrink.
    return max(limit, current)


def scale_down_limit(
    current: int,
    *,
    now_s: float,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    rules: DirectionRules,
) -> int | None:
    """Lowest replicas the scale-down policies allow now; None when unlimited.

    Percent truncates the remaining replicas (removing 10% of 72 leaves 64), as
    Kubernetes `calculateScaleDownLimitWithBehaviors` does.
    """
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        start = _period_start(
            current,
            now_s=now_s,
            period_s=policy.period_s,
            up_events=up_events,
            down_events=down_events,
        )
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(int(start * (1.0 - policy.value / 100.0)))
    # "Max" selects the largest change, which for scale-down is the lowest floor.
    limit = min(proposals) if rules.select_policy == "Max" else max(proposals)
    return min(limit, current)


def rate_limit(
    *,
    now_s: float,
    current: int,
    desired: int,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    scale_up: DirectionRules,
    scale_down: DirectionRules,
) -> StageResult:
    """Cap the change by the direction's rate policies (`ScaleUpLimit` / `ScaleDownLimit`)."""
    if desired > current:
        limit = scale_up_limit(
            current, now_s=now_s, up_events=up_events, down_events=down_events, rules=scale_up
        )
        if limit is not None and desired > limit:
            return StageResult(limit, SCALE_UP_LIMIT)
    elif desired < current:
        limit = scale_down_limit(
            current, now_s=now_s, up_events=up_events, down_events=down_events, rules=scale_down
        )
        if limit is not None and desired < limit:
            return StageResult(limit, SCALE_DOWN_LIMIT)
    return StageResult(desired, DESIRED_WITHIN_RANGE)


def clamp(value: int, *, min_replicas: int, max_replicas: int) -> StageResult:
    """Bring `value` into [min_replicas, max_replicas] (`TooManyReplicas` / `TooFewReplicas`)."""
    if min_replicas > max_replicas:
        raise ValueError(f"min_replicas {min_replicas} > max_replicas {max_replicas}")
    if value > max_replicas:
        return StageResult(max_replicas, TOO_MANY_REPLICAS)
    if value < min_replicas:
        return StageResult(min_replicas, TOO_FEW_REPLICAS)
    return StageResult(value, WITHIN_BOUNDS)


def record_scale_event(
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    *,
    now_s: float,
    previous: int,
    new: int,
    keep_s: float,
) -> tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]:
    """Append an applied change to its direction's events and drop expired ones.

    `keep_s` is the longest rate-policy period of either direction (both
    directions' limits read both event lists): older events limit nothing.
    """
    cutoff = now_s - keep_s
    ups = tuple(e for e in up_events if e.time_s > cutoff) if up_events else up_events
    downs = tuple(e for e in down_events if e.time_s > cutoff) if down_events else down_events
    if new > previous:
        ups = (*ups, ScaleEvent(now_s, new - previous))
    elif new < previous:
        downs = (*downs, ScaleEvent(now_s, previous - new))
    return ups, downs
