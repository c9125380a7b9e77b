"""The real program, built per stack file under Pulumi mocks.

Each stack (dev, staging, prod) is built once per module through the program's
own entry point (`infra.__main__.main`), reading its config the way `pulumi up`
does; the tests then check the resources it registered. Every resource has
already passed `infra.guardrails.check_resource` inside the mocks.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from infra.guardrails import ResourceView
from infra.settings import REQUIRED_TAGS
from infra.stack_file import read_stack_file

ROOT = Path(__file__).resolve().parents[2]

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """Each stack built once (the mocks keep what was registered)."""
    import pulumi

    from infra import __main__ as program
    from tests.infra.conftest import install, stack_config

    out = {}
    for stack in STACKS:
        config = stack_config(stack)
        mocks = install(stack, config["scaleplan:environment"], config)

        @pulumi.runtime.test
        def body() -> None:
            program.main()

        body()
        out[stack] = mocks
    pulumi.runtime.set_all_config({})
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_stack_builds_and_passes_every_guardrail(built: dict[str, Any], stack: str) -> None:
    mocks = built[stack]
    assert mocks.stack_violations() == []
    types = {r.type for r in mocks.resources}
    for expected in (
        "aws:ec2/vpc:Vpc",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:CronJob",
        "aws:s3/bucket:Bucket",
        "aws:autoscaling/group:Group",
    ):
        assert expected in types, f"{stack} lacks {expected}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_required_tags(built: dict[str, Any], stack: str) -> None:
    cluster = built[stack].one("aws:eks/cluster:Cluster")
    for tag in REQUIRED_TAGS:
        assert cluster.props["tags"][tag]
    assert cluster.props["tags"]["scaleplan:stack"] == stack


def test_gpu_node_groups_use_nvidia_ami_taint_and_labels(built: dict[str, Any]) -> None:
    for stack in STACKS:
        for group in built[stack].of_type("aws:eks/nodeGroup:NodeGroup"):
            p = group.props
            assert p["amiType"] == "AL2023_x86_64_NVIDIA"
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in p[
                "taints"
            ]
            assert p["labels"]["ai-accelerator"] == "gpu"
            assert p["launchTemplate"]["id"].endswith("-id")


def test_capacity_types_and_bounds_follow_the_stack_file(built: dict[str, Any]) -> None:
    dev = built["dev"].one("aws:eks/nodeGroup:NodeGroup")
    assert dev.props["capacityType"] == "SPOT"
    assert dev.props["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 0}
    prod_od = built["prod"].one("aws:eks/nodeGroup:NodeGroup", "gpu-od")
    assert prod_od.props["capacityType"] == "ON_DEMAND"
    assert prod_od.props["scalingConfig"]["minSize"] == 2
    assert prod_od.props["instanceTypes"] == ["g5.12xlarge"]


def test_prod_is_multi_az_with_nat_per_az_and_private_api(built: dict[str, Any]) -> None:
    prod = built["prod"]
    private = [s for s in prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    assert {s.props["availabilityZone"] for s in private} == {
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    }
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(built["dev"].of_type("aws:ec2/natGateway:NatGateway")) == 1
    vpc = prod.one("aws:eks/cluster:Cluster").props["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False and vpc["endpointPrivateAccess"] is True


def test_hpa_behavior_comes_from_the_emitted_policy(built: dict[str, Any]) -> None:
    hpa = built["staging"].one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    spec = hpa.props["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
    up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0 and up["selectPolicy"] == "Max"
    assert up["policies"] == [
        {"type": "Pods", "value": 2, "periodSeconds": 60},
        {"type": "Percent", "value": 100, "periodSeconds": 60},
    ]
    assert down["stabilizationWindowSeconds"] == 600 and down["selectPolicy"] == "Min"
    assert down["tolerance"] == "0.05"
    metric = spec["metrics"][0]
    assert metric["pods"]["metric"]["name"] == "scaleplan_requests_per_second"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4.5"}


def test_scale_to_zero_policy_becomes_a_keda_scaled_object(built: dict[str, Any]) -> None:
    dev = built["dev"]
    assert dev.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []
    so = dev.one("kubernetes:keda.sh/v1alpha1:ScaledObject").props
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] == 2
    assert spec["scaleTargetRef"] == {"name": "llm"}
    assert spec["triggers"] == [
        {
            "type": "cron",
            "metadata": {
                "timezone": "Europe/Berlin",
                "start": "0 8 * * 1-5",
                "end": "0 19 * * 1-5",
                "desiredReplicas": "1",
            },
        }
    ]


def test_deployment_requests_gpus_tolerates_taint_and_targets_gpu_nodes(
    built: dict[str, Any],
) -> None:
    dep = built["prod"].one("kubernetes:apps/v1:Deployment").props
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": "ai-accelerator",
        "operator": "In",
        "values": ["gpu"],
    }


def test_step_scaling_has_two_alarms_forming_a_hysteresis_band(built: dict[str, Any]) -> None:
    staging = built["staging"]
    high = staging.one("aws:cloudwatch/metricAlarm:MetricAlarm", "-high").props
    low = staging.one("aws:cloudwatch/metricAlarm:MetricAlarm", "-low").props
    assert (high["threshold"], low["threshold"]) == (75, 35)
    assert high["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert low["comparisonOperator"] == "LessThanOrEqualToThreshold"
    assert (high["evaluationPeriods"], low["evaluationPeriods"]) == (2, 10)
    assert high["namespace"] == "scaleplan" and high["metricName"] == "GPUUtilization"
    out = staging.one("aws:autoscaling/policy:Policy", "step-out").props
    assert high["alarmActions"] == [out["arn"]]
    assert out["stepAdjustments"] == [
        {"scalingAdjustment": 1, "metricIntervalLowerBound": "0", "metricIntervalUpperBound": "15"},
        {"scalingAdjustment": 2, "metricIntervalLowerBound": "15"},
    ]
    schedules = staging.of_type("aws:autoscaling/schedule:Schedule")
    assert {s.props["recurrence"] for s in schedules} == {"0 7 * * 1-5", "0 20 * * *"}


def test_staging_asg_has_a_warm_pool_and_no_spot(built: dict[str, Any]) -> None:
    group = built["staging"].one("aws:autoscaling/group:Group").props
    assert group["warmPool"] == {
        "poolState": "Stopped",
        "minSize": 1,
        "maxGroupPreparedCapacity": 2,
        "instanceReusePolicy": {"reuseOnScaleIn": True},
    }
    assert "mixedInstancesPolicy" not in group
    assert (group["minSize"], group["maxSize"]) == (1, 4)


def test_prod_asg_mixes_spot_above_on_demand_base_with_predictive_and_schedule(
    built: dict[str, Any],
) -> None:
    prod = built["prod"]
    group = prod.one("aws:autoscaling/group:Group").props
    dist = group["mixedInstancesPolicy"]["instancesDistribution"]
    assert dist["onDemandBaseCapacity"] == 2
    assert dist["onDemandPercentageAboveBaseCapacity"] == 25
    overrides = group["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
    assert [o["instanceType"] for o in overrides] == ["g5.xlarge", "g6.xlarge", "g5.2xlarge"]
    assert group["capacityRebalance"] is True
    lt = prod.one("aws:ec2/launchTemplate:LaunchTemplate", "-asg").props
    assert lt["imageId"] == "ami-0123456789abcdef0"  # resolved from the DLAMI SSM parameter
    assert "aws:ssm/getParameter:getParameter" in prod.calls
    predictive = prod.one("aws:autoscaling/policy:Policy", "predictive").props
    cfg = predictive["predictiveScalingConfiguration"]
    assert cfg["mode"] == "ForecastOnly" and cfg["schedulingBufferTime"] == "600"
    assert cfg["maxCapacityBreachBehavior"] == "HonorMaxCapacity"
    tracking = prod.one("aws:autoscaling/policy:Policy", "target-tracking").props
    custom = tracking["targetTrackingConfiguration"]["customizedMetricSpecification"]
    assert custom["metricName"] == "GPUUtilization"
    one_shot = [
        s.props for s in prod.of_type("aws:autoscaling/schedule:Schedule") if "startTime" in s.props
    ]
    # The 48 h plan becomes one action at the start and one at each change of value.
    plan = read_stack_file(ROOT / "Pulumi.prod.yaml")["scaleplan:scaling"]["asg"]["schedule"]
    desired = plan["desired"]
    assert len(desired) == 48
    assert len(one_shot) == 1 + sum(a != b for a, b in itertools.pairwise(desired)) == 21
    first = {
        k: one_shot[0][k]
        for k in ("autoscalingGroupName", "scheduledActionName", "startTime", "desiredCapacity")
    }
    assert first == {
        "autoscalingGroupName": "scaleplan-prod-asg",
        "scheduledActionName": "scaleplan-20261123T0000Z",
        "startTime": "2026-11-23T00:00:00Z",
        "desiredCapacity": 2,
    }


def test_bundle_bucket_is_versioned_encrypted_and_private(built: dict[str, Any]) -> None:
    dev = built["dev"]
    bucket = dev.one("aws:s3/bucket:Bucket").props["bucket"]
    versioning = dev.one("aws:s3/bucketVersioning:BucketVersioning").props
    assert versioning["bucket"] == bucket
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    sse = dev.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).props
    rule = sse["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms" and rule["kmsMasterKeyId"].startswith("arn:aws:kms")
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").props
    assert all(
        block[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    policy = json.loads(dev.one("aws:s3/bucketPolicy:BucketPolicy").props["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_retraining_cronjob_forbids_overlap_and_runs_under_irsa(built: dict[str, Any]) -> None:
    prod = built["prod"]
    job = prod.one("kubernetes:batch/v1:CronJob").props["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    assert job["schedule"] == "0 3 * * *"
    container = job["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["planner", "retrain"]
    assert container["args"][:2] == ["--stack", "prod"]
    sa = prod.one("kubernetes:core/v1:ServiceAccount").props
    role_arn = prod.one("aws:iam/role:Role", "retrain-irsa").props["arn"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_arn
    trust = json.loads(prod.one("aws:iam/role:Role", "retrain-irsa").props["assumeRolePolicy"])
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    sub = next(v for k, v in cond.items() if k.endswith(":sub"))
    assert sub == "system:serviceaccount:inference:scaleplan-retrain"


def test_retraining_role_is_least_privilege(built: dict[str, Any]) -> None:
    prod = built["prod"]
    policy = json.loads(
        prod.one("aws:iam/rolePolicy:RolePolicy", "least-privilege").props["policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    put = by_sid["PutScalingOnThisStack"]
    assert put["Condition"] == {"StringEquals": {"aws:ResourceTag/scaleplan:stack": "prod"}}
    assert all(
        a.split(":")[1].startswith(("Put", "Register", "Delete", "Update")) for a in put["Action"]
    )
    assert all(a.split(":")[1].startswith("Describe") for a in by_sid["DescribeScaling"]["Action"])
    bucket_arn = prod.one("aws:s3/bucket:Bucket").props["arn"]
    assert by_sid["ReadWriteBundles"]["Resource"] == f"{bucket_arn}/*"
    assert by_sid["ListBundleBucket"]["Resource"] == bucket_arn
    # Any statement on every resource is read-only, or conditioned on this stack's tag.
    for statement in policy["Statement"]:
        if statement["Resource"] == "*" and "Condition" not in statement:
            verbs = [a.split(":")[1] for a in statement["Action"]]
            assert all(v.startswith(("Describe", "Get", "List")) for v in verbs), statement


def test_serverless_endpoint_and_provisioned_concurrency_scaling(built: dict[str, Any]) -> None:
    prod = built["prod"]
    variant = prod.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").props[
        "productionVariants"
    ][0]
    assert variant["serverlessConfig"] == {
        "memorySizeInMb": 6144,
        "maxConcurrency": 50,
        "provisionedConcurrency": 5,
    }
    target = prod.one("aws:appautoscaling/target:Target").props
    assert target["scalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert target["resourceId"] == "endpoint/scaleplan-prod-serverless/variant/AllTraffic"
    assert (target["minCapacity"], target["maxCapacity"]) == (5, 40)
    actions = {
        a.props["name"]: a.props
        for a in prod.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    }
    assert actions["weekday-peak"]["schedule"] == "cron(0 13 ? * 2-6 *)"
    assert built["dev"].of_type("aws:sagemaker/endpoint:Endpoint") == []


def test_karpenter_gpu_nodepool_only_where_enabled(built: dict[str, Any]) -> None:
    pool = built["prod"].one("kubernetes:karpenter.sh/v1:NodePool").props["spec"]
    assert pool["limits"] == {"nvidia.com/gpu": 64}
    assert pool["template"]["spec"]["taints"][0]["key"] == "nvidia.com/gpu"
    assert built["staging"].of_type("kubernetes:karpenter.sh/v1:NodePool") == []


def test_device_plugin_everywhere_keda_only_for_scaled_objects(built: dict[str, Any]) -> None:
    for stack in STACKS:
        releases = {
            r.props["name"]: r.props for r in built[stack].of_type("kubernetes:helm.sh/v3:Release")
        }
        plugin = releases["nvidia-device-plugin"]
        assert plugin["values"]["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert ("keda" in releases) == (stack == "dev")


def test_karpenter_discovers_the_cluster_security_group(built: dict[str, Any]) -> None:
    tag = built["prod"].one("aws:ec2/tag:Tag").props
    assert tag == {
        **tag,
        "resourceId": "sg-0c1a2b3c",
        "key": "karpenter.sh/discovery",
        "value": "scaleplan-prod-net",
    }


def test_preview_with_unknown_outputs_registers_the_same_resources(built: dict[str, Any]) -> None:
    """Under `pulumi preview` provider outputs (ARNs, endpoints, issuers) are unknown.

    The mocks here return only the inputs, as a preview does, so every `.apply`
    over a computed output is skipped; the program must still register the whole
    stack.
    """
    import pulumi

    from infra import __main__ as program
    from tests.infra.conftest import RecordingMocks, stack_config

    class PreviewMocks(RecordingMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            with self._lock:
                self.resources.append(ResourceView(args.typ, args.name, dict(args.inputs)))
            return "", dict(args.inputs)

    mocks = PreviewMocks(environment="prod")
    pulumi.runtime.set_mocks(mocks, project="scaleplan", stack="prod", preview=True)
    pulumi.runtime.set_all_config(stack_config("prod"), secret_keys=["scaleplan:modelToken"])

    @pulumi.runtime.test
    def body() -> None:
        program.main()

    body()
    pulumi.runtime.set_all_config({})
    previewed = sorted((r.type, r.name) for r in mocks.resources)
    assert previewed == sorted((r.type, r.name) for r in built["prod"].resources)
