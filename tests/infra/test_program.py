"""The real program, built per stack file under Pulumi mocks.

Each stack (dev, staging, prod) is built once per module through the program's
own entry point (`infra.__main__.main`), reading its config the way `pulumi up`
does; the tests then check the resources it registered. Every resource has
already passed `infra.guardrails.check_resource` inside the mocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.guardrails import ResourceView
from infra.settings import REQUIRED_TAGS
from tests.infra.conftest import EVERY_BUILD, RecordingMocks

ROOT = Path(__file__).resolve().parents[2]

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def built(built_stacks: dict[str, RecordingMocks]) -> dict[str, RecordingMocks]:
    """The committed stacks, built once per session (conftest.built_stacks)."""
    return built_stacks


@pytest.mark.parametrize("stack", EVERY_BUILD)
def test_stack_builds_and_passes_every_guardrail(every_build: dict[str, Any], stack: str) -> None:
    """With the fixed policy and as committed (whatever `planner emit` last wrote)."""
    mocks = every_build[stack]
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
        groups = built[stack].of_type("aws:eks/nodeGroup:NodeGroup")
        for group in (g for g in groups if not g.name.endswith("-system")):
            p = group.props
            assert p["amiType"] == "AL2023_x86_64_NVIDIA"
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in p[
                "taints"
            ]
            assert p["labels"]["ai-accelerator"] == "gpu"
            assert p["launchTemplate"]["id"].endswith("-id")


def test_capacity_types_and_bounds_follow_the_stack_file(built: dict[str, Any]) -> None:
    dev = built["dev"].one("aws:eks/nodeGroup:NodeGroup", "gpu-spot")
    assert dev.props["capacityType"] == "SPOT"
    assert dev.props["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 0}
    prod_od = built["prod"].one("aws:eks/nodeGroup:NodeGroup", "gpu-od")
    assert prod_od.props["capacityType"] == "ON_DEMAND"
    assert prod_od.props["scalingConfig"]["minSize"] == 2
    assert prod_od.props["instanceTypes"] == ["g5.12xlarge"]


def test_every_stack_has_an_untainted_on_demand_system_node_group(built: dict[str, Any]) -> None:
    """Item 4: CoreDNS, KEDA, the autoscaler and the CronJob tolerate no GPU taint."""
    for stack in STACKS:
        system = built[stack].one("aws:eks/nodeGroup:NodeGroup", "-system").props
        assert system["amiType"] == "AL2023_x86_64_STANDARD"
        assert system["capacityType"] == "ON_DEMAND"
        assert not system.get("taints")
        assert system["scalingConfig"]["minSize"] >= 1
        assert system["labels"]["scaleplan/node-role"] == "system"


def test_prod_is_multi_az_with_nat_per_az_and_an_allowlisted_api(built: dict[str, Any]) -> None:
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
    # Item 5: reachable by the deploy runner's range only (and privately from the VPC).
    assert vpc["endpointPublicAccess"] is True and vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24"]


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
    # Alpha in 1.33 (HPAConfigurableTolerance) and dropped by EKS: never written.
    assert "tolerance" not in down and "tolerance" not in up
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
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    # Item 8: the 70B model split over the replica's 4 GPUs, shared memory, a weights cache.
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert args[args.index("--max-model-len") + 1] == "8192"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/dev/shm", "/models"} <= mounts
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert "runAsUser" not in (pod.get("securityContext") or {})
    assert pod["priorityClassName"] == "scaleplan-inference"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    pdb = built["prod"].one("kubernetes:policy/v1:PodDisruptionBudget").props
    assert pdb["spec"]["maxUnavailable"] == 1
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
    # The committed plan starts 2026-11-23: by now it has passed, and AWS rejects a
    # start time in the past, so the program creates none of its one-shot actions
    # (tests/infra/test_schedules.py builds it with the clock set before the plan).
    one_shot = [s for s in prod.of_type("aws:autoscaling/schedule:Schedule") if "-plan-" in s.name]
    assert one_shot == []


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


def test_retraining_cronjob_runs_under_irsa(built: dict[str, Any]) -> None:
    """The job's pod uses the service account bound to the least-privilege role
    (its command line: tests/infra/test_retraining_job.py)."""
    prod = built["prod"]
    job = prod.one("kubernetes:batch/v1:CronJob").props["spec"]
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    sa = prod.one("kubernetes:core/v1:ServiceAccount").props
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == "scaleplan-retrain"
    role_arn = prod.one("aws:iam/role:Role", "retrain-irsa").props["arn"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_arn
    trust = json.loads(prod.one("aws:iam/role:Role", "retrain-irsa").props["assumeRolePolicy"])
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    sub = next(v for k, v in cond.items() if k.endswith(":sub"))
    assert sub == "system:serviceaccount:inference:scaleplan-retrain"


def test_retraining_role_is_least_privilege(built: dict[str, Any]) -> None:
    """The store's prefix of this stack's bucket, its key, metric reads; no scaling call.

    (Checked against the calls a run makes in tests/infra/test_retraining_iam.py.)
    """
    prod = built["prod"]
    policy = json.loads(
        prod.one("aws:iam/rolePolicy:RolePolicy", "least-privilege").props["policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    bucket_arn = prod.one("aws:s3/bucket:Bucket").props["arn"]
    assert by_sid["ReadWriteStore"]["Resource"] == f"{bucket_arn}/policies/*"
    assert by_sid["ListStore"]["Resource"] == bucket_arn
    assert by_sid["ListStore"]["Condition"] == {"StringLike": {"s3:prefix": ["policies/*"]}}
    assert by_sid["ReleaseRetrainLock"]["Resource"] == f"{bucket_arn}/policies/locks/*"
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert not any(a.startswith(("autoscaling:", "application-autoscaling:")) for a in actions)
    # Any statement on every resource is read-only.
    for statement in policy["Statement"]:
        if statement["Resource"] == "*":
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


def test_no_karpenter_objects_the_cluster_cannot_serve(built: dict[str, Any]) -> None:
    """Item 3: no NodePool/EC2NodeClass without a Karpenter install (it was removed)."""
    for stack in STACKS:
        kinds = {r.type for r in built[stack].resources}
        assert not any("karpenter" in k for k in kinds)


def test_device_plugin_everywhere_keda_only_for_scaled_objects(built: dict[str, Any]) -> None:
    for stack in STACKS:
        releases = {
            r.props["name"]: r.props for r in built[stack].of_type("kubernetes:helm.sh/v3:Release")
        }
        plugin = releases["nvidia-device-plugin"]
        assert plugin["values"]["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert ("keda" in releases) == (stack == "dev")


def test_cluster_autoscaler_scales_the_node_groups_under_irsa(built: dict[str, Any]) -> None:
    """Items 3 and 6: a node autoscaler installed by the program, not by hand."""
    for stack in STACKS:
        mocks = built[stack]
        releases = {
            r.props["name"]: r.props for r in mocks.of_type("kubernetes:helm.sh/v3:Release")
        }
        ca = releases["cluster-autoscaler"]
        assert ca["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
        values = ca["values"]
        assert values["autoDiscovery"]["clusterName"] == f"scaleplan-{stack}-eks"
        assert values["image"]["tag"] == "v1.33.1"  # matches the cluster's 1.33
        assert values["nodeSelector"] == {"scaleplan/node-role": "system"}
        role = mocks.one("aws:iam/role:Role", "node-autoscaler-irsa").props
        sa = values["rbac"]["serviceAccount"]
        assert sa["annotations"]["eks.amazonaws.com/role-arn"] == role["arn"]
        trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        sub = next(v for k, v in trust.items() if k.endswith(":sub"))
        assert sub == "system:serviceaccount:kube-system:cluster-autoscaler"
        policy = json.loads(
            mocks.one("aws:iam/rolePolicy:RolePolicy", "scale-node-groups").props["policy"]
        )
        resize = next(s for s in policy["Statement"] if s["Sid"] == "ResizeThisClustersGroups")
        assert resize["Condition"] == {
            "StringEquals": {
                f"aws:ResourceTag/k8s.io/cluster-autoscaler/scaleplan-{stack}-eks": "owned"
            }
        }


def test_preview_with_unknown_outputs_registers_the_same_resources(built: dict[str, Any]) -> None:
    """Under `pulumi preview` provider outputs (ARNs, endpoints, issuers) are unknown.

    The mocks here return only the inputs, as a preview does, so every `.apply`
    over a computed output is skipped; the program must still register the whole
    stack.
    """
    import pulumi

    from infra import __main__ as program
    from tests.infra.conftest import RecordingMocks, fixture_scaling, stack_config

    class PreviewMocks(RecordingMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            with self._lock:
                self.resources.append(ResourceView(args.typ, args.name, dict(args.inputs)))
            return "", dict(args.inputs)

    mocks = PreviewMocks(environment="prod")
    pulumi.runtime.set_mocks(mocks, project="scaleplan", stack="prod", preview=True)
    config = stack_config("prod", {"scaleplan:scaling": fixture_scaling("prod")})
    pulumi.runtime.set_all_config(config, secret_keys=["scaleplan:modelToken"])

    @pulumi.runtime.test
    def body() -> None:
        program.main()

    body()
    pulumi.runtime.set_all_config({})
    previewed = sorted((r.type, r.name) for r in mocks.resources)
    assert previewed == sorted((r.type, r.name) for r in built["prod"].resources)


def test_the_hpa_metric_is_served_by_the_installed_pipeline(built: dict[str, Any]) -> None:
    """Item 9: the Pods metric the HPA reads exists: vLLM series -> Prometheus -> adapter."""
    prod = built["prod"]
    hpa = prod.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").props
    wanted = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    releases = {r.props["name"]: r.props for r in prod.of_type("kubernetes:helm.sh/v3:Release")}
    assert {"prometheus", "prometheus-adapter", "dcgm-exporter"} <= set(releases)
    rules = releases["prometheus-adapter"]["values"]["rules"]
    assert rules["default"] is False
    served = {r["name"]["as"]: r["seriesQuery"] for r in rules["custom"]}
    # prod scales on queue length: computed from vLLM's own waiting-requests gauge.
    assert served[wanted].startswith("vllm:num_requests_waiting{")
    adapter_url = releases["prometheus-adapter"]["values"]["prometheus"]["url"]
    assert adapter_url == "http://prometheus-server.monitoring.svc"
    template = prod.one("kubernetes:apps/v1:Deployment").props["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    # dev's KEDA ScaledObject would query the same Prometheus for a prometheus trigger.
    dev_releases = {r.props["name"] for r in built["dev"].of_type("kubernetes:helm.sh/v3:Release")}
    assert "prometheus" in dev_releases


def test_the_asg_serves_behind_an_internal_load_balancer(built: dict[str, Any]) -> None:
    """Item 10: boot script, published metrics, load balancer and launch hook."""
    import base64

    from infra.components.asg import CLOUDWATCH_METRICS

    prod = built["prod"]
    lt = prod.one("aws:ec2/launchTemplate:LaunchTemplate", "-asg").props
    script = base64.b64decode(lt["userData"]).decode()
    assert "docker run" in script and "Qwen/Qwen2.5-7B-Instruct" in script
    assert "--max-model-len 8192" in script
    # Every metric the group's alarms and target tracking select is published.
    for namespace, metric in CLOUDWATCH_METRICS.values():
        if namespace == "scaleplan":
            assert metric in script, metric
    assert '"rename": "GPUUtilization"' in script
    assert "complete-lifecycle-action" in script and "scaleplan-model-ready" in script
    group = prod.one("aws:autoscaling/group:Group").props
    assert group["healthCheckType"] == "ELB"
    tg = prod.one("aws:lb/targetGroup:TargetGroup").props
    assert group["targetGroupArns"] == [tg["arn"]]
    assert tg["healthCheck"]["path"] == "/health"
    [hook] = group["initialLifecycleHooks"]
    assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert prod.one("aws:lb/loadBalancer:LoadBalancer").props["internal"] is True
    token = prod.one("aws:ssm/parameter:Parameter").props
    assert token["type"] == "SecureString" and f"--name {token['name']}" in script


def test_serverless_spillover_is_a_small_cpu_model(built: dict[str, Any]) -> None:
    """SageMaker serverless has no GPUs: the endpoint serves a 0.5B model on CPU."""
    for stack in ("staging", "prod"):
        model = built[stack].one("aws:sagemaker/model:Model").props["primaryContainer"]
        assert "-cpu-" in model["image"]
        assert model["environment"] == {
            "HF_MODEL_ID": "Qwen/Qwen2.5-0.5B-Instruct",
            "HF_TASK": "text-generation",
        }
