"""Guardrails over resources: pure rules on Pulumi resource properties.

Resource properties are Pulumi's camelCase inputs (what the engine, the mocks
and CrossGuard all see). Each rule returns `Violation`s with a message that says
what to change; an empty list means the resource passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.guardrails.exposure import (
    check_metadata,
    check_public,
)
from infra.guardrails.views import ResourceView, Violation
from infra.settings import REQUIRED_TAGS
from sim.capacity.catalog import CATALOG

#: Most GPU nodes (or GPU instances) one stack may run, summed over its pools.
#: A budget guard, not a capacity model: dev is for smoke tests, prod is sized
#: for the fleet's peak with headroom.
MAX_GPU_NODES: dict[str, int] = {"dev": 4, "staging": 16, "prod": 96}

_GPU_FAMILY = re.compile(r"^(g\d|p\d|gr\d)[a-z]*\.")

#: AWS types whose `tags` input the required-tags rule checks.
TAGGED_TYPES: frozenset[str] = frozenset(
    {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:appautoscaling/target:Target",
        "aws:ecr/repository:Repository",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:ssm/parameter:Parameter",
    }
)


def is_gpu_instance(instance_type: str) -> bool:
    """True for GPU instance types (catalog entry with GPUs, or a g*/p* family)."""
    entry = CATALOG.get(instance_type)
    if entry is not None:
        return entry.gpus > 0
    return bool(_GPU_FAMILY.match(instance_type))


def _int(value: Any) -> int | None:
    # pulumi-aws's scheduled actions use -1 for "not set".
    return None if value is None or int(value) < 0 else int(value)


def _bounds(rule_res: str, lo: Any, desired: Any, hi: Any, what: str) -> list[Violation]:
    lo_i, d_i, hi_i = _int(lo), _int(desired), _int(hi)
    out: list[Violation] = []
    if lo_i is not None and hi_i is not None and lo_i > hi_i:
        out.append(Violation("bounds", rule_res, f"{what}: min {lo_i} is above max {hi_i}"))
    if d_i is not None and lo_i is not None and d_i < lo_i:
        out.append(Violation("bounds", rule_res, f"{what}: desired {d_i} is below min {lo_i}"))
    if d_i is not None and hi_i is not None and d_i > hi_i:
        out.append(Violation("bounds", rule_res, f"{what}: desired {d_i} is above max {hi_i}"))
    return out


def _tags_of(type_: str, props: Mapping[str, Any]) -> dict[str, str]:
    if type_ == "aws:autoscaling/group:Group":
        return {t["key"]: t["value"] for t in props.get("tags") or []}
    tags = props.get("tags") or {}
    return dict(tags)


def check_tags(view: ResourceView) -> list[Violation]:
    """Every taggable AWS resource carries `scaleplan:stack`, `owner` and `cost-center`."""
    if view.type not in TAGGED_TYPES and view.type != "aws:autoscaling/group:Group":
        return []
    tags = _tags_of(view.type, view.props)
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if not missing:
        return []
    return [Violation("required-tags", view.name, f"missing tag(s) {', '.join(missing)}")]


def check_bounds(view: ResourceView) -> list[Violation]:
    """min <= desired <= max on every sized resource."""
    p = view.props
    if view.type == "aws:eks/nodeGroup:NodeGroup":
        sc = p.get("scalingConfig") or {}
        return _bounds(
            view.name, sc.get("minSize"), sc.get("desiredSize"), sc.get("maxSize"), "node group"
        )
    if view.type == "aws:autoscaling/group:Group":
        return _bounds(
            view.name, p.get("minSize"), p.get("desiredCapacity"), p.get("maxSize"), "asg"
        )
    if view.type == "aws:autoscaling/schedule:Schedule":
        return _bounds(
            view.name, p.get("minSize"), p.get("desiredCapacity"), p.get("maxSize"), "schedule"
        )
    if view.type == "aws:appautoscaling/target:Target":
        return _bounds(view.name, p.get("minCapacity"), None, p.get("maxCapacity"), "target")
    if view.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
        spec = p.get("spec") or {}
        return _bounds(view.name, spec.get("minReplicas"), None, spec.get("maxReplicas"), "hpa")
    if view.type == "kubernetes:keda.sh/v1alpha1:ScaledObject":
        spec = p.get("spec") or {}
        return _bounds(
            view.name, spec.get("minReplicaCount"), None, spec.get("maxReplicaCount"), "keda"
        )
    return []


def gpu_nodes_max(view: ResourceView) -> int:
    """The most GPU nodes/instances this resource can run (0 for non-GPU resources)."""
    p = view.props
    if view.type == "aws:eks/nodeGroup:NodeGroup":
        types = p.get("instanceTypes") or []
        if any(is_gpu_instance(t) for t in types):
            return int((p.get("scalingConfig") or {}).get("maxSize") or 0)
    if view.type == "aws:autoscaling/group:Group":
        mip = p.get("mixedInstancesPolicy") or {}
        overrides = (mip.get("launchTemplate") or {}).get("overrides") or []
        # Without overrides the type is on the launch template, which this rule
        # cannot see (a warm-pool group): count the group as GPU capacity.
        if not overrides or any(is_gpu_instance(o.get("instanceType", "")) for o in overrides):
            warm = p.get("warmPool") or {}
            running = warm.get("poolState") == "Running"
            prepared = int(warm.get("maxGroupPreparedCapacity") or p.get("maxSize") or 0)
            return int(p.get("maxSize") or 0) + (prepared if running else 0)
    if view.type == "kubernetes:karpenter.sh/v1:NodePool":
        return _karpenter_gpu_nodes(p)
    return 0


#: What an unbounded pool counts as: always above every environment's budget.
UNBOUNDED = 10**6


def _karpenter_gpu_nodes(props: Mapping[str, Any]) -> int:
    """A Karpenter NodePool's GPU nodes: at most its GPU limit (every GPU node has one)."""
    spec = props.get("spec") or {}
    limit = (spec.get("limits") or {}).get("nvidia.com/gpu")
    if limit is not None:
        return int(str(limit))
    template = (spec.get("template") or {}).get("spec") or {}
    for req in template.get("requirements") or []:
        key, values = req.get("key", ""), req.get("values") or []
        if key == "karpenter.k8s.aws/instance-gpu-count":
            return UNBOUNDED
        if key in ("karpenter.k8s.aws/instance-family", "node.kubernetes.io/instance-type") and any(
            _GPU_FAMILY.match(f"{v}.") or is_gpu_instance(str(v)) for v in values
        ):
            return UNBOUNDED
    return 0


def check_gpu_budget(view: ResourceView, environment: str) -> list[Violation]:
    """A single pool may not exceed the environment's GPU node budget."""
    limit = MAX_GPU_NODES.get(environment, MAX_GPU_NODES["prod"])
    n = gpu_nodes_max(view)
    if n > limit:
        return [
            Violation(
                "max-gpu-nodes",
                view.name,
                f"max size {n} exceeds the {environment} limit of {limit} GPU nodes",
            )
        ]
    return []


def check_encryption(view: ResourceView) -> list[Violation]:
    """Encryption at rest: bucket SSE, EBS volumes, EKS secrets envelope encryption."""
    p, out = view.props, []
    if (
        view.type
        == "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        algos = [
            ((r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
            for r in p.get("rules") or []
        ]
        if not algos or any(a not in ("aws:kms", "aws:kms:dsse", "AES256") for a in algos):
            out.append(Violation("encryption", view.name, "bucket SSE must be aws:kms or AES256"))
    if view.type == "aws:ec2/launchTemplate:LaunchTemplate":
        mappings = p.get("blockDeviceMappings") or []
        if not mappings:
            # The AMI's own root volume mapping applies, encrypted or not.
            out.append(
                Violation(
                    "encryption", view.name, "no block device mappings: map an encrypted root"
                )
            )
        for bdm in mappings:
            ebs = bdm.get("ebs") or {}
            if str(ebs.get("encrypted", "false")).lower() != "true":
                out.append(Violation("encryption", view.name, "EBS volume not encrypted"))
    if view.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass":
        mappings = (p.get("spec") or {}).get("blockDeviceMappings") or []
        if not mappings or any((m.get("ebs") or {}).get("encrypted") is not True for m in mappings):
            out.append(
                Violation("encryption", view.name, "EC2NodeClass volumes must set encrypted: true")
            )
    if view.type == "aws:eks/cluster:Cluster" and not p.get("encryptionConfig"):
        out.append(Violation("encryption", view.name, "set encryptionConfig (KMS) for secrets"))
    if view.type == "aws:eks/nodeGroup:NodeGroup" and p.get("diskSize") is not None:
        # diskSize gives an unencrypted default volume; use a launch template instead.
        out.append(Violation("encryption", view.name, "use a launch template with encrypted EBS"))
    return out


def check_resource(view: ResourceView, environment: str) -> list[Violation]:
    """Every single-resource rule for `view` in `environment` (dev, staging, prod)."""
    return [
        *check_tags(view),
        *check_bounds(view),
        *check_gpu_budget(view, environment),
        *check_public(view),
        *check_encryption(view),
        *check_metadata(view),
    ]


def _on_demand_floor(view: ResourceView) -> int:
    """GPU nodes this resource always keeps on on-demand capacity."""
    p = view.props
    gpu = gpu_nodes_max(view) > 0
    if view.type == "aws:eks/nodeGroup:NodeGroup" and gpu and p.get("capacityType") != "SPOT":
        return int((p.get("scalingConfig") or {}).get("minSize") or 0)
    if view.type == "aws:autoscaling/group:Group" and gpu_nodes_max(view) > 0:
        dist = (p.get("mixedInstancesPolicy") or {}).get("instancesDistribution") or {}
        base = int(dist.get("onDemandBaseCapacity") or 0)
        pct = int(dist.get("onDemandPercentageAboveBaseCapacity", 100))
        return base if base > 0 else (1 if pct > 0 else 0)
    return 0


def check_stack(resources: Sequence[ResourceView], environment: str) -> list[Violation]:
    """Rules over the whole stack: GPU budget, spot-only prod, every bucket protected."""
    out: list[Violation] = []
    total = sum(gpu_nodes_max(r) for r in resources)
    limit = MAX_GPU_NODES.get(environment, MAX_GPU_NODES["prod"])
    if total > limit:
        out.append(
            Violation(
                "max-gpu-nodes",
                "stack",
                f"pools can reach {total} GPU nodes together; the {environment} limit is {limit}",
            )
        )
    gpu_pools = [r for r in resources if gpu_nodes_max(r) > 0]
    if environment == "prod" and gpu_pools and not any(_on_demand_floor(r) for r in gpu_pools):
        out.append(
            Violation(
                "spot-not-only-capacity",
                "stack",
                "prod has only spot GPU capacity; add an ON_DEMAND node group or an ASG "
                "on-demand base capacity",
            )
        )
    buckets = {
        str(r.props.get("bucket")): r.name for r in resources if r.type == "aws:s3/bucket:Bucket"
    }
    for kind, rule in (
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "encryption",
        ),
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "no-public-endpoint"),
    ):
        covered = {str(r.props.get("bucket")) for r in resources if r.type == kind}
        for bucket, name in buckets.items():
            if bucket not in covered:
                out.append(Violation(rule, name, f"bucket has no {kind.rsplit(':', 1)[-1]}"))
    return out


def format_violations(violations: Iterable[Violation]) -> str:
    """One line per violation, for error messages."""
    return "\n".join(f"  {v}" for v in violations)
