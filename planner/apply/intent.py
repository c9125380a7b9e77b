"""A `StackScaling` as the desired state of each live AWS item, in the AWS API's terms.

The same native constructs the Pulumi program builds (`infra/components/asg.py`,
`serverless.py`), under names `planner apply` owns: policies `scaleplan-*`, the
step policy's alarms `<group>-scaleplan-high|low`, one-shot schedule actions
`scaleplan-<UTC stamp>`. Desired capacity is kept where it is unless the new
bounds exclude it (then it moves to the nearest bound): the scaling policies
own it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from planner.apply.plan import State
from policies.stack_config import StepScaling, TargetScaling

TARGET_TRACKING = "scaleplan-target-tracking"
PREDICTIVE = "scaleplan-predictive"
STEP_OUT, STEP_IN = "scaleplan-step-out", "scaleplan-step-in"
#: Application Auto Scaling scale-out cooldown (s), as the Pulumi program sets it.
SERVERLESS_SCALE_OUT_COOLDOWN_S = 60

Intent = dict[str, dict[str, State | None]]


@dataclass
class IntentNotes:
    """What the intent left out, and why (printed with the plan)."""

    lines: list[str] = field(default_factory=list)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def asg_intent(
    group: str, t: TargetScaling, live_desired: int, now: datetime, notes: IntentNotes
) -> Intent:
    """Bounds, policies, alarms and scheduled actions of one Auto Scaling group."""
    from infra.components.asg import CLOUDWATCH_METRICS

    policies: dict[str, State | None] = {}
    alarms: dict[str, State | None] = {}
    if t.target_tracking is not None:
        tt = t.target_tracking
        config: dict[str, Any] = {
            "TargetValue": float(tt.target),
            "DisableScaleIn": tt.disable_scale_in,
        }
        if tt.metric == "cpu_utilisation":
            config["PredefinedMetricSpecification"] = {
                "PredefinedMetricType": "ASGAverageCPUUtilization"
            }
        else:
            namespace, metric = CLOUDWATCH_METRICS[tt.metric]
            config["CustomizedMetricSpecification"] = {
                "Namespace": namespace,
                "MetricName": metric,
                "Statistic": "Average",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
            }
        policies[TARGET_TRACKING] = {
            "PolicyType": "TargetTrackingScaling",
            "EstimatedInstanceWarmup": tt.warmup_s,
            "TargetTrackingConfiguration": config,
        }
    if t.step is not None:
        _step(group, t.step, policies, alarms, CLOUDWATCH_METRICS)
    if t.predictive is not None:
        p = t.predictive
        predictive: dict[str, Any] = {
            "MetricSpecifications": [
                {
                    "TargetValue": float(p.target),
                    "PredefinedMetricPairSpecification": {"PredefinedMetricType": p.metric},
                }
            ],
            "Mode": p.mode,
            "SchedulingBufferTime": p.scheduling_buffer_s,
            "MaxCapacityBreachBehavior": p.max_capacity_breach_behavior,
        }
        if p.max_capacity_buffer_pct is not None:
            predictive["MaxCapacityBuffer"] = p.max_capacity_buffer_pct
        policies[PREDICTIVE] = {
            "PolicyType": "PredictiveScaling",
            "PredictiveScalingConfiguration": predictive,
        }
    scheduled: dict[str, State | None] = {
        a.name: {
            "Recurrence": a.cron,
            "TimeZone": a.timezone,
            "MinSize": a.min,
            "MaxSize": a.max,
            "DesiredCapacity": a.desired,
            "StartTime": None,
        }
        for a in t.scheduled
    }
    scheduled.update(_one_shots(t, now, notes, "asg"))
    capacity = {
        "MinSize": t.bounds.min,
        "MaxSize": t.bounds.max,
        "DesiredCapacity": clamp(live_desired, t.bounds.min, t.bounds.max),
    }
    return {
        "asg.capacity": {group: capacity},
        "asg.policy": policies,
        "cloudwatch.alarm": alarms,
        "asg.scheduled": scheduled,
    }


def _one_shots(
    t: TargetScaling, now: datetime, notes: IntentNotes, target: str
) -> dict[str, State | None]:
    """The 48 h schedule as one-shot actions; past changes are left out (AWS refuses them)."""
    out: dict[str, State | None] = {}
    if t.schedule is None:
        return out
    past = 0
    for when, desired in t.schedule.changes():
        if when <= now:
            past += 1
            continue
        stamp = when.strftime("%Y%m%dT%H%MZ")
        iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if target == "asg":
            out[f"scaleplan-{stamp}"] = {
                "Recurrence": None,
                "TimeZone": None,
                "MinSize": None,
                "MaxSize": None,
                "DesiredCapacity": desired,
                "StartTime": iso,
            }
        else:
            out[f"scaleplan-{stamp}"] = {
                "Schedule": f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
                "Timezone": "UTC",
                "ScalableTargetAction": {"MinCapacity": desired, "MaxCapacity": t.bounds.max},
            }
    if past:
        notes.lines.append(
            f"{target}.schedule: {past} change(s) at or before {now.isoformat()} left out "
            "(already past); refresh the bundle with `planner emit` to plan from now"
        )
    return out


def _step(
    group: str,
    step: StepScaling,
    policies: dict[str, State | None],
    alarms: dict[str, State | None],
    metrics: dict[str, tuple[str, str]],
) -> None:
    namespace, metric = metrics[step.metric]
    for name, out in ((STEP_OUT, True), (STEP_IN, False)):
        adjustments = []
        for s in step.scale_out if out else step.scale_in:
            adj: dict[str, Any] = {"ScalingAdjustment": s.adjustment}
            if s.lower is not None:
                adj["MetricIntervalLowerBound"] = float(s.lower)
            if s.upper is not None:
                adj["MetricIntervalUpperBound"] = float(s.upper)
            adjustments.append(adj)
        policy: State = {
            "PolicyType": "StepScaling",
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "StepAdjustments": adjustments,
        }
        if out:
            policy["EstimatedInstanceWarmup"] = step.warmup_s
        policies[name] = policy
        direction = "out" if out else "in"
        alarms[f"{group}-scaleplan-{'high' if out else 'low'}"] = {
            "AlarmDescription": (
                f"scale {direction}: {step.metric} {'>=' if out else '<='} "
                f"{step.high if out else step.low:g}"
            ),
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
            "Statistic": "Average",
            "Period": step.period_s,
            "EvaluationPeriods": step.evaluation_periods_high
            if out
            else step.evaluation_periods_low,
            "Threshold": float(step.high if out else step.low),
            "ComparisonOperator": (
                "GreaterThanOrEqualToThreshold" if out else "LessThanOrEqualToThreshold"
            ),
            # No data means no load signal: do not scale on silence (as the Pulumi program).
            "TreatMissingData": "notBreaching" if out else "missing",
            "AlarmPolicy": name,
        }


def serverless_intent(resource: str, t: TargetScaling, now: datetime, notes: IntentNotes) -> Intent:
    """Scalable target, target tracking policy and scheduled actions of a SageMaker variant."""
    from infra.components.serverless import aws_cron

    policies: dict[str, State | None] = {}
    if t.target_tracking is not None:
        tt = t.target_tracking
        policies[TARGET_TRACKING] = {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(tt.target),
                "DisableScaleIn": tt.disable_scale_in,
                "ScaleOutCooldown": SERVERLESS_SCALE_OUT_COOLDOWN_S,
                "ScaleInCooldown": tt.warmup_s,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
                },
            },
        }
    scheduled: dict[str, State | None] = {}
    for a in t.scheduled:
        action = {"MinCapacity": a.min if a.min is not None else a.desired, "MaxCapacity": a.max}
        scheduled[a.name] = {
            "Schedule": aws_cron(a.cron),
            "Timezone": a.timezone,
            "ScalableTargetAction": {k: v for k, v in action.items() if v is not None},
        }
    scheduled.update(_one_shots(t, now, notes, "serverless"))
    return {
        "aas.target": {resource: {"MinCapacity": t.bounds.min, "MaxCapacity": t.bounds.max}},
        "aas.policy": policies,
        "aas.scheduled": scheduled,
    }


def nodegroup_intent(
    cluster: str, pools: list[tuple[str, int, int]], live: dict[str, State]
) -> Intent:
    """Node group bounds from the stack's pools (name, min, max); desired kept inside them."""
    out: dict[str, State | None] = {}
    for nodegroup, low, high in pools:
        key = f"{cluster}/{nodegroup}"
        current = int(live.get(key, {}).get("desiredSize", low))
        out[key] = {"minSize": low, "maxSize": high, "desiredSize": clamp(current, low, high)}
    return {"eks.nodegroup": out}
