"""Other targets: SageMaker provisioned concurrency (Stubber), EKS node groups, manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from botocore.stub import Stubber

from planner.apply.audit import read_audit
from planner.apply.inputs import scaling_from_value
from planner.apply.service import ApplyRequest, run_apply
from planner.aws.discovery import StackResources
from planner.aws.session import AwsConnection
from tests.planner.apply.conftest import ENDPOINT, NOW, REGION, LiveStack, client, scaling_block

RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
IDS = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION}


def test_serverless_target_policy_and_schedule_are_applied(live_stack: LiveStack) -> None:
    """moto 5.2 rejects the `sagemaker:variant:DesiredProvisionedConcurrency` dimension
    (its enum lacks it), so the Application Auto Scaling client alone is stubbed with
    botocore's Stubber; the Auto Scaling group in the same apply goes to the moto server."""
    conn = AwsConnection(region=REGION, endpoint_url=live_stack.endpoint)
    aas = conn.client("application-autoscaling")
    stub = Stubber(aas)
    stub.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": []},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [RESOURCE],
            "ScalableDimension": DIMENSION,
        },
    )
    stub.add_response("describe_scaling_policies", {"ScalingPolicies": []}, IDS)
    stub.add_response(
        "describe_scheduled_actions",
        {"ScheduledActions": []},
        {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION},
    )
    # the writes, in plan order: bounds, then the policy, then the scheduled action
    stub.add_response("register_scalable_target", {}, {**IDS, "MinCapacity": 5, "MaxCapacity": 40})
    stub.add_response(
        "put_scaling_policy",
        {"PolicyARN": "arn:aws:autoscaling:policy/x", "Alarms": []},
        {
            **IDS,
            "PolicyName": "scaleplan-target-tracking",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 0.7,
                "DisableScaleIn": False,
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 300,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
                },
            },
        },
    )
    stub.add_response(
        "put_scheduled_action",
        {},
        {
            **IDS,
            "ScheduledActionName": "weekday-peak",
            "Schedule": "cron(0 13 ? * 2-6 *)",
            "Timezone": "UTC",
            "ScalableTargetAction": {"MinCapacity": 10},
        },
    )
    block = scaling_block(serverless=True)
    request = ApplyRequest(
        stack="prod",
        project_dir=live_stack.project_dir,
        scaling=scaling_from_value(block, "test"),
        audit_path=live_stack.audit,
        now=NOW,
        yes=True,
        mode="active",
        endpoint_url=live_stack.endpoint,
        names=StackResources(endpoint=ENDPOINT),
        retry_base_s=0.01,
    )
    with stub:
        outcome = run_apply(request, conn)
    stub.assert_no_pending_responses()
    kinds = [c.kind for c in outcome.applied]
    assert kinds.count("aas.target") == 1 and kinds.count("aas.scheduled") == 1
    assert kinds.count("asg.policy") == 4  # and the ASG part went to moto
    assert any(e.get("kind") == "aas.policy" for e in read_audit(live_stack.audit))


def test_eks_node_groups_follow_the_stack_pools_and_manifests_validate(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    eks = client(live_stack.endpoint, "eks")
    subnets = [
        s["SubnetId"] for s in client(live_stack.endpoint, "ec2").describe_subnets()["Subnets"]
    ]
    eks.create_cluster(
        name="scaleplan-prod",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": subnets[:2]},
        tags={"scaleplan:stack": "prod"},
    )
    initial = {"gpu-od": 1, "gpu-spot": 0}
    for pool, size in initial.items():
        eks.create_nodegroup(
            clusterName="scaleplan-prod",
            nodegroupName=f"{pool}-1a2b3c",  # Pulumi appends a suffix
            nodeRole="arn:aws:iam::123456789012:role/node",
            subnets=subnets[:2],
            scalingConfig={"minSize": size, "maxSize": 4, "desiredSize": size},
        )
    block: dict[str, Any] = scaling_block()
    block["eks"] = {
        "bounds": {"min": 4, "max": 60},
        "target_tracking": {"metric": "queue_length_per_replica", "target": 8},
        "hpa_behavior": {
            "scale_up": {
                "stabilization_window_s": 30,
                "policies": [{"type": "Pods", "value": 4, "period_s": 60}],
            },
            "scale_down": {"stabilization_window_s": 900},
        },
    }
    request = ApplyRequest(
        stack="prod",
        project_dir=live_stack.project_dir,
        scaling=scaling_from_value(block, "test"),
        audit_path=live_stack.audit,
        now=NOW,
        yes=True,
        mode="active",
        endpoint_url=live_stack.endpoint,
        manifests_dir=tmp_path / "gitops",
    )
    outcome = run_apply(request)
    # each node group takes its pool's sizes from the stack file; desired moves into them
    stack = yaml.safe_load((live_stack.project_dir / "Pulumi.prod.yaml").read_text())
    for pool in stack["config"]["scaleplan:gpuNodePools"]:
        group = eks.describe_nodegroup(
            clusterName="scaleplan-prod", nodegroupName=f"{pool['name']}-1a2b3c"
        )["nodegroup"]["scalingConfig"]
        low, high = pool["min_size"], pool["max_size"]
        kept = max(low, min(high, initial[pool["name"]]))
        assert group == {"minSize": low, "maxSize": high, "desiredSize": kept}
    [path] = outcome.manifests
    manifest = yaml.safe_load(path.read_text())
    assert manifest["kind"] == "HorizontalPodAutoscaler"
    assert (manifest["spec"]["minReplicas"], manifest["spec"]["maxReplicas"]) == (4, 60)
    # the real Kubernetes OpenAPI schema of the cluster version the stack declares (1.33)
    kubernetes_validate.validate(manifest, "1.33", strict=True)
    assert run_apply(request).manifests == []  # unchanged file: not rewritten


def strict(schema: Any) -> Any:
    """`additionalProperties: false` wherever a schema lists properties (what a structural
    schema's pruning means: an unlisted field would be dropped silently)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        listed = "properties" in out and "additionalProperties" not in out
        if listed and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def test_keda_scaled_object_is_written_and_validates_against_the_crd(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    import jsonschema

    block: dict[str, Any] = scaling_block()
    block["eks"] = {
        "bounds": {"min": 0, "max": 40},
        "keda": {
            "min_replicas": 0,
            "cron": [{"start": "0 8 * * 1-5", "end": "0 20 * * 1-5", "desired": 6}],
        },
    }
    request = ApplyRequest(
        stack="prod",
        project_dir=live_stack.project_dir,
        scaling=scaling_from_value(block, "test"),
        audit_path=live_stack.audit,
        now=NOW,
        yes=True,
        mode="active",
        endpoint_url=live_stack.endpoint,
        manifests_dir=tmp_path / "gitops",
    )
    [path] = run_apply(request).manifests
    manifest = yaml.safe_load(path.read_text())
    assert manifest["kind"] == "ScaledObject"
    crd_path = (
        Path(__file__).resolve().parents[2] / "data" / "crds" / "keda-2.17-scaledobjects.yaml"
    )
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    jsonschema.validate(manifest, strict(version["schema"]["openAPIV3Schema"]))
    assert manifest["spec"]["triggers"][0]["metadata"]["desiredReplicas"] == "6"
    events = [e["event"] for e in read_audit(live_stack.audit)]
    assert "manifest-written" in events
