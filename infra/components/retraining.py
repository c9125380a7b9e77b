"""What the retraining job runs under: its IAM role (IRSA), service account, RBAC and image.

The job itself, a Kubernetes CronJob running the planner's retraining command, comes
with that command (issue 13): a CronJob whose every run fails is not deployed. What it
will run under is created now, so the role can be linted and reviewed.

The job's service account is bound through the cluster's OIDC provider (IAM
roles for service accounts) to a role of least privilege: it may describe
scaling settings anywhere (Describe* calls take no resource conditions), change
them only on resources tagged with this stack (`aws:ResourceTag/scaleplan:stack`),
read CloudWatch metrics, and read and write the bundle bucket only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.iam import irsa_trust
from infra.settings import RetrainingSettings

SERVICE_ACCOUNT = "scaleplan-retrain"
ASG_ARN_PREFIX = "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/"


@dataclass(frozen=True)
class RetrainingArgs:
    """Inputs of `RetrainingJob`.

    Attributes:
        settings: The planner image.
        stack: This stack's name; the tag value scaling changes are limited to.
        namespace: Namespace of the job's service account (the inference namespace,
            so the job can patch the autoscaler there through Kubernetes RBAC).
        provider: The Kubernetes provider of the cluster.
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: Issuer URL of the cluster (`https://oidc.eks...`).
        bucket_name: The policy-bundle bucket.
        bucket_arn: Its ARN.
        kms_key_arn: The bucket's KMS key.
        tags: Tags on the IAM role.
    """

    settings: RetrainingSettings
    stack: str
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)


def least_privilege_policy(stack: str, bucket_arn: str, kms_key_arn: str) -> dict[str, Any]:
    """The retraining role's permissions (see the module docstring for the reasoning)."""
    tagged = {"StringEquals": {"aws:ResourceTag/scaleplan:stack": stack}}
    # Physical names of this stack's resources start with it (`StackSettings.resource_name`).
    prefix = f"scaleplan-{stack}-"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Describe calls of Auto Scaling take no resource ARNs.
                "Sid": "DescribeScaling",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribePolicies",
                    "autoscaling:DescribeScheduledActions",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                    "application-autoscaling:DescribeScheduledActions",
                ],
                "Resource": "*",
            },
            {
                "Sid": "DescribeThisStacksEndpoints",
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
                "Resource": [
                    f"arn:aws:sagemaker:*:*:endpoint/{prefix}*",
                    f"arn:aws:sagemaker:*:*:endpoint-config/{prefix}*",
                ],
            },
            {
                "Sid": "PutScalingOnThisStacksGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:PutScalingPolicy",
                    "autoscaling:PutScheduledUpdateGroupAction",
                    "autoscaling:DeleteScheduledAction",
                    "autoscaling:UpdateAutoScalingGroup",
                ],
                "Resource": f"{ASG_ARN_PREFIX}{prefix}*",
                "Condition": tagged,
            },
            {
                "Sid": "PutScalingOnThisStacksTargets",
                "Effect": "Allow",
                "Action": [
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:PutScheduledAction",
                    "application-autoscaling:DeleteScheduledAction",
                ],
                "Resource": "arn:aws:application-autoscaling:*:*:scalable-target/*",
                "Condition": tagged,
            },
            {
                "Sid": "ReadMetrics",
                "Effect": "Allow",
                "Action": [
                    "cloudwatch:GetMetricData",
                    "cloudwatch:GetMetricStatistics",
                    "cloudwatch:ListMetrics",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ListBundleBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadWriteBundles",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                "Resource": f"{bucket_arn}/*",
            },
            {
                "Sid": "BundleKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": kms_key_arn,
            },
        ],
    }


class RetrainingJob(pulumi.ComponentResource):
    """IRSA role, service account, namespace RBAC and image for the retraining job."""

    role_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    image: pulumi.Output[str]

    def __init__(self, name: str, args: RetrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:RetrainingJob", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer, args.namespace).apply(
            lambda v: irsa_trust(str(v[0]), str(v[1]), str(v[2]), SERVICE_ACCOUNT)
        )
        role = aws.iam.Role(f"{name}-irsa", assume_role_policy=trust, tags=args.tags, opts=child)
        aws.iam.RolePolicy(
            f"{name}-least-privilege",
            role=role.id,
            policy=pulumi.Output.all(args.bucket_arn, args.kms_key_arn).apply(
                lambda v: json.dumps(least_privilege_policy(args.stack, str(v[0]), str(v[1])))
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        # The planner image (this repository's Dockerfile) lives in the stack's own
        # registry unless the settings name another; tags are immutable so a tag
        # always means one build.
        repository = aws.ecr.Repository(
            f"{name}-planner",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            force_delete=False,
            tags=args.tags,
            opts=child,
        )
        image: pulumi.Output[str] = (
            pulumi.Output.from_input(s.image)
            if s.image is not None
            else repository.repository_url.apply(lambda url: f"{url}:{s.image_tag}")
        )
        meta: Any = {"namespace": args.namespace}
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                **meta,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role.arn},
            },
            opts=k8s_opts,
        )
        # In-cluster, the job may only read and patch autoscalers in its namespace.
        k8s_role = k8s.rbac.v1.Role(
            f"{name}-autoscalers",
            metadata={**meta, "name": "scaleplan-autoscalers"},
            rules=cast(
                Any,
                [
                    {
                        "apiGroups": ["autoscaling"],
                        "resources": ["horizontalpodautoscalers"],
                        "verbs": ["get", "list", "patch"],
                    },
                    {
                        "apiGroups": ["keda.sh"],
                        "resources": ["scaledobjects"],
                        "verbs": ["get", "list", "patch"],
                    },
                ],
            ),
            opts=k8s_opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-autoscalers",
            metadata={**meta, "name": "scaleplan-autoscalers"},
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": k8s_role.metadata.name,
            },
            subjects=[
                {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": args.namespace}
            ],
            opts=k8s_opts,
        )
        self.role_arn = role.arn
        self.repository_url = repository.repository_url
        self.image = image
        self.register_outputs(
            {
                "role_arn": role.arn,
                "repository_url": repository.repository_url,
                "image": image,
            }
        )
