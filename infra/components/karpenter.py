"""An optional Karpenter NodePool and EC2NodeClass for GPU capacity.

Karpenter itself (controller, CRDs, its IAM role) is installed separately; this
component only declares the GPU pool: NVIDIA AL2023 AMIs, the GPU taint and
labels shared with the managed node groups, and a hard limit on total GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import GPU_LABELS, GPU_TAINT
from infra.settings import KarpenterSettings


@dataclass(frozen=True)
class KarpenterGpuArgs:
    """Inputs of `KarpenterGpuPool`.

    Attributes:
        settings: Instance families, GPU limit, capacity types.
        discovery_tag: Value of the `karpenter.sh/discovery` tag on subnets.
        node_role_name: IAM role name Karpenter nodes run with (the managed node
            groups' role, which EKS already grants a node access entry).
        security_group_id: The cluster security group, tagged for discovery.
        provider: The Kubernetes provider of the cluster.
    """

    settings: KarpenterSettings
    discovery_tag: str
    node_role_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    provider: k8s.Provider


class KarpenterGpuPool(pulumi.ComponentResource):
    """`karpenter.sh/v1` NodePool + `karpenter.k8s.aws/v1` EC2NodeClass for GPUs."""

    def __init__(
        self, name: str, args: KarpenterGpuArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("scaleplan:infra:KarpenterGpuPool", name, None, opts)
        s = args.settings
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # Subnets carry the discovery tag from the network; tag the cluster SG too.
        aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=args.security_group_id,
            key="karpenter.sh/discovery",
            value=args.discovery_tag,
            opts=pulumi.ResourceOptions(parent=self),
        )
        selector: Any = [{"tags": {"karpenter.sh/discovery": args.discovery_tag}}]
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": "gpu"},
            spec={
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "role": args.node_role_name,
                "subnetSelectorTerms": selector,
                "securityGroupSelectorTerms": selector,
                "metadataOptions": {"httpTokens": "required"},
                "blockDeviceMappings": [
                    {
                        "deviceName": "/dev/xvda",
                        "ebs": {"volumeSize": "200Gi", "volumeType": "gp3", "encrypted": True},
                    }
                ],
            },
            opts=k8s_opts,
        )
        k8s.apiextensions.CustomResource(
            name,
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": "gpu"},
            spec={
                "template": {
                    "metadata": {"labels": GPU_LABELS},
                    "spec": {
                        "nodeClassRef": {
                            "group": "karpenter.k8s.aws",
                            "kind": "EC2NodeClass",
                            "name": "gpu",
                        },
                        "taints": [
                            {"key": GPU_TAINT["key"], "value": "true", "effect": "NoSchedule"}
                        ],
                        "requirements": [
                            {
                                "key": "karpenter.k8s.aws/instance-family",
                                "operator": "In",
                                "values": list(s.instance_families),
                            },
                            {
                                "key": "karpenter.sh/capacity-type",
                                "operator": "In",
                                "values": list(s.capacity_types),
                            },
                        ],
                    },
                },
                "limits": {"nvidia.com/gpu": s.gpu_limit},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"},
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[node_class]
            ),
        )
        self.register_outputs({})
