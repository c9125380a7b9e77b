"""EC2 Auto Scaling drivers: group bounds, scaling policies, scheduled actions, alarms.

Each class is a `planner.apply.plan.Driver` over one Auto Scaling group: it reads
the items scaleplan manages on that group and writes them with the same
arguments the AWS API takes (so a state read back can be written back, which
is how a failed apply is restored). Every scaling policy and scheduled action
on the group is scaleplan's (the group belongs to the stack); alarms are those
named `<group>-scaleplan-*`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

State = dict[str, Any]

#: Policy fields scaleplan writes (put_scaling_policy arguments).
_POLICY_FIELDS = (
    "PolicyType",
    "AdjustmentType",
    "MetricAggregationType",
    "EstimatedInstanceWarmup",
    "StepAdjustments",
    "TargetTrackingConfiguration",
    "PredictiveScalingConfiguration",
)
_ACTION_FIELDS = ("Recurrence", "TimeZone", "MinSize", "MaxSize", "DesiredCapacity", "StartTime")
_ALARM_FIELDS = (
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def _present(state: State) -> State:
    return {k: v for k, v in state.items() if v is not None}


class AsgCapacity:
    """The group's MinSize, MaxSize and DesiredCapacity (one item, keyed by the group)."""

    kind = "asg.capacity"

    def __init__(self, client: Any, group: str) -> None:
        self.client, self.group = client, group

    def describe(self) -> dict[str, Any]:
        groups = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
        found: list[dict[str, Any]] = groups["AutoScalingGroups"]
        if not found:
            raise LookupError(f"auto scaling group {self.group} does not exist")
        return found[0]

    def read(self) -> dict[str, State]:
        g = self.describe()
        return {
            self.group: {
                "MinSize": g["MinSize"],
                "MaxSize": g["MaxSize"],
                "DesiredCapacity": g["DesiredCapacity"],
            }
        }

    def write(self, key: str, state: State) -> None:
        self.client.update_auto_scaling_group(AutoScalingGroupName=key, **_present(state))

    def delete(self, key: str) -> None:
        raise ValueError(f"the capacity of group {key} cannot be deleted")


class AsgPolicies:
    """Scaling policies on the group, keyed by policy name."""

    kind = "asg.policy"

    def __init__(self, client: Any, group: str) -> None:
        self.client, self.group = client, group

    def _all(self) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("describe_policies")
        out: list[dict[str, Any]] = []
        for page in pages.paginate(AutoScalingGroupName=self.group):
            out.extend(page["ScalingPolicies"])
        return out

    def read(self) -> dict[str, State]:
        return {
            p["PolicyName"]: {
                f: p[f] for f in _POLICY_FIELDS if f in p and p[f] not in ([], None, {})
            }
            for p in self._all()
        }

    def arns(self) -> dict[str, str]:
        """Policy name -> ARN, for the alarms that call them."""
        return {p["PolicyName"]: p["PolicyARN"] for p in self._all()}

    def write(self, key: str, state: State) -> None:
        self.client.put_scaling_policy(
            AutoScalingGroupName=self.group, PolicyName=key, **_present(state)
        )

    def delete(self, key: str) -> None:
        self.client.delete_policy(AutoScalingGroupName=self.group, PolicyName=key)


class AsgScheduledActions:
    """Scheduled actions on the group, keyed by action name."""

    kind = "asg.scheduled"

    def __init__(self, client: Any, group: str) -> None:
        self.client, self.group = client, group

    def read(self) -> dict[str, State]:
        pages = self.client.get_paginator("describe_scheduled_actions")
        out: dict[str, State] = {}
        for page in pages.paginate(AutoScalingGroupName=self.group):
            for a in page["ScheduledUpdateGroupActions"]:
                state = {f: a.get(f) for f in _ACTION_FIELDS}
                if state.get("Recurrence"):
                    # AWS fills StartTime with the next occurrence of a recurring action.
                    state["StartTime"] = None
                elif isinstance(state.get("StartTime"), datetime):
                    state["StartTime"] = iso_utc(state["StartTime"])
                out[a["ScheduledActionName"]] = state
        return out

    def write(self, key: str, state: State) -> None:
        args = _present(state)
        if "StartTime" in args:
            args["StartTime"] = datetime.fromisoformat(args["StartTime"])
        self.client.put_scheduled_update_group_action(
            AutoScalingGroupName=self.group, ScheduledActionName=key, **args
        )

    def delete(self, key: str) -> None:
        self.client.delete_scheduled_action(
            AutoScalingGroupName=self.group, ScheduledActionName=key
        )


class StepAlarms:
    """The two CloudWatch alarms of a step policy, keyed by alarm name.

    A state names the policy it calls (`AlarmPolicy`), not its ARN: the ARN
    changes when a policy is re-created, the name does not.
    """

    kind = "cloudwatch.alarm"

    def __init__(self, cloudwatch: Any, policies: AsgPolicies) -> None:
        self.cloudwatch, self.policies = cloudwatch, policies
        self.prefix = alarm_prefix(policies.group)

    def read(self) -> dict[str, State]:
        names = {arn: name for name, arn in self.policies.arns().items()}
        pages = self.cloudwatch.get_paginator("describe_alarms")
        out: dict[str, State] = {}
        for page in pages.paginate(AlarmNamePrefix=self.prefix):
            for a in page["MetricAlarms"]:
                state = {f: a.get(f) for f in _ALARM_FIELDS}
                actions = a.get("AlarmActions") or []
                state["AlarmPolicy"] = names.get(actions[0], actions[0]) if actions else None
                out[a["AlarmName"]] = state
        return out

    def write(self, key: str, state: State) -> None:
        args = _present(state)
        policy = args.pop("AlarmPolicy", None)
        if policy is not None:
            arns = self.policies.arns()
            if policy not in arns:
                raise LookupError(f"alarm {key}: scaling policy {policy} does not exist")
            args["AlarmActions"] = [arns[policy]]
        self.cloudwatch.put_metric_alarm(AlarmName=key, **args)

    def delete(self, key: str) -> None:
        self.cloudwatch.delete_alarms(AlarmNames=[key])


def alarm_prefix(group: str) -> str:
    return f"{group}-scaleplan-"


def iso_utc(when: datetime) -> str:
    """`2026-12-03T08:00:00Z` (AWS returns aware datetimes; naive ones are taken as UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
