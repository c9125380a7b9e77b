"""The node autoscaler: cluster-autoscaler, installed by Helm, scaling the managed node groups.

Pods the HPA or KEDA adds stay Pending until a node has room for them; this adds
the node. The cluster autoscaler was chosen over Karpenter because it scales the
EKS managed node groups the stack already declares, within their min/max sizes:
those sizes are what the settings, the guardrails' GPU node budget, the cost
table and the simulator's pools all describe, so one number bounds a pool
everywhere. Karpenter provisions nodes outside any node group, bounded by a GPU
limit in a NodePool that none of those see, and needs its CRDs, a controller
role with about thirty EC2 actions, an SQS interruption queue and four
EventBridge rules; running both would put two autoscalers on the same pods.

It finds the groups by the tags EKS puts on every managed node group's Auto
Scaling group (`k8s.io/cluster-autoscaler/enabled`, `k8s.io/cluster-autoscaler/
<cluster>`) and, for a group at zero nodes, reads its labels, taints and
instance type through `eks:DescribeNodegroup`, so the GPU pools scale from zero.
It runs on the system nodes under IRSA; it may change only groups tagged as this
cluster's (policy below, after the cluster-autoscaler AWS cloud provider README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import SYSTEM_LABELS
from infra.components.iam import irsa_trust

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"

#: The cluster-autoscaler release matching each Kubernetes minor version (the
#: project supports only the matching minor; registry.k8s.io/autoscaling).
IMAGE_TAG_BY_K8S: dict[str, str] = {
    "1.31": "v1.31.4",
    "1.32": "v1.32.3",
    "1.33": "v1.33.1",
}


@dataclass(frozen=True)
class NodeAutoscalerArgs:
    """Inputs of `NodeAutoscaler`.

    Attributes:
        cluster_name: The EKS cluster whose node groups it scales.
        cluster_version: Kubernetes minor version (picks the image).
        region: AWS region of the cluster.
        chart_version: Helm chart version (kubernetes.github.io/autoscaler).
        provider: The Kubernetes provider of the cluster.
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: Issuer URL of the cluster.
        depends_on: What must exist first (the system node group it runs on).
        tags: Tags on the IAM role.
    """

    cluster_name: pulumi.Input[str]
    cluster_version: str
    region: str
    chart_version: str
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    depends_on: tuple[pulumi.Resource, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


def autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """What the cluster autoscaler may do: read groups and types, resize this cluster's groups."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DiscoverGroupsAndTypes",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ReadThisClustersNodeGroups",
                "Effect": "Allow",
                "Action": ["eks:DescribeNodegroup"],
                "Resource": f"arn:aws:eks:*:*:nodegroup/{cluster_name}/*/*",
            },
            {
                "Sid": "ResizeThisClustersGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                # EKS names a managed node group's Auto Scaling group `eks-<group>-<id>`.
                "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                    }
                },
            },
        ],
    }


def autoscaler_values(
    cluster_name: str, region: str, image_tag: str, role_arn: str
) -> dict[str, Any]:
    """Helm values of the cluster-autoscaler chart."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": image_tag},
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            # Spread GPU capacity over the AZs' node groups of one shape.
            "balance-similar-node-groups": True,
            # Add the node that leaves least CPU/memory idle (GPU pools differ in size).
            "expander": "least-waste",
            # GPU nodes that boot slowly are not unregistered too early.
            "max-node-provision-time": "20m",
            "scale-down-unneeded-time": "10m",
        },
        "nodeSelector": SYSTEM_LABELS,
        "priorityClassName": "system-cluster-critical",
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
    }


class NodeAutoscaler(pulumi.ComponentResource):
    """IRSA role and the cluster-autoscaler Helm release."""

    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: NodeAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("scaleplan:infra:NodeAutoscaler", name, None, opts)
        if args.cluster_version not in IMAGE_TAG_BY_K8S:
            raise ValueError(
                f"no cluster-autoscaler release known for Kubernetes {args.cluster_version}; "
                f"known: {', '.join(IMAGE_TAG_BY_K8S)}"
            )
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda v: irsa_trust(str(v[0]), str(v[1]), NAMESPACE, SERVICE_ACCOUNT)
        )
        role = aws.iam.Role(f"{name}-irsa", assume_role_policy=trust, tags=args.tags, opts=child)
        aws.iam.RolePolicy(
            f"{name}-scale-node-groups",
            role=role.id,
            policy=pulumi.Output.from_input(args.cluster_name).apply(
                lambda c: json.dumps(autoscaler_policy(str(c)))
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        values = pulumi.Output.all(args.cluster_name, role.arn).apply(
            lambda v: autoscaler_values(
                str(v[0]), args.region, IMAGE_TAG_BY_K8S[args.cluster_version], str(v[1])
            )
        )
        k8s.helm.v3.Release(
            f"{name}-release",
            name="cluster-autoscaler",
            chart="cluster-autoscaler",
            version=args.chart_version,
            namespace=NAMESPACE,
            repository_opts={"repo": "https://kubernetes.github.io/autoscaler"},
            values=values,
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.depends_on)
            ),
        )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": role.arn})
