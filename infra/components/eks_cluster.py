"""The EKS cluster with managed GPU node groups, its OIDC provider and a kubeconfig."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components.iam import service_role
from infra.settings import NodePoolSettings, SystemNodeSettings

#: EKS-optimised Amazon Linux 2023 AMI with the NVIDIA driver and container
#: toolkit (EKS user guide, "Amazon EKS optimized accelerated AMIs").
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"

#: The taint that keeps non-GPU pods off GPU nodes; GPU pods tolerate it
#: (the NVIDIA device plugin's documented convention).
GPU_TAINT: dict[str, str] = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}

#: Labels on every GPU node; the inference Deployment selects on `ai-accelerator`.
GPU_LABELS = {"ai-accelerator": "gpu", "nvidia.com/gpu.present": "true"}

#: EKS-optimised Amazon Linux 2023 AMI for the CPU-only system node group.
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"

#: Label of the untainted system nodes; the add-ons select on it.
SYSTEM_LABELS = {"scaleplan/node-role": "system"}

#: IMDS hop limit 1: a pod's packets take one more hop than the node's, so pods
#: cannot reach the instance metadata service and take the node role's
#: credentials; pods that call AWS use IRSA instead.
IMDS_HOP_LIMIT = 1


@dataclass(frozen=True)
class EksClusterArgs:
    """Inputs of `EksCluster`.

    Attributes:
        version: Kubernetes minor version of the control plane.
        subnet_ids: Private subnets for the control plane ENIs and the nodes.
        node_pools: GPU node groups; sizes bound the autoscaler, which owns desired.
        system_nodes: The untainted on-demand group for CoreDNS and the add-ons.
        public_access_cidrs: CIDRs allowed to reach the public API endpoint;
            empty means a private endpoint only.
        log_types: Control plane logs sent to CloudWatch.
        tags: Tags on every AWS resource.
    """

    version: str
    subnet_ids: pulumi.Input[Sequence[str]]
    node_pools: tuple[NodePoolSettings, ...]
    system_nodes: SystemNodeSettings = field(default_factory=SystemNodeSettings)
    public_access_cidrs: tuple[str, ...] = ()
    log_types: tuple[str, ...] = ("api", "audit", "authenticator")
    tags: dict[str, str] = field(default_factory=dict)


class EksCluster(pulumi.ComponentResource):
    """An EKS control plane (secrets KMS-encrypted) and its GPU node groups."""

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    node_group_names: list[pulumi.Output[str]]
    system_node_group: aws.eks.NodeGroup

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"{name} Kubernetes secrets envelope encryption",
            enable_key_rotation=True,
            tags=args.tags,
            opts=child,
        )
        cluster_role = service_role(
            f"{name}-cluster", "eks.amazonaws.com", ("AmazonEKSClusterPolicy",), args.tags, self
        )
        public = bool(args.public_access_cidrs)
        cluster = aws.eks.Cluster(
            name,
            version=args.version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": args.subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": public,
                "public_access_cidrs": list(args.public_access_cidrs) if public else None,
            },
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(args.log_types),
            tags=args.tags,
            opts=child,
        )
        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index]
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=cluster),
        )
        node_role = service_role(
            f"{name}-node",
            "ec2.amazonaws.com",
            (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
                "AmazonSSMManagedInstanceCore",
            ),
            args.tags,
            self,
        )
        groups = [
            self._node_group(name, pool, cluster, node_role, args) for pool in args.node_pools
        ]
        self.system_node_group = self._system_group(name, cluster, node_role, args)
        groups.append(self.system_node_group)
        self.cluster_name = cluster.name
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        self.node_role_arn = node_role.arn
        self.node_role_name = node_role.name
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.node_group_names = [g.node_group_name for g in groups]
        self.kubeconfig = pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.data
        ).apply(lambda v: kubeconfig_json(str(v[0]), str(v[1]), str(v[2])))
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "node_group_names": self.node_group_names,
            }
        )

    def _launch_template(
        self, name: str, disk_size_gb: int, args: EksClusterArgs
    ) -> aws.ec2.LaunchTemplate:
        # A launch template only for the encrypted root volume and IMDSv2; the
        # AMI still comes from ami_type, so EKS keeps the AMI patched.
        return aws.ec2.LaunchTemplate(
            name,
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": disk_size_gb,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            metadata_options={
                "http_tokens": "required",
                "http_put_response_hop_limit": IMDS_HOP_LIMIT,
                "http_endpoint": "enabled",
            },
            tags=args.tags,
            tag_specifications=[{"resource_type": "instance", "tags": args.tags}],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _system_group(
        self, name: str, cluster: aws.eks.Cluster, node_role: aws.iam.Role, args: EksClusterArgs
    ) -> aws.eks.NodeGroup:
        s = args.system_nodes
        lt = self._launch_template(f"{name}-system", s.disk_size_gb, args)
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            instance_types=list(s.instance_types),
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            scaling_config={
                "min_size": s.min_size,
                "max_size": s.max_size,
                "desired_size": s.desired_size,
            },
            update_config={"max_unavailable": 1},
            labels={**SYSTEM_LABELS, "scaleplan/capacity": "on_demand"},
            # No taint: everything that tolerates nothing lands here.
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=cluster, ignore_changes=["scalingConfig.desiredSize"]
            ),
        )

    def _node_group(
        self,
        name: str,
        pool: NodePoolSettings,
        cluster: aws.eks.Cluster,
        node_role: aws.iam.Role,
        args: EksClusterArgs,
    ) -> aws.eks.NodeGroup:
        lt = self._launch_template(f"{name}-{pool.name}", pool.disk_size_gb, args)
        return aws.eks.NodeGroup(
            f"{name}-{pool.name}",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type=GPU_AMI_TYPE,
            capacity_type=pool.capacity_type,
            instance_types=list(pool.instance_types),
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            scaling_config={
                "min_size": pool.min_size,
                "max_size": pool.max_size,
                "desired_size": pool.desired_size,
            },
            update_config={"max_unavailable": 1},
            labels={
                **GPU_LABELS,
                "scaleplan/pool": pool.name,
                "scaleplan/capacity": pool.capacity_type.lower(),
            },
            taints=[aws.eks.NodeGroupTaintArgs(**GPU_TAINT)],
            tags=args.tags,
            # The cluster autoscaler / Karpenter owns desired size after creation.
            opts=pulumi.ResourceOptions(
                parent=cluster, ignore_changes=["scalingConfig.desiredSize"]
            ),
        )


def kubeconfig_json(cluster_name: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": "aws"}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name],
                        }
                    },
                }
            ],
        }
    )
