"""EKS managed node group scaling config (min, max, desired) as a plan driver."""

from __future__ import annotations

from typing import Any

State = dict[str, Any]


class NodegroupScaling:
    """`scalingConfig` of the stack's managed node groups, keyed `<cluster>/<nodegroup>`."""

    kind = "eks.nodegroup"

    def __init__(self, client: Any, cluster: str, nodegroups: list[str]) -> None:
        self.client, self.cluster, self.nodegroups = client, cluster, nodegroups

    def read(self) -> dict[str, State]:
        out: dict[str, State] = {}
        for name in self.nodegroups:
            group = self.client.describe_nodegroup(clusterName=self.cluster, nodegroupName=name)
            config = group["nodegroup"]["scalingConfig"]
            out[f"{self.cluster}/{name}"] = {
                "minSize": config["minSize"],
                "maxSize": config["maxSize"],
                "desiredSize": config["desiredSize"],
            }
        return out

    def write(self, key: str, state: State) -> None:
        cluster, _, name = key.partition("/")
        self.client.update_nodegroup_config(
            clusterName=cluster, nodegroupName=name, scalingConfig=dict(state)
        )

    def delete(self, key: str) -> None:
        raise ValueError(f"node group {key} is the stack's; apply does not delete it")
