"""The retraining job: a CronJob running `planner retrain` under IRSA, and what it runs under.

Every night (the stack's `retraining.schedule`) the job pulls the last days of
metrics, retrains and scores every policy family and keeps or replaces the
champion in the store (the stack's bundle bucket); its command line is
`infra.retrain_command.retrain_args`, its stack file a ConfigMap rendered by
`infra.retrain_command.job_stack_file` (the stack's settings, no secrets).

The job's service account is bound through the cluster's OIDC provider (IAM
roles for service accounts) to a role of least privilege, checked against the
calls a run makes: it may read CloudWatch metrics and read and write the store's
prefix of the bundle bucket (deleting nothing there but the run's own lock), with
the bucket's KMS key; it changes no scaling (the job runs in shadow mode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import SYSTEM_LABELS
from infra.components.iam import irsa_trust
from infra.retrain_command import (
    JOB_PROJECT_DIR,
    JOB_RESOURCES,
    JOB_UID,
    STORE_PREFIX,
    retrain_args,
    stack_file_name,
)
from infra.settings import RetrainingSettings

SERVICE_ACCOUNT = "scaleplan-retrain"
#: The CronJob (`kubectl create job --from=cronjob/scaleplan-retrain ...` runs it now).
CRONJOB = "scaleplan-retrain"
#: The ConfigMap holding the stack file the job reads.
STACK_CONFIGMAP = "scaleplan-retrain-stack"


@dataclass(frozen=True)
class RetrainingArgs:
    """Inputs of `RetrainingJob`.

    Attributes:
        settings: Schedule, metric source, budgets, SLO, mode and image of the job.
        stack: This stack's name (the stack file the job reads is `Pulumi.<stack>.yaml`).
        region: The stack's AWS region.
        stack_file: The stack file the job reads (`infra.retrain_command.job_stack_file`).
        prometheus_url: The in-cluster Prometheus (used unless the settings name one).
        namespace: Namespace of the job (the inference namespace, so the job can
            patch the autoscaler there through Kubernetes RBAC).
        provider: The Kubernetes provider of the cluster.
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: Issuer URL of the cluster (`https://oidc.eks...`).
        bucket_name: The policy-bundle bucket.
        bucket_arn: Its ARN.
        kms_key_arn: The bucket's KMS key.
        asg_name: The stack's Auto Scaling group, if it has one (CloudWatch source).
        tags: Tags on the IAM role.
    """

    settings: RetrainingSettings
    stack: str
    region: str
    stack_file: str
    prometheus_url: str
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    asg_name: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


def least_privilege_policy(bucket_arn: str, kms_key_arn: str) -> dict[str, Any]:
    """The retraining role's permissions: exactly the calls the scheduled job makes.

    `planner retrain` in shadow mode (the only mode the settings allow) reads
    CloudWatch metrics (`--source cloudwatch`) and reads and writes its store under
    `STORE_PREFIX` of the bundle bucket: list, get, put (conditional puts are
    plain `s3:PutObject`) and the delete of its own lock. The bucket is encrypted
    with the stack's KMS key, so S3 asks KMS on the caller's behalf. Nothing else:
    no scaling call (an active job would need `planner apply`'s, which the settings
    refuse), no versions. `tests/infra/test_retraining_iam.py` records the calls a
    cycle makes and checks this document against them, both ways.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # GetMetricData takes no resource ARNs (Service Authorization Reference).
                "Sid": "ReadMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:GetMetricData"],
                "Resource": "*",
            },
            {
                "Sid": "ListStore",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{STORE_PREFIX}/*"]}},
            },
            {
                "Sid": "ReadWriteStore",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{bucket_arn}/{STORE_PREFIX}/*",
            },
            {
                # The retraining run's lock (`planner.retrain.lock`): released by
                # deleting it; nothing else in the store is ever deleted.
                "Sid": "ReleaseRetrainLock",
                "Effect": "Allow",
                "Action": ["s3:DeleteObject"],
                "Resource": f"{bucket_arn}/{STORE_PREFIX}/locks/*",
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
    """IRSA role, service account, namespace RBAC, image, stack file and the CronJob."""

    role_arn: pulumi.Output[str]
    cronjob_name: pulumi.Output[str]
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
                lambda v: json.dumps(least_privilege_policy(str(v[0]), str(v[1])))
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
        sa = k8s.core.v1.ServiceAccount(
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
        stack_file = k8s.core.v1.ConfigMap(
            f"{name}-stack",
            metadata={**meta, "name": STACK_CONFIGMAP},
            data={stack_file_name(args.stack): args.stack_file},
            opts=k8s_opts,
        )
        command = pulumi.Output.all(args.bucket_name, args.asg_name).apply(
            lambda v: retrain_args(
                s,
                stack=args.stack,
                bucket=str(v[0]),
                region=args.region,
                prometheus_url=args.prometheus_url,
                asg_name=None if v[1] is None else str(v[1]),
            )
        )
        job = k8s.batch.v1.CronJob(
            name,
            metadata={**meta, "name": CRONJOB},
            spec=cast(
                Any,
                {
                    "schedule": s.schedule,
                    "timeZone": "Etc/UTC",
                    # Disabled: no scheduled runs, but history and runs by hand stay.
                    "suspend": not s.enabled,
                    # Two retrains racing would promote from stale champions: never
                    # overlap (the command also holds a lock in the store).
                    "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": 3600,
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {
                        "spec": {
                            # One retry: a run is idempotent on the same data, and a
                            # crash leaves the store consistent.
                            "backoffLimit": 1,
                            "activeDeadlineSeconds": s.active_deadline_s,
                            "template": {
                                "metadata": {"labels": {"app.kubernetes.io/name": CRONJOB}},
                                "spec": _pod_spec(
                                    sa.metadata.name,
                                    image,
                                    command,
                                    args.region,
                                    stack_file_name(args.stack),
                                ),
                            },
                        }
                    },
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[stack_file]
            ),
        )
        self.role_arn = role.arn
        self.cronjob_name = job.metadata.name
        self.repository_url = repository.repository_url
        self.image = image
        self.register_outputs(
            {
                "role_arn": role.arn,
                "cronjob_name": job.metadata.name,
                "repository_url": repository.repository_url,
                "image": image,
            }
        )


def _pod_spec(
    service_account: pulumi.Input[str],
    image: pulumi.Input[str],
    args: pulumi.Input[list[str]],
    region: str,
    stack_file: str,
) -> dict[str, Any]:
    """The job's pod: the planner on a system node, unprivileged, the stack file mounted.

    The project directory is a scratch emptyDir (`--apply` writes its audit log
    under it) with the stack file mounted read-only inside it.
    """
    return {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        # The image's own unprivileged user (Dockerfile).
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": JOB_UID,
            "runAsGroup": JOB_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Tolerates no GPU taint: runs on the system nodes.
        "nodeSelector": SYSTEM_LABELS,
        "containers": [
            {
                "name": "retrain",
                "image": image,
                "command": ["planner"],
                "args": args,
                "env": [
                    {"name": "AWS_REGION", "value": region},
                    {"name": "AWS_DEFAULT_REGION", "value": region},
                ],
                "resources": JOB_RESOURCES,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "project", "mountPath": JOB_PROJECT_DIR},
                    {
                        "name": "stack-file",
                        "mountPath": f"{JOB_PROJECT_DIR}/{stack_file}",
                        "subPath": stack_file,
                        "readOnly": True,
                    },
                ],
            }
        ],
        "volumes": [
            {"name": "project", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "stack-file", "configMap": {"name": STACK_CONFIGMAP}},
        ],
    }
