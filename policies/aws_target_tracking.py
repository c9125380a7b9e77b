"""Target tracking with AWS EC2 Auto Scaling semantics.

References (Amazon EC2 Auto Scaling User Guide):
* Target tracking scaling policies: "scales out proportionally to the metric as
  fast as it can, but scales in more gradually"; a missing metric
  (INSUFFICIENT_DATA) stops scaling; `DisableScaleIn`.
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html
* Default instance warmup: warming instances do not contribute to the aggregated
  metric; they count as current capacity for scale-out (no double counting);
  scale-in is blocked until they finish warming up.
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html
* The two alarms AWS creates for a target-tracking policy: AlarmHigh (metric >
  target for 3 datapoints of 1 minute) and AlarmLow (metric < 90% of target for 15
  datapoints of 1 minute), as shown in the CloudWatch console for such policies.

AWS publishes no formula for the size of a scale-in; scaleplan removes at most
`scale_in_max_fraction` of the capacity per action (default 10%, at least one
instance), repeated after `scale_in_cooldown_s` while AlarmLow holds.
"""

from __future__ import annotations

import math
from typing import Literal, cast

from pydantic import Field, model_validator

from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import Band, BandMetric, QuietSpan

TrackedMetric = Literal["utilisation", "rps_per_replica"]

#: The AWS documentation's running example keeps average CPU at 50 percent.
DEFAULT_TARGET_UTILISATION = 0.5
#: AlarmHigh: 3 x 60 s datapoints; AlarmLow: 15 x 60 s datapoints at 90% of target.
ALARM_HIGH_S = 180.0
ALARM_LOW_S = 900.0
ALARM_LOW_RATIO = 0.9
#: Without a configured warmup, AWS uses the group's default cooldown (300 s).
DEFAULT_WARMUP_S = 300.0
#: Application Auto Scaling's default ScaleInCooldown.
DEFAULT_SCALE_IN_COOLDOWN_S = 300.0
_EPS = 1e-9
#: A band ends an alarm's clock this much early: the kernel measures it as one difference
#: of times, `decide` as a sum with the interval.
_CLOCK_MARGIN_S = 1e-6


def per_replica_metric(observation: Observation, metric: str) -> float | None:
    """The alarm metric AWS policies watch: `utilisation`, or else demand per ready replica.

    None (an alarm's INSUFFICIENT_DATA) when nothing is ready or the metric is missing.
    """
    if observation.ready <= 0:
        return None
    if metric == "utilisation":
        return observation.utilisation
    if observation.demand_rps is None:
        return None
    return observation.demand_rps / observation.ready


def band_metric(metric: str) -> BandMetric:
    """The reading a band on `per_replica_metric(observation, metric)` watches."""
    return "utilisation" if metric == "utilisation" else "demand_per_ready"


def span_values(metric: str, span: QuietSpan, start: int = 0) -> list[float]:
    """`per_replica_metric` at each interval of a band's span from `start` (a band's
    readings miss neither metric)."""
    if metric == "utilisation":
        return span.utilisation[start:]
    demands, readies = span.demand_rps[start:], span.ready[start:]
    return [cast(float, demand) / ready for demand, ready in zip(demands, readies, strict=True)]


class WarmupTracker:
    """Replicas still warming up, inferred from observed increases of `ready`.

    A replica is warming for `warmup_s` after it becomes ready (InService); the
    tracker is explicit policy state, reset with the policy.
    """

    def __init__(self, warmup_s: float) -> None:
        self.warmup_s = warmup_s
        self.prev_ready: int | None = None
        self.arrivals: tuple[tuple[float, int], ...] = ()

    def update(self, time_s: float, ready: int) -> int:
        """Record this interval's ready count; return how many ready replicas are warming."""
        if self.prev_ready is not None and ready > self.prev_ready:
            self.arrivals = (*self.arrivals, (time_s, ready - self.prev_ready))
        self.prev_ready = ready
        if not self.arrivals:  # the usual case: nothing warming, nothing to expire
            return 0 if ready >= 0 else ready
        self.arrivals = tuple(a for a in self.arrivals if time_s - a[0] < self.warmup_s)
        return min(sum(count for _, count in self.arrivals), ready)

    def update_all(self, span: QuietSpan) -> None:
        """`update` at each interval of a span, oldest first (its warming counts unused)."""
        update = self.update
        for time_s, ready in zip(span.time_s, span.ready, strict=True):
            update(time_s, ready)


def alarm_clock(since_s: float | None, past: bool, time_s: float) -> float | None:
    """When an alarm's run of readings past its line began, after the reading at
    `time_s`: this one if it starts the run, None if it is not past the line."""
    if not past:
        return None
    return time_s if since_s is None else since_s


def scale_in_blocked(observation: Observation, warming: int) -> str | None:
    """Why scale-in must wait (a replica pending or warming, as AWS blocks it), or None."""
    if observation.pending > 0 or warming > 0:
        return f"ScaleInBlockedByWarmup: {observation.pending} pending, {warming} warming"
    return None


class AwsTargetTrackingPolicy:
    """Keep a metric at a target the way an EC2 Auto Scaling target-tracking policy does.

    Parameters:
        target: Utilisation fraction (default 0.5) or requests/s per replica.
        metric: `utilisation` (ASGAverageCPUUtilization analogue) or
            `rps_per_replica` (ALBRequestCountPerTarget analogue: demand / ready).
        scale_out_after_s / scale_in_after_s: How long the metric must stay above
            the target / below `scale_in_ratio` x target (AlarmHigh 180 s, AlarmLow 900 s).
        scale_in_ratio: AlarmLow threshold as a fraction of the target (0.9).
        instance_warmup_s: Seconds after becoming ready that a replica is warming
            (300 s): it blocks scale-in.
        scale_in_cooldown_s: Minimum seconds between scale-ins (300 s).
        scale_in_max_fraction: Largest share of capacity one scale-in removes (0.1).
        disable_scale_in: Never remove capacity (`DisableScaleIn`).

    Behaviour: on AlarmHigh, desired = ceil(load / target) where load = metric x
    ready, compared with `Observation.desired`, which already counts pending and
    warming replicas, so capacity in flight is not ordered twice. On AlarmLow,
    step down towards ceil(load / target) by at most the max fraction, unless a
    replica is pending or warming, or a scale-in happened within the cooldown.

    Edges: a missing metric (INSUFFICIENT_DATA) holds and restarts both alarm
    clocks; the simulator's utilisation averages all ready replicas (its load
    balancer spreads load evenly, so excluding warming ones would not change the
    average); results are clamped to the pool bounds.
    """

    def __init__(
        self,
        *,
        target: float = DEFAULT_TARGET_UTILISATION,
        metric: TrackedMetric = "utilisation",
        scale_out_after_s: float = ALARM_HIGH_S,
        scale_in_after_s: float = ALARM_LOW_S,
        scale_in_ratio: float = ALARM_LOW_RATIO,
        instance_warmup_s: float = DEFAULT_WARMUP_S,
        scale_in_cooldown_s: float = DEFAULT_SCALE_IN_COOLDOWN_S,
        scale_in_max_fraction: float = 0.1,
        disable_scale_in: bool = False,
        name: str = "aws-target-tracking",
    ) -> None:
        if target <= 0:
            raise ValueError(f"target must be > 0, got {target}")
        self.target = target
        self.metric: TrackedMetric = metric
        self.scale_out_after_s = scale_out_after_s
        self.scale_in_after_s = scale_in_after_s
        self.scale_in_ratio = scale_in_ratio
        self.instance_warmup_s = instance_warmup_s
        self.scale_in_cooldown_s = scale_in_cooldown_s
        self.scale_in_max_fraction = scale_in_max_fraction
        self.disable_scale_in = disable_scale_in
        self.name = name
        self._reset_state()

    def _reset_state(self) -> None:
        self.high_since_s: float | None = None
        self.low_since_s: float | None = None
        self.warmup = WarmupTracker(self.instance_warmup_s)
        self.last_scale_in_s = -math.inf
        self._vs_target = f" vs target {self.target}"  # every reason's tail, formatted once a run

    def reset(self, context: PolicyContext) -> None:
        del context
        self._reset_state()

    def decide(self, observation: Observation) -> Decision:
        now = observation.time_s
        low, high = observation.min_replicas, observation.max_replicas
        capacity = min(max(observation.desired, low), high)
        warming = self.warmup.update(now, observation.ready)
        value = per_replica_metric(observation, self.metric)
        if value is None:
            self.high_since_s = self.low_since_s = None
            return Decision(capacity, "InsufficientData: hold")
        self.high_since_s = alarm_clock(self.high_since_s, value > self.target, now)
        self.low_since_s = alarm_clock(
            self.low_since_s, value < self.scale_in_ratio * self.target, now
        )
        interval = observation.interval_s
        needed = max(math.ceil(value * observation.ready / self.target - _EPS), 0)
        shown = f"{self.metric} {value:.3f}{self._vs_target}"
        if self.high_since_s is not None and now - self.high_since_s + interval >= (
            self.scale_out_after_s - _EPS
        ):
            desired = min(needed, high)
            if desired > capacity:
                return Decision(desired, f"AlarmHigh: {shown} -> {desired}")
            return Decision(capacity, f"AlarmHighInFlight: {shown}, {capacity} covers it")
        if self.low_since_s is not None and now - self.low_since_s + interval >= (
            self.scale_in_after_s - _EPS
        ):
            if self.disable_scale_in:
                return Decision(capacity, f"ScaleInDisabled: {shown}")
            if blocked := scale_in_blocked(observation, warming):
                return Decision(capacity, blocked)
            if now - self.last_scale_in_s < self.scale_in_cooldown_s:
                return Decision(capacity, f"ScaleInCooldown: {shown}")
            step = max(1, math.floor(capacity * self.scale_in_max_fraction))
            desired = max(needed, capacity - step, low)
            if desired < capacity:
                self.last_scale_in_s = now
                return Decision(desired, f"AlarmLow: {shown} -> {desired}")
        return Decision(capacity, f"OK: {shown}")

    def quiet_band(self, observation: Observation) -> Band | None:
        """The readings at which both alarms stay OK (`sim.control.BandedPolicy`): the
        metric between AlarmLow's threshold and the target (both included: both
        clocks restart), or above or below them for less than the alarm's period
        (less a microsecond, for the rounding of the clock's sum)."""
        metric = band_metric(self.metric)
        replicas = observation.ready + observation.pending
        interval = observation.interval_s
        return Band(
            metric, self.scale_in_ratio * self.target, self.target, replicas,
            above_for_s=self.scale_out_after_s - interval - _CLOCK_MARGIN_S,
            above_since_s=self.high_since_s,
            below_for_s=self.scale_in_after_s - interval - _CLOCK_MARGIN_S,
            below_since_s=self.low_since_s,
        )  # fmt: skip

    def pass_band(self, span: QuietSpan) -> None:
        """Each quiet reading's effect on the alarm clocks and the warmup tracker."""
        high_since, low_since = self.high_since_s, self.low_since_s
        target, low_line = self.target, self.scale_in_ratio * self.target
        for time_s, value in zip(span.time_s, span_values(self.metric, span), strict=True):
            high_since = alarm_clock(high_since, value > target, time_s)
            low_since = alarm_clock(low_since, value < low_line, time_s)
        self.high_since_s, self.low_since_s = high_since, low_since
        self.warmup.update_all(span)


class AwsTargetTrackingSpec(PolicySpecBase):
    """Spec of `AwsTargetTrackingPolicy` (preset `aws-target-tracking`: 50% utilisation)."""

    kind: Literal["aws-target-tracking"] = "aws-target-tracking"
    metric: TrackedMetric = "utilisation"
    target: float = Field(default=DEFAULT_TARGET_UTILISATION, gt=0.0)
    scale_out_after_s: float = Field(default=ALARM_HIGH_S, ge=0.0)
    scale_in_after_s: float = Field(default=ALARM_LOW_S, ge=0.0)
    scale_in_ratio: float = Field(default=ALARM_LOW_RATIO, gt=0.0, le=1.0)
    instance_warmup_s: float = Field(default=DEFAULT_WARMUP_S, ge=0.0)
    scale_in_cooldown_s: float = Field(default=DEFAULT_SCALE_IN_COOLDOWN_S, ge=0.0)
    scale_in_max_fraction: float = Field(default=0.1, gt=0.0, le=1.0)
    disable_scale_in: bool = False

    @model_validator(mode="after")
    def _check(self) -> AwsTargetTrackingSpec:
        if self.metric == "utilisation" and self.target > 1.0:
            raise ValueError(
                f"target {self.target} is a utilisation fraction above 1; use e.g. 0.5 for 50%"
            )
        return self

    def build(self) -> Policy:
        return self.wrap(
            AwsTargetTrackingPolicy(
                target=self.target,
                metric=self.metric,
                scale_out_after_s=self.scale_out_after_s,
                scale_in_after_s=self.scale_in_after_s,
                scale_in_ratio=self.scale_in_ratio,
                instance_warmup_s=self.instance_warmup_s,
                scale_in_cooldown_s=self.scale_in_cooldown_s,
                scale_in_max_fraction=self.scale_in_max_fraction,
                disable_scale_in=self.disable_scale_in,
                name=self.display_name(),
            )
        )
