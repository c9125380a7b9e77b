"""compile_bundle: which construct each policy kind becomes on each target, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from planner.emit.compile import REFUSALS, compile_bundle
from planner.emit.native import Unexpressible
from policies.registry import resolve
from policies.stack_config import StackScaling
from sim.errors import PolicyError

from .conftest import NOW, bundle_of, stack

HPA = {
    "kind": "hpa",
    "target": 0.6,
    "hysteresis": {
        "scale_down": {
            "stabilization_window_s": 600,
            "select_policy": "Min",
            "policies": [{"type": "Pods", "value": 1, "period_s": 120}],
        }
    },
}
TRACKING = {
    "kind": "aws-target-tracking",
    "target": 0.55,
    "instance_warmup_s": 420,
    "scale_in_cooldown_s": 600,
    "disable_scale_in": True,
}
THRESHOLD = {
    "kind": "threshold",
    "upper": 0.75,
    "lower": 0.35,
    "step_out": 2,
    "step_in": 1,
    "evaluation_periods": 3,
}
WINDOWS = [
    {
        "name": "weekday",
        "cron": "0 8 * * 1-5",
        "timezone": "Europe/Berlin",
        "duration_s": 36000,
        "desired": 3,
    },
    {"name": "batch", "cron": "30 2 * * 6", "duration_s": 7200, "min_replicas": 2},
]


def compiled(spec: dict[str, Any], stack_name: str, *targets: str) -> StackScaling:
    target = stack(stack_name)
    if targets:
        target = target.only(targets)
    return compile_bundle(bundle_of(spec), target, now=NOW).scaling


def test_hpa_on_eks_is_an_hpa_metric_target_with_its_behavior() -> None:
    eks = compiled(HPA, "staging", "eks").eks
    assert eks is not None and eks.keda is None
    assert eks.target_tracking is not None
    assert (eks.target_tracking.metric, eks.target_tracking.target) == ("gpu_utilisation", 60)
    assert eks.hpa_behavior is not None
    down = eks.hpa_behavior.scale_down
    assert (down.stabilization_window_s, down.select_policy) == (600, "Min")
    assert [(p.type, p.value, p.period_s) for p in down.policies] == [("Pods", 1, 120)]
    # Kubernetes' default scale-up fills the direction the spec left out.
    assert [(p.type, p.value) for p in eks.hpa_behavior.scale_up.policies] == [
        ("Percent", 100),
        ("Pods", 4),
    ]


def test_hpa_with_a_zero_floor_becomes_a_keda_scaled_object() -> None:
    eks = compiled(HPA, "dev", "eks").eks
    assert eks is not None and eks.keda is not None and eks.target_tracking is None
    assert eks.bounds.min == eks.keda.min_replicas == 0
    assert eks.keda.prometheus_threshold == 60
    assert eks.keda.prometheus_query == (
        'sum(DCGM_FI_DEV_GPU_UTIL{namespace="inference",pod=~"llm-.*"})'
    )
    assert eks.hpa_behavior is not None  # carried in advanced.horizontalPodAutoscalerConfig


def test_target_tracking_on_asg_and_serverless() -> None:
    scaling = compiled(TRACKING, "staging", "asg", "serverless")
    assert scaling.asg is not None and scaling.asg.target_tracking is not None
    tt = scaling.asg.target_tracking
    assert (tt.metric, tt.target, tt.warmup_s, tt.disable_scale_in) == (
        "gpu_utilisation",
        55,
        420,
        True,
    )
    assert scaling.serverless is not None and scaling.serverless.target_tracking is not None
    sls = scaling.serverless.target_tracking
    # Infra turns warmup_s into the scale-in cooldown on SageMaker.
    assert (sls.metric, sls.target, sls.warmup_s) == (
        "provisioned_concurrency_utilisation",
        0.55,
        600,
    )


def test_threshold_becomes_step_scaling_with_a_two_alarm_band() -> None:
    asg = compiled(THRESHOLD, "staging", "asg").asg
    assert asg is not None and asg.step is not None
    step = asg.step
    assert (step.high, step.low, step.metric) == (75, 35, "gpu_utilisation")
    assert (step.evaluation_periods_high, step.evaluation_periods_low) == (3, 3)
    assert [(s.lower, s.upper, s.adjustment) for s in step.scale_out] == [(0, None, 2)]
    assert [(s.lower, s.upper, s.adjustment) for s in step.scale_in] == [(None, 0, -1)]


def test_step_preset_keeps_its_steps_in_percent() -> None:
    spec = resolve("step").model_dump(mode="json")
    asg = compiled(spec, "prod", "asg").asg
    assert asg is not None and asg.step is not None
    assert (asg.step.high, asg.step.low) == (70, 30)
    assert [s.adjustment for s in asg.step.scale_out] == [1, 2, 4]
    assert [(s.lower, s.upper) for s in asg.step.scale_out] == [(0, 10), (10, 20), (20, None)]


def test_scheduled_windows_open_and_close_on_asg_around_the_inner_policy() -> None:
    spec = {"kind": "scheduled", "entries": WINDOWS, "inner": TRACKING}
    asg = compiled(spec, "prod", "asg").asg
    assert asg is not None and asg.target_tracking is not None
    actions = {a.name: a for a in asg.scheduled}
    assert (actions["weekday"].cron, actions["weekday"].desired) == ("0 8 * * 1-5", 3)
    # The close restores the target's bounds at the end of each window.
    end = actions["weekday-end"]
    assert (end.cron, end.timezone, end.min, end.max) == ("0 18 * * 1-5", "Europe/Berlin", 2, 24)
    assert actions["batch-end"].cron == "30 4 * * 6"


def test_scheduled_on_serverless_has_no_desired_beside_min() -> None:
    spec = {
        "kind": "scheduled",
        "entries": WINDOWS[:1] and [{**WINDOWS[0], "desired": 8, "min_replicas": 6}],
    }
    sls = compiled(spec, "prod", "serverless").serverless
    assert sls is not None
    opening = sls.scheduled[0]
    assert (opening.min, opening.desired) == (8, None)


def test_scheduled_on_eks_is_keda_cron_plus_the_inner_hpa_as_a_prometheus_trigger() -> None:
    spec = {"kind": "scheduled", "entries": WINDOWS, "inner": HPA}
    eks = compiled(spec, "prod", "eks").eks
    assert eks is not None and eks.keda is not None and eks.target_tracking is None
    crons = [(c.start, c.end, c.desired) for c in eks.keda.cron]
    assert crons == [("0 8 * * 1-5", "0 18 * * 1-5", 3), ("30 2 * * 6", "30 4 * * 6", 2)]
    assert eks.keda.prometheus_threshold == 60 and eks.keda.min_replicas == eks.bounds.min


def test_a_window_crossing_midnight_is_refused_with_the_fix() -> None:
    late = [{"name": "late", "cron": "0 22 * * *", "duration_s": 4 * 3600, "min_replicas": 3}]
    with pytest.raises(PolicyError, match="crosses midnight; split it"):
        compiled({"kind": "scheduled", "entries": late}, "prod", "asg")


def test_predictive_in_aws_mode_is_asg_predictive_scaling() -> None:
    spec = {"kind": "predictive", "mode": "aws", "scheduling_buffer_s": 600}
    asg = compiled(spec, "prod", "asg").asg
    assert asg is not None and asg.predictive is not None
    assert (asg.predictive.mode, asg.predictive.scheduling_buffer_s) == ("ForecastAndScale", 600)


def _spec_for(kind: str) -> dict[str, Any]:
    specs = {"hpa": HPA, "aws-target-tracking": TRACKING, "threshold": THRESHOLD}
    return specs.get(kind) or resolve(kind).model_dump(mode="json")


@pytest.mark.parametrize(("kind", "target"), sorted(REFUSALS), ids="-on-".join)
def test_unexpressible_pairs_are_refused_with_the_nearest_alternative(
    kind: str, target: str
) -> None:
    reason, alternative = REFUSALS[kind, target]
    with pytest.raises(Unexpressible) as err:
        compiled(_spec_for(kind), "staging", target)
    message = str(err.value)
    assert f"cannot be expressed on target {target!r}" in message
    assert reason in message and f"nearest expressible: {alternative}" in message


def test_anomaly_gets_a_48h_schedule_on_every_target_from_the_next_hour() -> None:
    result = compile_bundle(
        bundle_of({"kind": "anomaly"}, name="anom", version=3), stack("staging"), now=NOW
    )
    scaling = result.scaling
    assert (scaling.source.bundle_id, scaling.source.version) == ("anom", "3")
    assert scaling.source.policy_kind == "anomaly"
    start = datetime(2026, 12, 2, 15, tzinfo=UTC)
    for name in ("asg", "serverless"):
        target = scaling.target(name)
        assert target is not None and target.schedule is not None
        assert target.schedule.start == start and len(target.schedule.desired) == 48
        assert all(target.bounds.min <= v <= target.bounds.max for v in target.schedule.desired)
    assert scaling.serverless is not None and scaling.serverless.target_tracking is not None
    eks = scaling.eks
    assert eks is not None and eks.keda is not None and eks.keda.cron
    first = eks.keda.cron[0]
    assert first.timezone == "UTC" and first.start.endswith(" 2 12 *")  # a calendar date
    # The 1-hour default scenario covers one hour of the day: the notes say the rest
    # holds the run's peak.
    assert any("the traffic does not cover" in note for note in result.notes)
    StackScaling.model_validate(scaling.model_dump(), context={"now": NOW})


def test_now_without_a_zone_is_refused() -> None:
    with pytest.raises(PolicyError, match="time zone"):
        compile_bundle(bundle_of(HPA), stack("staging").only(("eks",)), now=datetime(2026, 1, 1))


def test_schedule_starts_at_now_when_now_is_a_whole_hour() -> None:
    whole = NOW.replace(minute=0) + timedelta(hours=1)
    scaling = compile_bundle(
        bundle_of({"kind": "anomaly"}), stack("prod").only(("asg",)), now=whole
    ).scaling
    assert scaling.asg is not None and scaling.asg.schedule is not None
    assert scaling.asg.schedule.start == whole
