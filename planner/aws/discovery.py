"""Find the live resources of a stack: by name when given, else by the `scaleplan:stack` tag.

The Pulumi program tags every resource with `scaleplan:stack` (infra.settings.
REQUIRED_TAGS), so `planner apply --stack prod` finds prod's Auto Scaling group,
SageMaker endpoint and EKS cluster without being told their generated names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.aws.session import AwsConnection
from sim.errors import UserInputError

STACK_TAG = "scaleplan:stack"


@dataclass(frozen=True)
class StackResources:
    """Names of the live resources a stack's scaling policy acts on (None: not found)."""

    asg: str | None = None
    endpoint: str | None = None
    cluster: str | None = None
    nodegroups: tuple[str, ...] = ()


def _one(found: list[str], what: str, stack: str, flag: str) -> str | None:
    if len(found) > 1:
        raise UserInputError(
            f"{len(found)} {what}s carry the tag {STACK_TAG}={stack} ({', '.join(found)}); "
            f"name one with {flag}"
        )
    return found[0] if found else None


def find_asg(conn: AwsConnection, stack: str) -> str | None:
    pages = conn.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    found = [
        g["AutoScalingGroupName"]
        for page in pages.paginate(Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack]}])
        for g in page["AutoScalingGroups"]
    ]
    return _one(found, "auto scaling group", stack, "--asg-name")


def find_endpoint(conn: AwsConnection, stack: str) -> str | None:
    sagemaker = conn.client("sagemaker")
    found = []
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for endpoint in page["Endpoints"]:
            tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
            if any(t["Key"] == STACK_TAG and t["Value"] == stack for t in tags):
                found.append(endpoint["EndpointName"])
    return _one(found, "SageMaker endpoint", stack, "--endpoint-name")


def serverless_endpoint(conn: AwsConnection, stack: str, given: str | None) -> str:
    """The stack's serverless spillover endpoint: `given`, else the one tagged for `stack`.

    The Pulumi program names it `<project>-<stack>-serverless-<suffix>` and tags it
    (`infra.components.serverless`), with one variant, `AllTraffic`.

    Raises:
        UserInputError: none is tagged (or several are) and none was given.
    """
    if given is not None:
        return given
    found = find_endpoint(conn, stack)
    if found is None:
        raise UserInputError(
            f"no SageMaker endpoint carries the tag {STACK_TAG}={stack}, and the stack has a "
            "serverless spillover (scaleplan:serverless); deploy it (`pulumi up`) or name it "
            "with --endpoint-name; nothing was changed"
        )
    return found


def find_cluster(conn: AwsConnection, stack: str) -> str | None:
    eks = conn.client("eks")
    found = []
    for page in eks.get_paginator("list_clusters").paginate():
        for name in page["clusters"]:
            tags: dict[str, Any] = eks.describe_cluster(name=name)["cluster"].get("tags", {})
            if tags.get(STACK_TAG) == stack:
                found.append(name)
    return _one(found, "EKS cluster", stack, "--cluster-name")


def nodegroups_for(conn: AwsConnection, cluster: str, pools: list[str]) -> tuple[str, ...]:
    """The node group of each pool: named exactly as the pool or `<pool>-<suffix>` (Pulumi)."""
    eks = conn.client("eks")
    names = [
        n
        for page in eks.get_paginator("list_nodegroups").paginate(clusterName=cluster)
        for n in page["nodegroups"]
    ]
    out = []
    for pool in pools:
        match = [n for n in names if n == pool] or [n for n in names if n.startswith(pool + "-")]
        if len(match) != 1:
            raise UserInputError(
                f"cluster {cluster}: {len(match)} node groups match pool {pool!r} "
                f"(node groups: {', '.join(names) or 'none'}); fix scaleplan:gpuNodePools"
            )
        out.append(match[0])
    return tuple(out)
