"""Step scaling as AWS EC2 Auto Scaling defines it: two alarms, step adjustments, warmup.

Reference: Step and simple scaling policies, Amazon EC2 Auto Scaling User Guide
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-simple-step.html)
and the `StepAdjustment` API reference. A high alarm (scale out) and a low alarm
(scale in) form a hysteresis band; each alarm's steps are ranges of the breach
(metric - threshold) with an adjustment each.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.aws_target_tracking import (
    DEFAULT_WARMUP_S,
    WarmupTracker,
    band_metric,
    per_replica_metric,
    scale_in_blocked,
    span_values,
)
from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import Band, QuietSpan

AdjustmentType = Literal["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"]
Comparison = Literal[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
StepMetric = Literal["utilisation", "rps_per_replica"]
#: CloudWatch invokes an Auto Scaling action once per minute while its alarm stays in ALARM.
DEFAULT_ACTION_INTERVAL_S = 60.0


class StepAdjustment(BaseModel):
    """One step: a breach range relative to the threshold and its adjustment.

    Above the threshold the lower bound is inclusive and the upper exclusive; below
    it, the lower is exclusive and the upper inclusive. None is -inf / +inf.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lower_bound: float | None = None
    upper_bound: float | None = None
    adjustment: int

    @model_validator(mode="after")
    def _bounds(self) -> StepAdjustment:
        if self.lower_bound is None and self.upper_bound is None:
            raise ValueError("a step needs a lower_bound or an upper_bound (not both null)")
        if (
            self.lower_bound is not None
            and self.upper_bound is not None
            and self.lower_bound >= self.upper_bound
        ):
            raise ValueError(
                f"lower_bound {self.lower_bound} must be below upper_bound {self.upper_bound}"
            )
        return self

    def matches(self, breach: float, *, above: bool) -> bool:
        low = -math.inf if self.lower_bound is None else self.lower_bound
        high = math.inf if self.upper_bound is None else self.upper_bound
        if above:
            return low <= breach < high
        return low < breach <= high


def _covers(steps: tuple[StepAdjustment, ...], *, above: bool) -> str | None:
    """Why the steps are invalid for their alarm side (overlap, gap, coverage), or None."""
    if not steps:
        return "at least one step is required"
    if sum(s.lower_bound is None for s in steps) > 1:
        return "at most one step may have a null lower_bound"
    if sum(s.upper_bound is None for s in steps) > 1:
        return "at most one step may have a null upper_bound"
    ordered = sorted(steps, key=lambda s: -math.inf if s.lower_bound is None else s.lower_bound)
    for prev, nxt in itertools.pairwise(ordered):
        if prev.upper_bound is None or nxt.lower_bound is None:
            return "step ranges overlap (an unbounded step is followed by another)"
        if prev.upper_bound > nxt.lower_bound:
            return f"step ranges overlap at {nxt.lower_bound} (ranges may not overlap)"
        if prev.upper_bound < nxt.lower_bound:
            return f"gap between {prev.upper_bound} and {nxt.lower_bound} (no gaps allowed)"
    first, last = ordered[0], ordered[-1]
    if above and (first.lower_bound is not None and first.lower_bound > 0):
        return "a scale-out alarm's steps must start at 0 (breach at the threshold)"
    if above and last.upper_bound is not None:
        return "a scale-out alarm's last step needs a null upper_bound (up to +infinity)"
    if not above and first.lower_bound is not None:
        return "a scale-in alarm's first step needs a null lower_bound (down to -infinity)"
    if not above and (last.upper_bound is not None and last.upper_bound < 0):
        return "a scale-in alarm's steps must reach 0 (breach at the threshold)"
    return None


class StepAlarm(BaseModel):
    """A CloudWatch alarm and the step scaling policy it invokes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float
    comparison: Comparison
    evaluation_periods: int = Field(default=1, ge=1, description="consecutive intervals")
    adjustment_type: AdjustmentType = "ChangeInCapacity"
    min_adjustment_magnitude: int | None = Field(default=None, ge=1)
    steps: tuple[StepAdjustment, ...]

    @property
    def scales_out(self) -> bool:
        return self.comparison.startswith("Greater")

    @model_validator(mode="after")
    def _steps(self) -> StepAlarm:
        problem = _covers(self.steps, above=self.scales_out)
        if problem:
            raise ValueError(f"steps: {problem}")
        if self.min_adjustment_magnitude is not None and (
            self.adjustment_type != "PercentChangeInCapacity"
        ):
            raise ValueError("min_adjustment_magnitude applies only to PercentChangeInCapacity")
        for step in self.steps:
            if self.adjustment_type == "ExactCapacity" and step.adjustment < 0:
                raise ValueError("ExactCapacity adjustments must be >= 0")
            if self.adjustment_type != "ExactCapacity" and (
                (self.scales_out and step.adjustment < 0)
                or (not self.scales_out and step.adjustment > 0)
            ):
                raise ValueError(
                    "a scale-out alarm's adjustments must be >= 0 and a scale-in alarm's <= 0"
                )
        return self

    def breaching(self, value: float) -> bool:
        comparison, threshold = self.comparison, self.threshold
        if comparison == "GreaterThanOrEqualToThreshold":
            return value >= threshold
        if comparison == "GreaterThanThreshold":
            return value > threshold
        if comparison == "LessThanThreshold":
            return value < threshold
        return value <= threshold  # LessThanOrEqualToThreshold (the field's last literal)

    def step_for(self, value: float) -> StepAdjustment | None:
        # Rounded so 0.7 - 0.6 lands on the step boundary 0.1, as decimal arithmetic would.
        breach = round(value - self.threshold, 9)
        return next((s for s in self.steps if s.matches(breach, above=self.scales_out)), None)


def percent_change(capacity: int, percent: int, min_magnitude: int | None) -> int:
    """AWS rounding of PercentChangeInCapacity, then MinAdjustmentMagnitude.

    > 1 rounds down (12.7 -> 12), (0, 1) -> 1, (-1, 0) -> -1, < -1 rounds up (-6.67 -> -6).
    """
    raw = capacity * percent / 100.0
    if raw == 0:
        change = 0
    elif 0 < raw < 1:
        change = 1
    elif -1 < raw < 0:
        change = -1
    else:
        change = math.trunc(raw)
    if min_magnitude is not None and change != 0 and abs(change) < min_magnitude:
        change = min_magnitude if change > 0 else -min_magnitude
    return change


def apply_adjustment(alarm: StepAlarm, capacity: int, adjustment: int) -> int:
    """Capacity after one step adjustment of the alarm's type."""
    if alarm.adjustment_type == "ExactCapacity":
        return adjustment
    if alarm.adjustment_type == "ChangeInCapacity":
        return capacity + adjustment
    return capacity + percent_change(capacity, adjustment, alarm.min_adjustment_magnitude)


class StepScalingPolicy:
    """Two alarms (high: scale out, low: scale in) with step adjustments and warmup.

    Parameters:
        high / low: The alarms; the band between their thresholds is the dead band.
        metric: `utilisation` or `rps_per_replica` (demand / ready).
        instance_warmup_s: Seconds a newly ready replica warms up (300 s, the AWS
            default cooldown used when no warmup is set).
        action_interval_s: An alarm in ALARM re-invokes its policy at most this
            often (60 s: CloudWatch re-invokes Auto Scaling actions every minute).

    Behaviour (AWS): on a high-alarm breach, the step is chosen by breach size and
    applied to the current capacity, meaning replicas that are ready and warmed
    up. Warming and pending replicas are already in the desired capacity, so a
    second breach in the same step changes nothing and a larger step adds only the
    difference. The low alarm scales in from the desired capacity and is blocked
    while any replica is pending or warming.

    Edges: a missing metric resets the alarms' consecutive counts and holds;
    results are clamped to the pool bounds.
    """

    def __init__(
        self,
        *,
        high: StepAlarm,
        low: StepAlarm | None,
        metric: StepMetric = "utilisation",
        instance_warmup_s: float = DEFAULT_WARMUP_S,
        action_interval_s: float = DEFAULT_ACTION_INTERVAL_S,
        name: str = "step",
    ) -> None:
        self.high = high
        self.low = low
        self.metric: StepMetric = metric
        self.instance_warmup_s = instance_warmup_s
        self.action_interval_s = action_interval_s
        self.name = name
        self._reset_state()

    def _reset_state(self) -> None:
        self.high_count = 0
        self.low_count = 0
        self.last_action_s = -math.inf
        self.warmup = WarmupTracker(self.instance_warmup_s)

    def reset(self, context: PolicyContext) -> None:
        del context
        self._reset_state()

    def decide(self, observation: Observation) -> Decision:
        now = observation.time_s
        low, high = observation.min_replicas, observation.max_replicas
        desired = min(max(observation.desired, low), high)
        warming = self.warmup.update(now, observation.ready)
        value = per_replica_metric(observation, self.metric)
        if value is None:
            self.high_count = self.low_count = 0
            return Decision(desired, "InsufficientData: hold")
        self.high_count = self.high_count + 1 if self.high.breaching(value) else 0
        in_low = self.low is not None and self.low.breaching(value)
        self.low_count = self.low_count + 1 if in_low else 0
        if now - self.last_action_s < self.action_interval_s - 1e-9:
            return Decision(desired, f"AwaitingAlarmPeriod: {self.metric} {value:.3f}")
        if self.high_count >= self.high.evaluation_periods:
            step = self.high.step_for(value)
            if step is None:
                return Decision(desired, f"NoMatchingStep: {value:.3f}")
            steady = max(observation.ready - warming, 0)
            proposed = min(max(apply_adjustment(self.high, steady, step.adjustment), low), high)
            self.last_action_s = now
            if proposed > desired:
                return Decision(proposed, f"HighAlarm: {value:.3f}, step {step.adjustment}")
            return Decision(desired, f"HighAlarmInFlight: {value:.3f}, {desired} covers it")
        if self.low is not None and self.low_count >= self.low.evaluation_periods:
            if blocked := scale_in_blocked(observation, warming):
                return Decision(desired, blocked)
            step = self.low.step_for(value)
            if step is None:
                return Decision(desired, f"NoMatchingStep: {value:.3f}")
            proposed = min(max(apply_adjustment(self.low, desired, step.adjustment), low), high)
            self.last_action_s = now
            if proposed < desired:
                return Decision(proposed, f"LowAlarm: {value:.3f}, step {step.adjustment}")
            return Decision(desired, f"LowAlarmAtFloor: {value:.3f}")
        return Decision(desired, f"OK: {self.metric} {value:.3f}")

    def quiet_band(self, observation: Observation) -> Band | None:
        """The metric breaching neither alarm (`sim.control.BandedPolicy`): both
        consecutive counts restart and no step applies."""
        if not self.high.scales_out or (self.low is not None and self.low.scales_out):
            return None  # (alarms the spec would refuse: no band worked out for them)
        metric = band_metric(self.metric)
        replicas = observation.ready + observation.pending
        interval, now = observation.interval_s, observation.time_s
        above_for, above_since = _count_clock(self.high, self.high_count, interval, now)
        below_for, below_since = _count_clock(self.low, self.low_count, interval, now)
        return Band(
            metric, _lowest_clear(self.low), _highest_clear(self.high), replicas,
            above_for_s=above_for, above_since_s=above_since,
            below_for_s=below_for, below_since_s=below_since,
        )  # fmt: skip

    def pass_band(self, span: QuietSpan) -> None:
        """Each quiet reading's effect on the consecutive counts and the warmup tracker."""
        high, low = self.high, self.low
        high_count, low_count = self.high_count, self.low_count
        for value in span_values(self.metric, span):
            high_count = high_count + 1 if high.breaching(value) else 0
            low_count = low_count + 1 if low is not None and low.breaching(value) else 0
        self.high_count, self.low_count = high_count, low_count
        self.warmup.update_all(span)


def _count_clock(
    alarm: StepAlarm | None, count: int, interval_s: float, now_s: float
) -> tuple[float, float | None]:
    """An alarm's evaluation periods as a band's clock: how long a run of breaching
    readings stays quiet (until the run's `evaluation_periods`-th reading, half an
    interval early for ticks rounded to whole seconds) and when the run that `count`
    (the breaching readings up to `now_s`) belongs to began."""
    if alarm is None or alarm.evaluation_periods < 2:
        return -math.inf, None
    since = now_s - (count - 1) * interval_s if count else None
    return (alarm.evaluation_periods - 1.5) * interval_s, since


def _highest_clear(alarm: StepAlarm) -> float:
    """The highest value a scale-out alarm does not breach."""
    if alarm.comparison == "GreaterThanOrEqualToThreshold":
        return math.nextafter(alarm.threshold, -math.inf)
    return alarm.threshold


def _lowest_clear(alarm: StepAlarm | None) -> float:
    """The lowest value a scale-in alarm (if any) does not breach."""
    if alarm is None:
        return -math.inf
    if alarm.comparison == "LessThanOrEqualToThreshold":
        return math.nextafter(alarm.threshold, math.inf)
    return alarm.threshold


def _default_high() -> StepAlarm:
    return StepAlarm(
        threshold=0.7,
        comparison="GreaterThanOrEqualToThreshold",
        evaluation_periods=1,
        steps=(
            StepAdjustment(lower_bound=0.0, upper_bound=0.1, adjustment=1),
            StepAdjustment(lower_bound=0.1, upper_bound=0.2, adjustment=2),
            StepAdjustment(lower_bound=0.2, upper_bound=None, adjustment=4),
        ),
    )


def _default_low() -> StepAlarm:
    return StepAlarm(
        threshold=0.3,
        comparison="LessThanOrEqualToThreshold",
        evaluation_periods=5,
        steps=(StepAdjustment(lower_bound=None, upper_bound=0.0, adjustment=-1),),
    )


class StepSpec(PolicySpecBase):
    """Spec of `StepScalingPolicy`.

    Preset `step`: high alarm at 0.7 (+1 / +2 / +4 replicas for breaches of
    0-0.1 / 0.1-0.2 / 0.2+), low alarm at 0.3 over 5 intervals (-1 replica).
    """

    kind: Literal["step"] = "step"
    metric: StepMetric = "utilisation"
    high: StepAlarm = Field(default_factory=_default_high)
    low: StepAlarm | None = Field(default_factory=_default_low)
    instance_warmup_s: float = Field(default=DEFAULT_WARMUP_S, ge=0.0)
    action_interval_s: float = Field(default=DEFAULT_ACTION_INTERVAL_S, ge=0.0)

    @model_validator(mode="after")
    def _band(self) -> StepSpec:
        if not self.high.scales_out:
            raise ValueError("high must be a GreaterThan... alarm (it scales out)")
        if self.low is not None:
            if self.low.scales_out:
                raise ValueError("low must be a LessThan... alarm (it scales in)")
            if self.low.threshold >= self.high.threshold:
                raise ValueError(
                    f"low.threshold {self.low.threshold} must be below high.threshold "
                    f"{self.high.threshold}; the gap is the hysteresis band"
                )
        return self

    def build(self) -> Policy:
        return self.wrap(
            StepScalingPolicy(
                high=self.high,
                low=self.low,
                metric=self.metric,
                instance_warmup_s=self.instance_warmup_s,
                action_interval_s=self.action_interval_s,
                name=self.display_name(),
            )
        )
