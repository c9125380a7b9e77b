"""`planner apply` end to end over HTTP against a moto server: intent == what describe returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planner.apply.audit import read_audit
from planner.apply.inputs import scaling_from_config, scaling_from_value
from planner.apply.service import ApplyFailed, ApplyRequest, run_apply
from planner.aws.session import AwsConnection
from sim.errors import UserInputError
from tests.planner.apply.conftest import GROUP, NOW, REGION, LiveStack, client, scaling_block
from tests.planner.apply.faults import inject


def request(stack: LiveStack, scaling: dict[str, Any] | None = None, **kw: Any) -> ApplyRequest:
    loaded = (
        scaling_from_config(stack.project_dir / "Pulumi.prod.yaml")
        if scaling is None
        else scaling_from_value(scaling, "test")
    )
    fields: dict[str, Any] = {
        "stack": "prod",
        "project_dir": stack.project_dir,
        "scaling": loaded,
        "audit_path": stack.audit,
        "now": NOW,
        "endpoint_url": stack.endpoint,
        "mode": "active",
        "yes": True,
        "retry_base_s": 0.01,
    }
    fields.update(kw)
    return ApplyRequest(**fields)


def live_state(endpoint: str) -> dict[str, Any]:
    """Everything apply manages on the group, read back with describe calls."""
    asg = client(endpoint, "autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    policies = asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    actions = asg.describe_scheduled_actions(AutoScalingGroupName=GROUP)
    alarms = client(endpoint, "cloudwatch").describe_alarms(AlarmNamePrefix=f"{GROUP}-scaleplan-")
    return {
        "bounds": (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]),
        "policies": {p["PolicyName"]: p for p in policies},
        "actions": {a["ScheduledActionName"]: a for a in actions["ScheduledUpdateGroupActions"]},
        "alarms": {a["AlarmName"]: a for a in alarms["MetricAlarms"]},
    }


def test_apply_builds_every_asg_construct_as_the_intent_says(live_stack: LiveStack) -> None:
    outcome = run_apply(request(live_stack))
    assert outcome.acted
    state = live_state(live_stack.endpoint)
    # bounds from the policy; desired 3 already inside [2, 12] stays (the policies own it)
    assert state["bounds"] == (2, 12, 3)
    policies = state["policies"]
    assert set(policies) == {
        "scaleplan-target-tracking",
        "scaleplan-predictive",
        "scaleplan-step-out",
        "scaleplan-step-in",
    }
    tt = policies["scaleplan-target-tracking"]
    assert tt["PolicyType"] == "TargetTrackingScaling"
    assert tt["EstimatedInstanceWarmup"] == 480
    assert tt["TargetTrackingConfiguration"]["TargetValue"] == 60.0
    custom = tt["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]
    assert (custom["Namespace"], custom["MetricName"]) == ("scaleplan", "GPUUtilization")
    predictive = policies["scaleplan-predictive"]["PredictiveScalingConfiguration"]
    assert predictive["Mode"] == "ForecastOnly"
    assert predictive["SchedulingBufferTime"] == 600
    assert predictive["MetricSpecifications"][0]["TargetValue"] == 40.0
    out = policies["scaleplan-step-out"]["StepAdjustments"]
    assert [(s.get("MetricIntervalLowerBound"), s["ScalingAdjustment"]) for s in out] == [
        (0.0, 1),
        (5.0, 3),
    ]
    high, low = (
        state["alarms"][f"{GROUP}-scaleplan-high"],
        state["alarms"][f"{GROUP}-scaleplan-low"],
    )
    # the hysteresis band: scale out at >= 10, in at <= 2, each alarm calling its own policy
    assert (high["Threshold"], high["ComparisonOperator"]) == (
        10.0,
        "GreaterThanOrEqualToThreshold",
    )
    assert (low["Threshold"], low["ComparisonOperator"]) == (2.0, "LessThanOrEqualToThreshold")
    assert high["AlarmActions"] == [policies["scaleplan-step-out"]["PolicyARN"]]
    assert low["AlarmActions"] == [policies["scaleplan-step-in"]["PolicyARN"]]
    actions = state["actions"]
    assert actions["business-hours"]["Recurrence"] == "0 8 * * 1-5"
    assert actions["business-hours"]["TimeZone"] == "America/New_York"
    assert actions["business-hours"]["MinSize"] == 4
    # the 48 h schedule from 11:00 with NOW = 12:00: the 11:00 change is past and left out
    one_shots = {k: v["DesiredCapacity"] for k, v in actions.items() if k.startswith("scaleplan-")}
    assert one_shots == {
        "scaleplan-20261202T1300Z": 5,
        "scaleplan-20261202T1400Z": 7,
        "scaleplan-20261202T1500Z": 5,
        "scaleplan-20261202T1600Z": 2,
    }
    assert any("left out" in note for note in outcome.notes)


def test_second_apply_changes_nothing_and_says_so(live_stack: LiveStack) -> None:
    run_apply(request(live_stack))
    events_before = len(read_audit(live_stack.audit))
    second = run_apply(request(live_stack))
    assert second.plan.empty
    assert "no changes" in second.plan.describe()
    assert second.applied == []
    entries = read_audit(live_stack.audit)[events_before:]
    assert [e["event"] for e in entries] == ["apply-started", "apply-finished"]


def test_a_changed_policy_updates_and_removes_only_what_differs(live_stack: LiveStack) -> None:
    run_apply(request(live_stack))
    block = scaling_block()
    del block["asg"]["step"]
    block["asg"]["target_tracking"]["target"] = 70
    outcome = run_apply(request(live_stack, block))
    changed = {(c.action, c.key) for c in outcome.applied}
    assert changed == {
        ("update", "scaleplan-target-tracking"),
        ("delete", "scaleplan-step-out"),
        ("delete", "scaleplan-step-in"),
        ("delete", f"{GROUP}-scaleplan-high"),
        ("delete", f"{GROUP}-scaleplan-low"),
    }
    state = live_state(live_stack.endpoint)
    assert set(state["policies"]) == {"scaleplan-target-tracking", "scaleplan-predictive"}
    assert state["alarms"] == {}
    target = state["policies"]["scaleplan-target-tracking"]["TargetTrackingConfiguration"]
    assert target["TargetValue"] == 70.0
    # deletes run alarms first, then the policies they call
    deletes = [c.key for c in outcome.applied if c.action == "delete"]
    assert deletes.index(f"{GROUP}-scaleplan-high") < deletes.index("scaleplan-step-out")


def test_dry_run_and_shadow_mode_change_nothing(live_stack: LiveStack) -> None:
    before = live_state(live_stack.endpoint)
    dry = run_apply(request(live_stack, yes=False))
    assert not dry.acted and len(dry.plan.changes) > 5
    assert not live_stack.audit.exists()  # a dry run writes nothing
    shadow = run_apply(request(live_stack, mode="shadow"))
    assert not shadow.acted and shadow.mode == "shadow"
    assert live_state(live_stack.endpoint) == before
    events = read_audit(live_stack.audit)
    assert [e["event"] for e in events].count("shadow-change") == len(shadow.plan.changes)
    assert events[-1]["event"] == "apply-finished" and events[-1]["acted"] is False


def test_a_policy_never_applied_defaults_to_shadow_then_active_after_promotion(
    live_stack: LiveStack,
) -> None:
    before = live_state(live_stack.endpoint)
    first = run_apply(request(live_stack, mode=None))
    assert first.mode == "shadow" and not first.acted
    assert live_state(live_stack.endpoint) == before
    run_apply(request(live_stack, mode="active"))  # the explicit promotion
    again = run_apply(request(live_stack, mode=None))
    assert again.mode == "active" and again.plan.empty


def test_guardrails_refuse_before_any_change(live_stack: LiveStack) -> None:
    before = live_state(live_stack.endpoint)
    # the stack's asg.max_size is 24: a policy with max 30 breaks the budget line
    too_big = scaling_block(bounds={"min": 2, "max": 30})
    with pytest.raises(UserInputError, match=r"asg\.bounds\.max 30 exceeds"):
        run_apply(request(live_stack, too_big))
    # desired 3 -> the new floor 8 is a step of 5: refused with max_step 2
    high_floor = scaling_block(bounds={"min": 8, "max": 12})
    high_floor["asg"]["scheduled"] = []
    del high_floor["asg"]["schedule"]
    with pytest.raises(UserInputError, match="max step of 2"):
        run_apply(request(live_stack, high_floor, max_step=2))
    assert live_state(live_stack.endpoint) == before
    assert not live_stack.audit.exists()


def test_throttling_is_retried_with_backoff(live_stack: LiveStack) -> None:
    conn = AwsConnection(region=REGION, endpoint_url=live_stack.endpoint, max_attempts=2)
    # 3 throttles: botocore's 2 attempts give up on the first step, the plan's own retry wins
    hits = inject(conn.session(), "auto-scaling.PutScalingPolicy", "Throttling", times=3)
    outcome = run_apply(request(live_stack), conn)
    assert hits[0] == 3
    assert outcome.acted
    assert len(live_state(live_stack.endpoint)["policies"]) == 4


def test_a_failure_part_way_restores_every_change_and_audits_each(live_stack: LiveStack) -> None:
    before = live_state(live_stack.endpoint)
    conn = AwsConnection(region=REGION, endpoint_url=live_stack.endpoint)

    def business_hours(request: Any) -> bool:
        return b"business-hours" in (request.body or b"")

    inject(
        conn.session(),
        "auto-scaling.PutScheduledUpdateGroupAction",
        "ValidationError",
        times=1,
        when=business_hours,
    )
    with pytest.raises(ApplyFailed, match="restored"):
        run_apply(request(live_stack), conn)
    after = live_state(live_stack.endpoint)
    assert after["bounds"] == before["bounds"] == (1, 10, 3)
    assert after["policies"] == {} and after["alarms"] == {} and after["actions"] == {}
    events = read_audit(live_stack.audit)
    applied = [e for e in events if e.get("outcome") == "applied"]
    restored = [e for e in events if e.get("outcome") == "restored"]
    failed = [e for e in events if e.get("outcome") == "failed"]
    assert len(applied) == len(restored) >= 7
    assert [e["key"] for e in failed] == ["business-hours"]
    assert [e["key"] for e in restored] == [e["key"] for e in applied][::-1]
    assert events[-1]["event"] == "apply-failed"
    for entry in applied:
        assert {"who", "time", "bundle", "before", "after"} <= set(entry)
        assert entry["bundle"] == "prod-predictive@7"


def test_audit_log_and_outputs_hold_no_credentials(live_stack: LiveStack, tmp_path: Path) -> None:
    from tests.planner.apply.conftest import FAKE_KEY_ID, FAKE_SECRET

    run_apply(request(live_stack))
    text = live_stack.audit.read_text()
    assert FAKE_SECRET not in text and FAKE_KEY_ID not in text
    assert "arn:aws:" in text  # who: the caller's ARN, not its keys
