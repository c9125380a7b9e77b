"""Application Auto Scaling drivers for a SageMaker variant's provisioned concurrency.

The scalable target (bounds), its target tracking policy and its scheduled
actions, keyed as the `planner.apply.plan.Driver` protocol wants. Every policy
and scheduled action on the target is scaleplan's.
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]

NAMESPACE = "sagemaker"
VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def _ids(resource: str) -> dict[str, str]:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource, "ScalableDimension": DIMENSION}


class ScalableTarget:
    """MinCapacity and MaxCapacity of the variant (one item, keyed by resource id)."""

    kind = "aas.target"

    def __init__(self, client: Any, resource: str) -> None:
        self.client, self.resource = client, resource

    def read(self) -> dict[str, State]:
        found = self.client.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[self.resource], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        return {
            t["ResourceId"]: {"MinCapacity": t["MinCapacity"], "MaxCapacity": t["MaxCapacity"]}
            for t in found
        }

    def write(self, key: str, state: State) -> None:
        self.client.register_scalable_target(**_ids(key), **state)

    def delete(self, key: str) -> None:
        self.client.deregister_scalable_target(**_ids(key))


class ScalingPolicies:
    """Target tracking policies on the variant, keyed by policy name."""

    kind = "aas.policy"

    def __init__(self, client: Any, resource: str) -> None:
        self.client, self.resource = client, resource

    def read(self) -> dict[str, State]:
        found = self.client.describe_scaling_policies(**_ids(self.resource))["ScalingPolicies"]
        fields = ("PolicyType", "TargetTrackingScalingPolicyConfiguration")
        return {p["PolicyName"]: {f: p[f] for f in fields if f in p} for p in found}

    def write(self, key: str, state: State) -> None:
        self.client.put_scaling_policy(PolicyName=key, **_ids(self.resource), **state)

    def delete(self, key: str) -> None:
        self.client.delete_scaling_policy(PolicyName=key, **_ids(self.resource))


class ScheduledActions:
    """Scheduled actions on the variant, keyed by action name."""

    kind = "aas.scheduled"

    def __init__(self, client: Any, resource: str) -> None:
        self.client, self.resource = client, resource

    def read(self) -> dict[str, State]:
        found = self.client.describe_scheduled_actions(
            ServiceNamespace=NAMESPACE, ResourceId=self.resource, ScalableDimension=DIMENSION
        )["ScheduledActions"]
        out: dict[str, State] = {}
        for a in found:
            action = {k: v for k, v in a.get("ScalableTargetAction", {}).items() if v is not None}
            out[a["ScheduledActionName"]] = {
                "Schedule": a["Schedule"],
                "Timezone": a.get("Timezone", "UTC"),
                "ScalableTargetAction": action,
            }
        return out

    def write(self, key: str, state: State) -> None:
        self.client.put_scheduled_action(ScheduledActionName=key, **_ids(self.resource), **state)

    def delete(self, key: str) -> None:
        self.client.delete_scheduled_action(
            ScheduledActionName=key,
            ServiceNamespace=NAMESPACE,
            ResourceId=self.resource,
            ScalableDimension=DIMENSION,
        )
