"""`planner apply` end to end over HTTP against a moto server: intent == what describe returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.apply.audit import read_audit
from planner.apply.inputs import scaling_from_config
from planner.apply.service import ApplyRequest, run_apply
from tests.planner.apply.conftest import ENDPOINT, GROUP, NOW, REGION, LiveStack, client


def request(stack: LiveStack, **kw: object) -> ApplyRequest:
    scaling = scaling_from_config(stack.project_dir / "Pulumi.prod.yaml")
    fields: dict[str, object] = {
        "stack": "prod",
        "project_dir": stack.project_dir,
        "scaling": scaling,
        "audit_path": stack.audit,
        "now": NOW,
        "endpoint_url": stack.endpoint,
        "mode": "active",
        "yes": True,
        "retry_base_s": 0.01,
    }
    fields.update(kw)
    return ApplyRequest(**fields)  # type: ignore[arg-type]


def test_apply_creates_every_construct_and_describe_reads_the_intent(live_stack: LiveStack) -> None:
    outcome = run_apply(request(live_stack))
    assert outcome.acted and outcome.applied
    asg = client(live_stack.endpoint, "autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 12, 3)
    policies = {
        p["PolicyName"]: p
        for p in asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    }
    assert set(policies) == {
        "scaleplan-target-tracking",
        "scaleplan-predictive",
        "scaleplan-step-out",
        "scaleplan-step-in",
    }
    tt = policies["scaleplan-target-tracking"]["TargetTrackingConfiguration"]
    assert tt["TargetValue"] == 60.0
    assert tt["CustomizedMetricSpecification"]["MetricName"] == "GPUUtilization"
    print(json.dumps(policies, default=str, indent=1))
    alarms = client(live_stack.endpoint, "cloudwatch").describe_alarms(
        AlarmNamePrefix=f"{GROUP}-scaleplan-"
    )["MetricAlarms"]
    by_name = {a["AlarmName"]: a for a in alarms}
    assert by_name[f"{GROUP}-scaleplan-high"]["AlarmActions"] == [
        policies["scaleplan-step-out"]["PolicyARN"]
    ]
    actions = asg.describe_scheduled_actions(AutoScalingGroupName=GROUP)[
        "ScheduledUpdateGroupActions"
    ]
    print(json.dumps(actions, default=str, indent=1))
    second = run_apply(request(live_stack))
    assert second.plan.empty, second.plan.describe()
