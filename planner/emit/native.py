"""Policy specs -> native autoscaling blocks of `scaleplan:scaling`, one target at a time.

Each function returns the blocks of one `TargetScaling` (as keyword arguments) or
raises `Unexpressible` with the reason and the nearest kind the target can express.
Nothing is approximated without a note: where a native construct differs from the
simulated policy in a detail (the alarm period, AWS's own forecaster), the
difference is returned as a note the CLI prints and the docs table lists.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from policies.hysteresis.config import DEFAULT_TOLERANCE, DirectionRules, HysteresisSpec
from policies.stack_config import (
    Bounds,
    CronTrigger,
    HpaBehavior,
    HpaPolicy,
    HpaRules,
    Keda,
    PredictiveScaling,
    ScheduledAction,
    StepAdjustment,
    StepScaling,
    TargetTracking,
)
from sim.errors import PolicyError

#: The simulator's metrics -> the stack's logical metrics (and the factor on targets:
#: the simulator's utilisation is a fraction, CloudWatch / DCGM report percent).
METRIC_NAMES: dict[str, tuple[str, float]] = {
    "utilisation": ("gpu_utilisation", 100.0),
    "rps_per_replica": ("requests_per_replica", 1.0),
}
#: Per-pod series the serving image exports (as in infra's HPA metric names), summed
#: over the service's pods for a KEDA prometheus trigger (AverageValue: replicas =
#: ceil(sum / threshold), the HPA's arithmetic).
PROMETHEUS_SERIES: dict[str, str] = {
    "gpu_utilisation": "DCGM_FI_DEV_GPU_UTIL",
    "requests_per_replica": "scaleplan_requests_per_second",
    "queue_length_per_replica": "scaleplan_queue_length",
}
#: CloudWatch standard resolution: the alarm period step and threshold alarms use.
ALARM_PERIOD_S: Literal[60] = 60


class Unexpressible(PolicyError):
    """A policy kind has no construct on a target: the reason and the nearest alternative."""

    def __init__(self, target: str, kind: str, reason: str, alternative: str) -> None:
        self.target = target
        self.kind = kind
        self.reason = reason
        self.alternative = alternative
        super().__init__(
            f"policy kind {kind!r} cannot be expressed on target {target!r}: {reason}; "
            f"nearest expressible: {alternative}"
        )


@dataclass
class Blocks:
    """The blocks of one target being built, and notes on what the construct differs in."""

    bounds: Bounds
    fields: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def stack_metric(metric: str, target: float, where: str) -> tuple[str, float]:
    """The stack's metric name and target for a simulator metric."""
    try:
        name, factor = METRIC_NAMES[metric]
    except KeyError:
        raise PolicyError(f"{where}: metric {metric!r} has no stack metric") from None
    return name, round(target * factor, 6)


def prometheus_query(metric: str, namespace: str, service: str) -> str:
    """The sum over the service's pods of the series behind a logical metric."""
    series = PROMETHEUS_SERIES[metric]
    return f'sum({series}{{namespace="{namespace}",pod=~"{service}-.*"}})'


def _rules(rules: DirectionRules) -> HpaRules:
    return HpaRules(
        stabilization_window_s=round(rules.stabilization_window_s),
        select_policy=rules.select_policy,
        policies=tuple(
            HpaPolicy(type=p.type, value=p.value, period_s=max(1, round(p.period_s)))
            for p in rules.policies
        ),
    )


def hpa_behavior(hysteresis: HysteresisSpec | None, notes: list[str]) -> HpaBehavior:
    """The spec's hysteresis block as HPA behavior (the Kubernetes defaults when absent).

    A tolerance other than the cluster-wide 0.1 has no field EKS honours (the
    per-HPA field is alpha in Kubernetes 1.33), so it is left out and noted.
    """
    spec = hysteresis if hysteresis is not None else HysteresisSpec()
    for direction in ("scale_up", "scale_down"):
        tolerance = getattr(spec, direction).tolerance
        if not math.isclose(tolerance, DEFAULT_TOLERANCE):
            notes.append(
                f"eks: {direction} tolerance {tolerance:g} is not emitted: EKS applies the "
                f"cluster-wide {DEFAULT_TOLERANCE:g} (a per-HPA tolerance needs the alpha "
                "HPAConfigurableTolerance gate)"
            )
    return HpaBehavior(scale_up=_rules(spec.scale_up), scale_down=_rules(spec.scale_down))


def hpa_on_eks(spec: Any, blocks: Blocks, *, keda: bool, namespace: str, service: str) -> None:
    """`hpa`: an HPA metric target and behavior, or the same on a KEDA ScaledObject."""
    metric, target = stack_metric(spec.metric, spec.target, "hpa")
    low = blocks.bounds.min if spec.min_replicas is None else spec.min_replicas
    high = blocks.bounds.max if spec.max_replicas is None else spec.max_replicas
    bounds = Bounds(
        min=min(max(low, blocks.bounds.min), blocks.bounds.max),
        max=max(min(high, blocks.bounds.max), blocks.bounds.min, 1),
    )
    if bounds != blocks.bounds:
        blocks.notes.append(
            f"eks: the spec's replica bounds narrow the stack's [{blocks.bounds.min}, "
            f"{blocks.bounds.max}] to [{bounds.min}, {bounds.max}]"
        )
        blocks.bounds = bounds
    blocks.fields["hpa_behavior"] = hpa_behavior(spec.hysteresis, blocks.notes)
    if keda or bounds.min == 0:
        blocks.fields["keda"] = Keda(
            min_replicas=bounds.min,
            prometheus_query=prometheus_query(metric, namespace, service),
            prometheus_threshold=target,
        )
        blocks.notes.append(
            f"eks: KEDA ScaledObject (prometheus trigger on {metric}) instead of an HPA: "
            "the replica floor is 0, which an HPA cannot reach"
        )
    else:
        blocks.fields["target_tracking"] = TargetTracking(metric=metric, target=target)


def target_tracking(spec: Any, target: str, blocks: Blocks) -> None:
    """`aws-target-tracking`: EC2 or Application Auto Scaling target tracking."""
    warmup = min(3600, round(spec.instance_warmup_s))
    if target == "serverless":
        if spec.metric != "utilisation":
            raise Unexpressible(
                target,
                spec.kind,
                f"SageMaker tracks provisioned concurrency utilisation, not {spec.metric}",
                "aws-target-tracking with metric: utilisation",
            )
        # Infra builds scale_in_cooldown from warmup_s on this target.
        cooldown = min(3600, round(spec.scale_in_cooldown_s))
        blocks.fields["target_tracking"] = TargetTracking(
            metric="provisioned_concurrency_utilisation",
            target=spec.target,
            disable_scale_in=spec.disable_scale_in,
            warmup_s=cooldown,
        )
        return
    metric, value = stack_metric(spec.metric, spec.target, "aws-target-tracking")
    blocks.fields["target_tracking"] = TargetTracking(
        metric=metric, target=value, disable_scale_in=spec.disable_scale_in, warmup_s=warmup
    )


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else round(value * factor, 6)


def step_scaling(spec: Any, blocks: Blocks) -> None:
    """`step`: two CloudWatch alarms and their step policies (the band between them)."""
    if spec.low is None:
        raise Unexpressible(
            "asg",
            "step",
            "the spec has no low alarm, so nothing scales in and there is no band",
            "step with a low alarm (e.g. the `step` preset)",
        )
    for alarm in (spec.high, spec.low):
        if alarm.adjustment_type != "ChangeInCapacity":
            raise Unexpressible(
                "asg",
                "step",
                f"adjustment type {alarm.adjustment_type} is not in the stack schema",
                "step with adjustment_type: ChangeInCapacity",
            )
    metric, high = stack_metric(spec.metric, spec.high.threshold, "step")
    _, low = stack_metric(spec.metric, spec.low.threshold, "step")
    factor = METRIC_NAMES[spec.metric][1]

    def steps(alarm: Any) -> tuple[StepAdjustment, ...]:
        return tuple(
            StepAdjustment(
                lower=_scaled(s.lower_bound, factor),
                upper=_scaled(s.upper_bound, factor),
                adjustment=s.adjustment,
            )
            for s in alarm.steps
        )

    blocks.fields["step"] = StepScaling(
        metric=metric,
        high=high,
        low=low,
        period_s=ALARM_PERIOD_S,
        evaluation_periods_high=min(60, spec.high.evaluation_periods),
        evaluation_periods_low=min(60, spec.low.evaluation_periods),
        scale_out=steps(spec.high),
        scale_in=steps(spec.low),
        warmup_s=min(3600, round(spec.instance_warmup_s)),
    )
    blocks.notes.append(
        f"asg: alarms evaluate {ALARM_PERIOD_S} s CloudWatch periods; the simulator "
        "counted evaluation periods in decision intervals"
    )


def threshold_band(spec: Any, blocks: Blocks) -> None:
    """`threshold`: step scaling with one step each way; upper/lower are the two alarms."""
    if spec.step_unit != "replicas":
        raise Unexpressible(
            "asg",
            "threshold",
            f"a step in {spec.step_unit} has no ChangeInCapacity adjustment",
            "threshold with step_unit: replicas",
        )
    metric, high = stack_metric("utilisation", spec.upper, "threshold")
    _, low = stack_metric("utilisation", spec.lower, "threshold")
    periods = min(60, spec.evaluation_periods)
    blocks.fields["step"] = StepScaling(
        metric=metric,
        high=high,
        low=low,
        period_s=ALARM_PERIOD_S,
        evaluation_periods_high=periods,
        evaluation_periods_low=periods,
        scale_out=(StepAdjustment(lower=0, adjustment=int(spec.step_out)),),
        scale_in=(StepAdjustment(upper=0, adjustment=-int(spec.step_in)),),
        warmup_s=min(3600, round(spec.cooldown_out_s)),
    )
    blocks.notes.append(
        f"asg: threshold band {high:g}-{low:g} % as two alarms of {ALARM_PERIOD_S} s periods; "
        f"the scale-in cooldown ({spec.cooldown_in_s:g} s) has no step-scaling field"
    )


def aws_predictive(spec: Any, blocks: Blocks) -> None:
    """`predictive` in `aws` mode: EC2 Auto Scaling predictive scaling."""
    increase = spec.max_capacity_behavior == "increase"
    blocks.fields["predictive"] = PredictiveScaling(
        mode="ForecastOnly" if spec.forecast_only else "ForecastAndScale",
        metric="ASGCPUUtilization",
        target=round(spec.max_utilisation * 100.0, 6),
        scheduling_buffer_s=round(spec.scheduling_buffer_s),
        max_capacity_breach_behavior="IncreaseMaxCapacity" if increase else "HonorMaxCapacity",
        max_capacity_buffer_pct=round(spec.max_capacity_buffer_pct) if increase else None,
    )
    blocks.notes.append(
        "asg: AWS predictive scaling forecasts with its own model from CPU utilisation; the "
        "bundle's forecaster settings (models, bins, quantile) do not carry over"
    )


def shifted_cron(cron: str, seconds: float, where: str) -> str:
    """`cron` moved later by `seconds` (minute and hour fields; no day wrap).

    Raises:
        PolicyError: The shift is not whole minutes, the fields are not plain
            numbers, or the window crosses midnight (its day fields would change).
    """
    minute_s, hour_s, *days = cron.split()
    if not (minute_s.isdigit() and hour_s.isdigit()) or seconds % 60:
        raise PolicyError(
            f"{where}: cannot express the window's end as a cron expression: give the entry "
            "a cron with a fixed minute and hour and a duration in whole minutes"
        )
    total = int(hour_s) * 60 + int(minute_s) + int(seconds // 60)
    if total >= 24 * 60:
        raise PolicyError(
            f"{where}: the window crosses midnight; split it into two entries that each "
            "end by 24:00"
        )
    return " ".join([str(total % 60), str(total // 60), *days])


def scheduled_actions(spec: Any, target: str, blocks: Blocks) -> None:
    """`scheduled` on ASG / SageMaker: an action opening each window and one closing it."""
    actions: list[ScheduledAction] = []
    b = blocks.bounds
    for entry in spec.entries:
        end = shifted_cron(entry.cron, entry.duration_s, f"scheduled entry {entry.name!r}")
        low, desired = entry.min_replicas, entry.desired
        if target == "serverless" and desired is not None:
            # SageMaker has no desired capacity: the floor is the larger of both.
            low, desired = max(low or 0, desired), None
        # AWS action names: letters, digits, '-' and '_'.
        name = re.sub(r"[^A-Za-z0-9_-]", "-", entry.name)[:56]
        actions.append(
            ScheduledAction(
                name=name,
                cron=entry.cron,
                timezone=entry.timezone,
                min=low,
                max=entry.max_replicas,
                desired=desired,
            )
        )
        actions.append(
            ScheduledAction(
                name=f"{name}-end", cron=end, timezone=entry.timezone, min=b.min, max=b.max
            )
        )
    blocks.fields["scheduled"] = tuple(actions)


def keda_cron(spec: Any, blocks: Blocks) -> list[CronTrigger]:
    """`scheduled` on EKS: a KEDA cron trigger per window (it can only raise replicas)."""
    triggers = []
    for entry in spec.entries:
        floor = max(entry.min_replicas or 0, entry.desired or 0)
        if floor == 0:
            raise Unexpressible(
                "eks",
                "scheduled",
                f"entry {entry.name!r} only caps replicas; a KEDA cron trigger can only hold "
                "a number of replicas",
                "scheduled entries with min_replicas or desired",
            )
        end = shifted_cron(entry.cron, entry.duration_s, f"scheduled entry {entry.name!r}")
        triggers.append(
            CronTrigger(start=entry.cron, end=end, timezone=entry.timezone, desired=floor)
        )
    return triggers
