"""The emitted scaling policy as it lives in a stack's config (`scaleplan:scaling`).

One pydantic schema, shared by `planner emit` (which writes it into
`Pulumi.<stack>.yaml`) and the Pulumi program in `infra/` (which reads it and
builds native constructs from it), so the two can never disagree. Pure data: no
pulumi import, no clock, no file.

A stack has up to three scaled targets, each optional:

- `eks`: the inference Deployment on the GPU node pools (replicas). Native
  constructs: an `autoscaling/v2` HorizontalPodAutoscaler (`target_tracking` and
  `hpa_behavior`) or, for scale to zero and cron triggers, a KEDA ScaledObject
  (`keda`).
- `asg`: the EC2 Auto Scaling group serving directly on GPU instances
  (instances). Native constructs: target tracking, step scaling with two
  CloudWatch alarms (a hysteresis band), scheduled actions, predictive scaling and
  a precomputed 48 h `schedule` (one-shot scheduled actions).
- `serverless`: the SageMaker serverless endpoint (provisioned concurrency).
  Native constructs: Application Auto Scaling target tracking and scheduled
  actions.

Every field is either built into a native construct by the program or refused
here by name: nothing is accepted and then silently dropped (a KEDA ScaledObject
has no target tracking and takes its floor from `keda.min_replicas`; an HPA has no
instance warmup and no disable-scale-in flag; a SageMaker scheduled action has no
desired capacity besides its minimum). Checks that need the current time (a
schedule must not start in the past) run when `now` is passed in the validation
context: `StackScaling.model_validate(data, context={"now": now})`.
"""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import datetime
from typing import Any, Literal

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1

#: The stack config key `planner emit` writes and the program reads.
CONFIG_KEY = "scaleplan:scaling"

TargetName = Literal["eks", "asg", "serverless"]

#: Logical metric names -> the targets that have a native way to track them.
#: ASG names map to predefined metrics (AWS Auto Scaling API reference,
#: PredefinedMetricSpecification) or to the custom CloudWatch metrics the
#: serving image publishes in the `scaleplan` namespace; SageMaker names map to
#: Application Auto Scaling predefined metrics; EKS names are HPA metrics.
METRICS: dict[str, frozenset[str]] = {
    "cpu_utilisation": frozenset({"asg", "eks"}),
    "gpu_utilisation": frozenset({"asg", "eks"}),
    "requests_per_replica": frozenset({"asg", "eks"}),
    "queue_length_per_replica": frozenset({"asg", "eks"}),
    "provisioned_concurrency_utilisation": frozenset({"serverless"}),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_metric(metric: str, target: str, field: str) -> None:
    targets = METRICS.get(metric)
    if targets is None:
        raise ValueError(f"{field}: unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")
    if target not in targets:
        allowed = sorted(m for m, t in METRICS.items() if target in t)
        raise ValueError(
            f"{field}: metric {metric!r} has no native form on target {target!r}; "
            f"use one of {', '.join(allowed)}"
        )


class Source(_Model):
    """Which policy bundle this config was compiled from."""

    bundle_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    policy_kind: str | None = None

    @field_validator("policy_kind")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        from policies.kinds import SPEC_CLASSES

        if value is not None and value not in SPEC_CLASSES:
            raise ValueError(
                f"source.policy_kind: unknown policy kind {value!r}; "
                f"known kinds: {', '.join(sorted(SPEC_CLASSES))}"
            )
        return value


class Bounds(_Model):
    """Capacity bounds of a target, in its unit (replicas, instances, concurrency)."""

    min: int = Field(ge=0)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min > self.max:
            raise ValueError(f"bounds: min ({self.min}) is above max ({self.max}); set min <= max")
        return self


class TargetTracking(_Model):
    """Keep `metric` near `target`: HPA metric target, ASG or App Auto Scaling policy.

    `disable_scale_in` and `warmup_s` are AWS settings: on `eks` (an HPA) they are
    refused when given and left out when written (`StackScaling` serialises eks
    without them), since the HPA has neither.
    """

    metric: str
    target: float = Field(gt=0.0)
    disable_scale_in: bool = False
    # AWS default instance warmup is 300 s (EC2 Auto Scaling user guide).
    warmup_s: int = Field(default=300, ge=0, le=3600)


class StepAdjustment(_Model):
    """One step: bounds are relative to the alarm threshold (AWS StepAdjustment)."""

    lower: float | None = None
    upper: float | None = None
    adjustment: int

    @model_validator(mode="after")
    def _interval(self) -> StepAdjustment:
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"step: lower ({self.lower}) must be below upper ({self.upper})")
        if self.adjustment == 0:
            raise ValueError("step: adjustment 0 does nothing; remove the step")
        return self


def _check_steps(steps: tuple[StepAdjustment, ...], field: str, out: bool) -> None:
    if not steps:
        raise ValueError(f"{field}: give at least one step adjustment")
    for step in steps:
        if (step.adjustment > 0) != out:
            sign = "positive" if out else "negative"
            raise ValueError(f"{field}: every adjustment must be {sign}, got {step.adjustment}")
    # AWS rejects overlapping or gapped intervals and allows one open outer end.
    # Scale out walks upwards from the high alarm; scale in walks downwards from the low one.
    inf = float("inf")
    if out:
        ordered = sorted(steps, key=lambda s: -inf if s.lower is None else s.lower)
        pairs = [(a.upper, b.lower) for a, b in itertools.pairwise(ordered)]
        outer = ordered[-1].upper
    else:
        ordered = sorted(steps, key=lambda s: -(inf if s.upper is None else s.upper))
        pairs = [(a.lower, b.upper) for a, b in itertools.pairwise(ordered)]
        outer = ordered[-1].lower
    if any(x is None or y is None or x != y for x, y in pairs):
        raise ValueError(f"{field}: step intervals must be contiguous without overlap or gap")
    if outer is not None:
        raise ValueError(f"{field}: the outermost step must be open-ended (no bound on that side)")


class StepScaling(_Model):
    """Step scaling between two alarms: above `high` scale out, below `low` scale in.

    The gap between `low` and `high` is the hysteresis band: nothing happens
    inside it, so the pool does not flap around a single threshold.
    """

    metric: str
    high: float
    low: float
    period_s: Literal[10, 30, 60, 120, 300, 600, 900, 3600] = 60
    evaluation_periods_high: int = Field(default=2, ge=1, le=60)
    evaluation_periods_low: int = Field(default=10, ge=1, le=60)
    scale_out: tuple[StepAdjustment, ...]
    scale_in: tuple[StepAdjustment, ...]
    warmup_s: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _band(self) -> StepScaling:
        if self.low >= self.high:
            raise ValueError(
                f"step: low ({self.low}) must be below high ({self.high}) "
                "to leave a hysteresis band"
            )
        _check_steps(self.scale_out, "step.scale_out", out=True)
        _check_steps(self.scale_in, "step.scale_in", out=False)
        return self


def _check_cron(expr: str, field: str) -> None:
    if not croniter.is_valid(expr) or len(expr.split()) != 5:
        raise ValueError(
            f"{field}: {expr!r} is not a 5-field cron expression (min hour dom mon dow)"
        )


def _check_timezone(name: str, field: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{field}: unknown time zone {name!r}; use an IANA name") from None


class ScheduledAction(_Model):
    """A recurring change of bounds/desired capacity (ASG or App Auto Scaling)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    cron: str
    timezone: str = "UTC"
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    desired: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> ScheduledAction:
        _check_cron(self.cron, f"scheduled[{self.name}].cron")
        _check_timezone(self.timezone, f"scheduled[{self.name}].timezone")
        if self.min is None and self.max is None and self.desired is None:
            raise ValueError(f"scheduled[{self.name}]: set at least one of min, max, desired")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"scheduled[{self.name}]: min ({self.min}) is above max ({self.max})")
        if self.desired is not None and self.max is not None and self.desired > self.max:
            raise ValueError(
                f"scheduled[{self.name}]: desired ({self.desired}) is above max ({self.max})"
            )
        return self


class PredictiveScaling(_Model):
    """EC2 predictive scaling: hourly forecast 48 h ahead, refreshed every 6 h (AWS docs)."""

    mode: Literal["ForecastAndScale", "ForecastOnly"] = "ForecastOnly"
    metric: Literal["ASGCPUUtilization", "ASGNetworkIn", "ASGNetworkOut", "ALBRequestCount"]
    target: float = Field(gt=0.0)
    # AWS allows a scheduling buffer of 0-3600 s; launch this far before the forecast.
    scheduling_buffer_s: int = Field(default=300, ge=0, le=3600)
    max_capacity_breach_behavior: Literal["HonorMaxCapacity", "IncreaseMaxCapacity"] = (
        "HonorMaxCapacity"
    )
    max_capacity_buffer_pct: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _buffer(self) -> PredictiveScaling:
        increase = self.max_capacity_breach_behavior == "IncreaseMaxCapacity"
        if increase != (self.max_capacity_buffer_pct is not None):
            raise ValueError(
                "predictive.max_capacity_buffer_pct is required with IncreaseMaxCapacity "
                "and not allowed with HonorMaxCapacity"
            )
        return self


class HpaPolicy(_Model):
    """One HPA rate policy: at most `value` pods (or percent) per `period_s`."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_s: int = Field(gt=0, le=1800)


class HpaRules(_Model):
    """HPA behavior for one direction (Kubernetes HPAScalingRules)."""

    stabilization_window_s: int = Field(ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: tuple[HpaPolicy, ...] = ()
    # Kubernetes default tolerance is 0.1 (10 %) around the target.
    tolerance: float | None = Field(default=None, ge=0.0, lt=1.0)


class HpaBehavior(_Model):
    """`spec.behavior` of an autoscaling/v2 HPA (defaults: up 0 s, down 300 s)."""

    scale_up: HpaRules = Field(default_factory=lambda: HpaRules(stabilization_window_s=0))
    scale_down: HpaRules = Field(default_factory=lambda: HpaRules(stabilization_window_s=300))


class CronTrigger(_Model):
    """A KEDA cron trigger: hold `desired` replicas between `start` and `end`."""

    start: str
    end: str
    timezone: str = "UTC"
    desired: int = Field(ge=1)

    @model_validator(mode="after")
    def _valid(self) -> CronTrigger:
        _check_cron(self.start, "keda.cron.start")
        _check_cron(self.end, "keda.cron.end")
        _check_timezone(self.timezone, "keda.cron.timezone")
        return self


class Keda(_Model):
    """A KEDA ScaledObject instead of a plain HPA: scale to zero and cron triggers."""

    min_replicas: int = Field(default=0, ge=0)
    # KEDA defaults: pollingInterval 30 s, cooldownPeriod 300 s (keda.sh ScaledObject spec).
    polling_interval_s: int = Field(default=30, ge=1)
    cooldown_s: int = Field(default=300, ge=0)
    cron: tuple[CronTrigger, ...] = ()
    prometheus_query: str | None = None
    prometheus_threshold: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _trigger(self) -> Keda:
        if not self.cron and self.prometheus_query is None:
            raise ValueError("keda: give at least one trigger (cron or prometheus_query)")
        if (self.prometheus_query is None) != (self.prometheus_threshold is None):
            raise ValueError("keda: prometheus_query and prometheus_threshold go together")
        return self


class CapacitySchedule(_Model):
    """A precomputed desired-capacity schedule (predictive and RL policies).

    As AWS predictive scaling does, the next 48 hours; the retraining job
    refreshes it. Applied as one-shot scheduled actions at each change.
    """

    start: datetime
    step_s: int = Field(default=3600, ge=300)
    desired: tuple[int, ...]

    @model_validator(mode="after")
    def _horizon(self) -> CapacitySchedule:
        if not self.desired:
            raise ValueError("schedule.desired: give at least one value")
        if min(self.desired) < 0:
            raise ValueError("schedule.desired: values must be >= 0")
        if len(self.desired) * self.step_s > 48 * 3600:
            raise ValueError("schedule: covers more than 48 h; emit at most 48 h ahead")
        if self.start.tzinfo is None:
            raise ValueError("schedule.start: give a time zone (e.g. 2026-01-01T00:00:00Z)")
        return self

    @property
    def end(self) -> datetime:
        """When the last value stops applying."""
        from datetime import timedelta

        return self.start + timedelta(seconds=len(self.desired) * self.step_s)

    def changes(self) -> list[tuple[datetime, int]]:
        """(time, desired) at the start and at every change of value, in order."""
        from datetime import timedelta

        out: list[tuple[datetime, int]] = []
        for i, value in enumerate(self.desired):
            if not out or out[-1][1] != value:
                out.append((self.start + timedelta(seconds=i * self.step_s), value))
        return out


class TargetScaling(_Model):
    """The emitted policy for one target: bounds plus native blocks."""

    bounds: Bounds
    target_tracking: TargetTracking | None = None
    step: StepScaling | None = None
    scheduled: tuple[ScheduledAction, ...] = ()
    predictive: PredictiveScaling | None = None
    hpa_behavior: HpaBehavior | None = None
    keda: Keda | None = None
    schedule: CapacitySchedule | None = None


#: Which blocks each target has a native construct for.
_ALLOWED_BLOCKS: dict[str, frozenset[str]] = {
    "eks": frozenset({"target_tracking", "hpa_behavior", "keda"}),
    "asg": frozenset({"target_tracking", "step", "scheduled", "predictive", "schedule"}),
    "serverless": frozenset({"target_tracking", "scheduled", "schedule"}),
}


#: TargetTracking fields only AWS has: refused on eks (an HPA), left out when eks is written.
_AWS_ONLY_TRACKING = frozenset({"disable_scale_in", "warmup_s"})


def _check_eks(t: TargetScaling) -> None:
    tt = t.target_tracking
    if tt is not None:
        for field in sorted(_AWS_ONLY_TRACKING & tt.model_fields_set):
            fix = (
                "use hpa_behavior.scale_down.select_policy: Disabled"
                if field == "disable_scale_in"
                else "an HPA counts a pod once it is Ready; delay scale-out with "
                "hpa_behavior.scale_up.stabilization_window_s instead"
            )
            raise ValueError(
                f"eks.target_tracking.{field}: an HPA has no {field} and would ignore it; "
                f"remove it ({fix})"
            )
    behavior = t.hpa_behavior
    if behavior is not None:
        for direction in ("scale_up", "scale_down"):
            if getattr(behavior, direction).tolerance is not None:
                raise ValueError(
                    f"eks.hpa_behavior.{direction}.tolerance: a per-HPA tolerance needs the alpha "
                    "HPAConfigurableTolerance feature gate, which EKS does not enable (the API "
                    "server drops the field), and KEDA 2.17 has no such field; remove it (the "
                    "cluster-wide 0.1 applies)"
                )
    keda = t.keda
    if keda is None:
        return
    if tt is not None:
        raise ValueError(
            "eks.target_tracking: a KEDA ScaledObject replaces the HPA and ignores "
            "target_tracking; express the metric as keda.prometheus_query and "
            "keda.prometheus_threshold, or remove the keda block"
        )
    if keda.min_replicas > t.bounds.max:
        raise ValueError(
            f"eks.keda.min_replicas ({keda.min_replicas}) is above bounds.max ({t.bounds.max})"
        )
    if keda.min_replicas != t.bounds.min:
        raise ValueError(
            f"eks.keda.min_replicas ({keda.min_replicas}) differs from bounds.min "
            f"({t.bounds.min}); a ScaledObject's floor is keda.min_replicas and bounds.min "
            "would be ignored: set them equal"
        )
    for cron in keda.cron:
        if not t.bounds.min <= cron.desired <= t.bounds.max:
            raise ValueError(
                f"eks.keda.cron desired ({cron.desired}) lies outside bounds "
                f"[{t.bounds.min}, {t.bounds.max}]; KEDA would clamp it"
            )


def _check_target(name: str, t: TargetScaling) -> None:
    for block in ("target_tracking", "step", "predictive", "hpa_behavior", "keda", "schedule"):
        if getattr(t, block) is not None and block not in _ALLOWED_BLOCKS[name]:
            raise ValueError(f"{name}.{block}: no native construct on this target; remove it")
    if t.scheduled and "scheduled" not in _ALLOWED_BLOCKS[name]:
        raise ValueError(f"{name}.scheduled: no native construct on this target; remove it")
    if t.target_tracking is not None:
        _check_metric(t.target_tracking.metric, name, f"{name}.target_tracking.metric")
    if t.step is not None:
        _check_metric(t.step.metric, name, f"{name}.step.metric")
    if name == "eks":
        _check_eks(t)
    if name == "eks" and t.keda is None and t.target_tracking is None:
        raise ValueError("eks: give target_tracking (HPA metric) or keda triggers")
    if name == "eks" and t.keda is None and t.bounds.min < 1:
        raise ValueError("eks.bounds.min: an HPA cannot scale to 0; use a keda block for that")
    for action in t.scheduled:
        if name == "serverless" and action.desired is not None and action.min is not None:
            raise ValueError(
                f"serverless.scheduled[{action.name}]: a SageMaker scheduled action sets only "
                "min and max capacity (desired becomes the min); give desired or min, not both"
            )
        for label, value in (("min", action.min), ("max", action.max), ("desired", action.desired)):
            if value is not None and not t.bounds.min <= value <= t.bounds.max:
                raise ValueError(
                    f"{name}.scheduled[{action.name}].{label} ({value}) lies outside "
                    f"bounds [{t.bounds.min}, {t.bounds.max}]"
                )
    if t.schedule is not None and max(t.schedule.desired) > t.bounds.max:
        raise ValueError(f"{name}.schedule: a value exceeds bounds.max ({t.bounds.max})")
    if t.schedule is not None and min(t.schedule.desired) < t.bounds.min:
        raise ValueError(
            f"{name}.schedule: value {min(t.schedule.desired)} is below bounds.min "
            f"({t.bounds.min}); the bounds would override it"
        )


def _check_fresh(name: str, t: TargetScaling, now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("validation context 'now' must carry a time zone")
    if t.schedule is not None and t.schedule.start < now:
        raise ValueError(
            f"{name}.schedule: starts {t.schedule.start.isoformat()}, before now "
            f"({now.isoformat()}); emit a fresh schedule (`planner emit`)"
        )


def _without_empty(value: Any) -> Any:
    """`value` without empty lists (an absent `scheduled:` reads back as the same empty tuple)."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


class StackScaling(_Model):
    """`scaleplan:scaling`: the policy `planner emit` compiled for one stack."""

    schema_version: Literal[1] = 1
    source: Source
    eks: TargetScaling | None = None
    asg: TargetScaling | None = None
    serverless: TargetScaling | None = None

    @model_validator(mode="after")
    def _targets(self, info: ValidationInfo) -> StackScaling:
        present = [n for n in ("eks", "asg", "serverless") if getattr(self, n) is not None]
        if not present:
            raise ValueError("scaling: give at least one target (eks, asg or serverless)")
        now = info.context.get("now") if isinstance(info.context, dict) else None
        for name in present:
            _check_target(name, getattr(self, name))
            if now is not None:
                _check_fresh(name, getattr(self, name), now)
        return self

    @field_serializer("eks")
    def _eks_without_aws_fields(
        self, eks: TargetScaling | None, info: SerializationInfo
    ) -> dict[str, Any] | None:
        # An HPA has no warmup or disable-scale-in: never write them, so a dump
        # validates again (they are refused on eks when given).
        if eks is None:
            return None
        exclude: Any = {"target_tracking": set(_AWS_ONLY_TRACKING)}
        value: dict[str, Any] = eks.model_dump(
            mode=info.mode, exclude=exclude, exclude_none=info.exclude_none
        )
        return value

    def to_config(self) -> dict[str, Any]:
        """The value `planner emit` writes under `scaleplan:scaling` (JSON types, no nulls)."""
        value: dict[str, Any] = _without_empty(self.model_dump(mode="json", exclude_none=True))
        return value

    def target(self, name: TargetName) -> TargetScaling | None:
        """The emitted policy for `name`, or None if this stack does not scale it."""
        value: TargetScaling | None = getattr(self, name)
        return value
