"""The guardrail bypasses issue 12 (item 13) found, each now caught, and the settings rules
that make a stack deployable (items 5, 7, 11): every case failed to be flagged before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.guardrails import ResourceView, check_resource, check_settings, check_stack
from infra.guardrails.plans import check_packing
from infra.settings import StackSettings
from infra.stack_file import load_stack_file, read_stack_file, settings_from_config
from sim.errors import StackConfigError

ROOT = Path(__file__).resolve().parents[2]
TAGS = {"scaleplan:stack": "prod", "owner": "ml", "cost-center": "cc-1"}
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ENCRYPTED = [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]
IMDSV2 = {"httpTokens": "required", "httpPutResponseHopLimit": 1}


def rules(typ: str, props: dict[str, Any], env: str = "prod") -> list[str]:
    return [v.rule for v in check_resource(ResourceView(typ, "r", props), env)]


@pytest.mark.parametrize(
    ("typ", "props", "expected"),
    [
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"tags": TAGS, "ingress": [{"ipv6CidrBlocks": ["::/0"]}]},
            ["no-public-endpoint"],
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"tags": TAGS, "ingress": [{"cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}]},
            ["no-public-endpoint"],
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"tags": TAGS, "ingress": [{"cidrBlocks": ["10.0.0.0/8"]}]},
            [],
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"]},
            ["no-public-endpoint"],
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]},
            [],
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv6": "::/0"},
            ["no-public-endpoint"],
        ),
        (
            "aws:lb/loadBalancer:LoadBalancer",
            {"tags": TAGS, "internal": False},
            ["no-public-endpoint"],
        ),
        ("aws:lb/loadBalancer:LoadBalancer", {"tags": TAGS}, ["no-public-endpoint"]),
        ("aws:lb/loadBalancer:LoadBalancer", {"tags": TAGS, "internal": True}, []),
        (
            "kubernetes:networking.k8s.io/v1:Ingress",
            {"metadata": {"name": "x"}, "spec": {}},
            ["no-public-endpoint"],
        ),
        (
            "kubernetes:networking.k8s.io/v1:Ingress",
            {"metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "internal"}}},
            [],
        ),
        (
            "kubernetes:core/v1:Service",
            {
                "metadata": {
                    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
                },
                "spec": {"type": "LoadBalancer"},
            },
            [],
        ),
        (LT, {"tags": TAGS, "metadataOptions": IMDSV2}, ["encryption"]),
        (LT, {"tags": TAGS, "blockDeviceMappings": ENCRYPTED, "metadataOptions": IMDSV2}, []),
        (
            LT,
            {
                "tags": TAGS,
                "blockDeviceMappings": ENCRYPTED,
                "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
            },
            ["imds"],
        ),
        (LT, {"tags": TAGS, "blockDeviceMappings": ENCRYPTED}, ["imds"]),
        (
            "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
            {"spec": {"blockDeviceMappings": [{"ebs": {"encrypted": False}}]}},
            ["encryption"],
        ),
        (
            "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
            {"spec": {"blockDeviceMappings": [{"ebs": {"encrypted": True}}]}},
            [],
        ),
        (
            "aws:eks/cluster:Cluster",
            {
                "tags": TAGS,
                "encryptionConfig": {"resources": ["secrets"]},
                "vpcConfig": {
                    "endpointPublicAccess": True,
                    "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/1"],
                },
            },
            ["no-public-endpoint"],
        ),
    ],
    ids=[
        "sg-ipv6-open",
        "sg-split-halves",
        "sg-vpc-range-ok",
        "sg-rule-resource-open",
        "sg-rule-egress-ok",
        "vpc-ingress-rule-ipv6-open",
        "lb-internet-facing",
        "lb-default-internet-facing",
        "lb-internal-ok",
        "k8s-ingress-public",
        "k8s-ingress-internal-ok",
        "service-legacy-internal-annotation-ok",
        "lt-without-disk-mappings",
        "lt-ok",
        "lt-hop-limit-2",
        "lt-imds-v1",
        "nodeclass-unencrypted",
        "nodeclass-encrypted-ok",
        "cluster-api-split-halves",
    ],
)
def test_closed_holes(typ: str, props: dict[str, Any], expected: list[str]) -> None:
    assert rules(typ, props) == expected


def test_a_warm_pool_group_counts_its_gpu_nodes() -> None:
    """A group without a mixed instances policy took its type from the launch template
    and counted as 0 GPU nodes; a running warm pool adds its instances."""
    group = ResourceView(
        "aws:autoscaling/group:Group",
        "asg",
        {
            "maxSize": 3,
            "launchTemplate": {"id": "lt-1"},
            "warmPool": {"poolState": "Running", "maxGroupPreparedCapacity": 2},
        },
    )
    [violation] = check_stack([group], "dev")
    assert violation.rule == "max-gpu-nodes" and "5 GPU nodes" in violation.message


def test_karpenter_gpus_count_against_the_budget() -> None:
    limited = ResourceView(
        "kubernetes:karpenter.sh/v1:NodePool", "np", {"spec": {"limits": {"nvidia.com/gpu": 64}}}
    )
    assert [v.rule for v in check_stack([limited], "staging")] == ["max-gpu-nodes"]
    unlimited = ResourceView(
        "kubernetes:karpenter.sh/v1:NodePool",
        "np",
        {
            "spec": {
                "template": {
                    "spec": {
                        "requirements": [
                            {"key": "karpenter.k8s.aws/instance-family", "values": ["g5"]}
                        ]
                    }
                }
            }
        },
    )
    assert [v.rule for v in check_stack([unlimited], "staging")] == ["max-gpu-nodes"]


def _prod(**service: Any) -> StackSettings:
    raw = read_stack_file(ROOT / "Pulumi.prod.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values["service"] = {**values["service"], **service}
    return settings_from_config(values, stack="prod", region="us-east-1", source="test")


def test_memory_that_strands_gpus_is_refused() -> None:
    """Item 7: 160 GiB replicas of 2 GPUs fit once on a 192 GiB g5.12xlarge."""
    settings = _prod(gpus_per_replica=2, cpu="20", memory="160Gi", weights_gib=None)
    found = check_settings(settings)
    assert {v.rule for v in found} == {"packing"}
    assert any("2 of its 4 GPUs stay idle" in v.message for v in found)
    # 60 nodes hold 60 such replicas, not the 120 their GPUs would suggest.
    assert check_packing(settings)[0] == 60


def test_weights_that_fill_the_gpus_are_refused() -> None:
    """Item 8: 40 GiB of weights on two 24 GB GPUs leave no room for the KV cache."""
    found = check_settings(_prod(gpus_per_replica=2, cpu="20", memory="80Gi"))
    assert {v.rule for v in found} == {"gpu-memory"}


def test_a_private_endpoint_in_a_vpc_the_stack_creates_is_unreachable() -> None:
    """Item 5: nothing that runs `pulumi up` can reach it."""
    prod = load_stack_file(ROOT / "Pulumi.prod.yaml")
    private = prod.model_copy(
        update={"cluster": prod.cluster.model_copy(update={"public_access_cidrs": ()})}
    )
    assert [v.rule for v in check_settings(private)] == ["unreachable-endpoint"]
    existing = private.model_copy(
        update={
            "network": private.network.model_copy(
                update={"vpc_id": "vpc-0abc", "private_subnet_ids": ("subnet-1", "subnet-2")}
            )
        }
    )
    assert check_settings(existing) == []


def test_a_removed_karpenter_key_says_why() -> None:
    raw = read_stack_file(ROOT / "Pulumi.prod.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values["karpenter"] = {"enabled": True}
    with pytest.raises(StackConfigError, match="cluster autoscaler scales the managed node groups"):
        settings_from_config(values, stack="prod", region="us-east-1", source="Pulumi.prod.yaml")


def test_the_placeholder_image_is_refused() -> None:
    """Item 11: the retraining image is the planner built from this repository."""
    raw = read_stack_file(ROOT / "Pulumi.dev.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values["retraining"] = {**values["retraining"], "image": "ghcr.io/example/scaleplan:0.1.0"}
    with pytest.raises(StackConfigError, match="Dockerfile"):
        settings_from_config(values, stack="dev", region="us-east-1", source="Pulumi.dev.yaml")


def test_the_asg_does_not_inherit_a_model_too_big_for_its_instances() -> None:
    """Item 10: prod's g5/g6.xlarge instances cannot serve the 4-GPU 70B model."""
    prod = load_stack_file(ROOT / "Pulumi.prod.yaml")
    assert prod.asg is not None
    inherited = prod.model_copy(update={"asg": prod.asg.model_copy(update={"model_id": None})})
    assert [v.rule for v in check_settings(inherited)] == ["asg-model"]


def test_a_model_too_big_for_serverless_memory_is_refused() -> None:
    raw = read_stack_file(ROOT / "Pulumi.prod.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values["serverless"] = {**values["serverless"], "weights_gib": 16}
    with pytest.raises(StackConfigError, match="no GPUs and at most 6 GB"):
        settings_from_config(values, stack="prod", region="us-east-1", source="Pulumi.prod.yaml")
