"""Each guardrail rule, passing and failing, on camelCase resource properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import guardrails
from infra.guardrails import ResourceView, check_plan, check_resource, check_settings, check_stack
from infra.stack_file import load_stack_file
from sim.errors import StackConfigError

ROOT = Path(__file__).resolve().parents[2]
TAGS = {"scaleplan:stack": "prod", "owner": "ml", "cost-center": "cc-1"}


def rules(typ: str, props: dict[str, Any], env: str = "prod") -> list[str]:
    return [v.rule for v in check_resource(ResourceView(typ, "r", props), env)]


NG = "aws:eks/nodeGroup:NodeGroup"
ASG = "aws:autoscaling/group:Group"


@pytest.mark.parametrize(
    ("typ", "props", "env", "expected"),
    [
        (
            NG,
            {
                "tags": TAGS,
                "instanceTypes": ["g5.xlarge"],
                "scalingConfig": {"minSize": 0, "desiredSize": 1, "maxSize": 4},
            },
            "dev",
            [],
        ),
        (
            NG,
            {
                "tags": TAGS,
                "instanceTypes": ["g5.xlarge"],
                "scalingConfig": {"minSize": 3, "desiredSize": 3, "maxSize": 2},
            },
            "prod",
            ["bounds", "bounds"],
        ),
        (
            NG,
            {
                "tags": TAGS,
                "instanceTypes": ["g5.xlarge"],
                "scalingConfig": {"minSize": 0, "desiredSize": 0, "maxSize": 5},
            },
            "dev",
            ["max-gpu-nodes"],
        ),
        (
            NG,
            {
                "tags": TAGS,
                "instanceTypes": ["c7i.2xlarge"],
                "scalingConfig": {"minSize": 0, "desiredSize": 0, "maxSize": 50},
            },
            "dev",
            [],
        ),
        (
            NG,
            {
                "tags": {"owner": "ml"},
                "instanceTypes": ["g5.xlarge"],
                "scalingConfig": {"minSize": 0, "maxSize": 1},
            },
            "dev",
            ["required-tags"],
        ),
        (
            NG,
            {
                "tags": TAGS,
                "instanceTypes": ["g5.xlarge"],
                "diskSize": 100,
                "scalingConfig": {"minSize": 0, "maxSize": 1},
            },
            "dev",
            ["encryption"],
        ),
        (
            ASG,
            {
                "tags": [{"key": k, "value": v} for k, v in TAGS.items()],
                "minSize": 1,
                "maxSize": 2,
                "desiredCapacity": 3,
            },
            "prod",
            ["bounds"],
        ),
        (
            "aws:eks/cluster:Cluster",
            {
                "tags": TAGS,
                "vpcConfig": {"endpointPublicAccess": True},
                "encryptionConfig": {"resources": ["secrets"]},
            },
            "prod",
            ["no-public-endpoint"],
        ),
        (
            "aws:eks/cluster:Cluster",
            {
                "tags": TAGS,
                "vpcConfig": {
                    "endpointPublicAccess": True,
                    "publicAccessCidrs": ["203.0.113.0/24"],
                },
            },
            "prod",
            ["encryption"],
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"tags": TAGS, "ingress": [{"cidrBlocks": ["0.0.0.0/0"]}]},
            "prod",
            ["no-public-endpoint"],
        ),
        (
            "aws:ec2/subnet:Subnet",
            {"tags": TAGS, "mapPublicIpOnLaunch": True},
            "prod",
            ["no-public-endpoint"],
        ),
        (
            "aws:ec2/launchTemplate:LaunchTemplate",
            {
                "tags": TAGS,
                "blockDeviceMappings": [{"ebs": {"encrypted": "false"}}],
                "metadataOptions": {"httpTokens": "required"},
            },
            "prod",
            ["encryption"],
        ),
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True},
            "prod",
            ["no-public-endpoint"],
        ),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            {"rules": []},
            "prod",
            ["encryption"],
        ),
        (
            "kubernetes:core/v1:Service",
            {"spec": {"type": "LoadBalancer"}, "metadata": {}},
            "prod",
            ["no-public-endpoint"],
        ),
        (
            "kubernetes:core/v1:Service",
            {
                "spec": {"type": "LoadBalancer"},
                "metadata": {
                    "annotations": {
                        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"
                    }
                },
            },
            "prod",
            [],
        ),
        (
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            {"spec": {"minReplicas": 5, "maxReplicas": 2}},
            "prod",
            ["bounds"],
        ),
        (
            "aws:appautoscaling/target:Target",
            {"tags": TAGS, "minCapacity": 1, "maxCapacity": 10},
            "prod",
            [],
        ),
    ],
    ids=[
        "nodegroup-ok",
        "nodegroup-min-above-max",
        "nodegroup-over-dev-budget",
        "cpu-pool-not-gpu",
        "missing-tags",
        "nodegroup-disk-size-unencrypted",
        "asg-desired-above-max",
        "cluster-open-api",
        "cluster-no-secrets-encryption",
        "sg-open-ingress",
        "subnet-public-ip",
        "ebs-unencrypted",
        "bucket-block-incomplete",
        "bucket-no-sse",
        "public-lb",
        "internal-lb",
        "hpa-min-above-max",
        "target-ok",
    ],
)
def test_resource_rules(typ: str, props: dict[str, Any], env: str, expected: list[str]) -> None:
    assert rules(typ, props, env) == expected


def test_violation_messages_say_what_to_change() -> None:
    [v] = check_resource(
        ResourceView(
            "aws:eks/cluster:Cluster", "eks", {"tags": TAGS, "encryptionConfig": {"x": 1}}
        ),
        "prod",
    )
    assert "public_access_cidrs" in v.message and str(v).startswith("[no-public-endpoint] eks:")


def _spot_pool(max_size: int) -> ResourceView:
    return ResourceView(
        NG,
        "spot",
        {
            "instanceTypes": ["g5.xlarge"],
            "capacityType": "SPOT",
            "scalingConfig": {"minSize": 0, "maxSize": max_size},
        },
    )


def test_stack_rules_spot_only_prod_and_total_budget() -> None:
    assert [v.rule for v in check_stack([_spot_pool(4)], "prod")] == ["spot-not-only-capacity"]
    assert check_stack([_spot_pool(4)], "dev") == []
    od = ResourceView(
        NG,
        "od",
        {
            "instanceTypes": ["g5.xlarge"],
            "capacityType": "ON_DEMAND",
            "scalingConfig": {"minSize": 1, "maxSize": 2},
        },
    )
    assert check_stack([_spot_pool(4), od], "prod") == []
    assert [v.rule for v in check_stack([_spot_pool(3), _spot_pool(3)], "dev")] == ["max-gpu-nodes"]


def test_stack_rules_find_an_unprotected_bucket() -> None:
    bucket = ResourceView("aws:s3/bucket:Bucket", "b", {"bucket": "b-1"})
    sse = ResourceView(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "sse",
        {"bucket": "b-1"},
    )
    found = check_stack([bucket, sse], "dev")
    assert [(v.rule, v.resource) for v in found] == [("no-public-endpoint", "b")]


def test_committed_stacks_pass_the_planner_guardrails() -> None:
    for stack in ("dev", "staging", "prod"):
        settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
        assert settings.scaling is not None
        assert check_plan(settings.scaling, settings) == []


def test_plan_bounds_beyond_the_stack_envelope_are_flagged() -> None:
    settings = load_stack_file(ROOT / "Pulumi.prod.yaml")
    assert settings.scaling is not None and settings.scaling.asg is not None
    scaling = settings.scaling.model_copy(
        update={
            "asg": settings.scaling.asg.model_copy(
                update={"bounds": settings.scaling.asg.bounds.model_copy(update={"max": 30})}
            ),
            "eks": settings.scaling.eks.model_copy(  # type: ignore[union-attr]
                update={"bounds": settings.scaling.eks.bounds.model_copy(update={"max": 100})}  # type: ignore[union-attr]
            ),
        }
    )
    messages = [v.message for v in check_plan(scaling, settings)]
    assert any("asg.bounds.max 30 exceeds the stack's asg.max_size 24" in m for m in messages)
    assert any(
        "eks.bounds.max 100 replicas need more nodes" in m and "60 replicas of 4 GPU" in m
        for m in messages
    )


def test_settings_rules() -> None:
    settings = load_stack_file(ROOT / "Pulumi.prod.yaml")
    assert check_settings(settings) == []
    spot_only = settings.model_copy(
        update={
            "gpu_node_pools": tuple(
                p.model_copy(update={"capacity_type": "SPOT"}) for p in settings.gpu_node_pools
            ),
            "asg": settings.asg.model_copy(update={"on_demand_base_capacity": 0}),  # type: ignore[union-attr]
        }
    )
    assert [v.rule for v in check_settings(spot_only)] == ["spot-not-only-capacity"]


def test_gpu_detection() -> None:
    assert guardrails.is_gpu_instance("g5.xlarge")
    assert guardrails.is_gpu_instance("p5e.48xlarge")  # not in the catalog: family prefix
    assert not guardrails.is_gpu_instance("c7i.2xlarge")


@pytest.mark.parametrize(
    ("current", "desired", "max_step", "expected"),
    [
        (4, 6, 2, []),
        (4, 1, None, ["bounds"]),
        (4, 30, None, ["bounds"]),
        (4, 10, 3, ["max-step"]),
        (10, 1, 3, ["bounds", "max-step"]),
    ],
    ids=["ok", "below-floor", "above-max", "too-big-a-step", "both"],
)
def test_live_change_guardrails(
    current: int, desired: int, max_step: int | None, expected: list[str]
) -> None:
    from policies.stack_config import Bounds

    found = guardrails.check_change("prod/asg", current, desired, Bounds(min=2, max=24), max_step)
    assert [v.rule for v in found] == expected


def test_enforce_stack_refuses_a_stack_that_breaks_a_guardrail() -> None:
    settings = load_stack_file(ROOT / "Pulumi.prod.yaml")
    guardrails.enforce_stack(settings)  # the committed stack passes: no error
    assert settings.scaling is not None and settings.scaling.asg is not None
    asg = settings.scaling.asg
    too_wide = settings.with_scaling(
        settings.scaling.model_copy(
            update={
                "asg": asg.model_copy(update={"bounds": asg.bounds.model_copy(update={"max": 30})})
            }
        )
    )
    with pytest.raises(StackConfigError, match="stack prod breaks guardrails") as err:
        guardrails.enforce_stack(too_wide)
    assert "asg.bounds.max 30 exceeds the stack's asg.max_size 24" in str(err.value)
    # Without an emitted policy only the settings rules apply.
    bare = settings.model_copy(update={"scaling": None})
    guardrails.enforce_stack(bare)
