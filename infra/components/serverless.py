"""SageMaker serverless inference: model, serverless endpoint config, endpoint, autoscaling.

SageMaker serverless endpoints have no GPUs (memory 1-6 GB, max concurrency
1-200, per the SageMaker developer guide "Serverless Inference"). The spillover
path that absorbs bursts while GPU nodes boot (the MArk pattern) is therefore a
small CPU model, not the GPU model: the stacks serve Qwen2.5-0.5B-Instruct
(1.84 GiB in float32) from the Hugging Face PyTorch CPU container, which
loads it from the Hub at each cold start. The simulator plans with the same
endpoint (`ServerlessSettings.sim_spillover`: this model's CPU service time and
cold start from `sim.capacity.cpu_models`, this memory size and max concurrency).
The emitted policy scales provisioned concurrency
through Application Auto Scaling: target tracking on
`SageMakerVariantProvisionedConcurrencyUtilization` and scheduled actions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pulumi
import pulumi_aws as aws

from infra.components.iam import service_trust
from infra.components.schedules import future_changes
from infra.settings import ServerlessSettings
from policies.stack_config import TargetScaling

VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"


def aws_cron(expr: str) -> str:
    """A 5-field Unix cron as Application Auto Scaling's `cron(m h dom mon dow year)`.

    AWS wants `?` in one of day-of-month/day-of-week and numbers weekdays 1-7
    from Sunday, where Unix cron uses 0-6 (and 7) from Sunday.

    Raises:
        ValueError: when both day fields are restricted (AWS cannot express that).
    """
    minute, hour, dom, month, dow = expr.split()
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        dow = re.sub(r"\d+", lambda m: str(int(m.group()) % 7 + 1), dow)
    else:
        raise ValueError(f"cron {expr!r}: AWS cannot restrict both day-of-month and day-of-week")
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


@dataclass(frozen=True)
class ServerlessArgs:
    """Inputs of `ServerlessEndpoint`.

    Attributes:
        settings: Image, model data, memory, max and provisioned concurrency.
        scaling: The emitted policy (provisioned concurrency); None: fixed.
        model_bucket_arn: Bucket holding `model_data_url` (read-only access).
        tags: Tags on every resource.
        now: When the program runs; one-shot actions before it are left out.
    """

    settings: ServerlessSettings
    scaling: TargetScaling | None
    model_bucket_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def image_repository_arn(image: str) -> str | None:
    """The ECR repository ARN of an image in ECR (`<acct>.dkr.ecr.<region>...`), else None."""
    match = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)", image)
    if match is None:
        return None
    account, region, repository = match.groups()
    return f"arn:aws:ecr:{region}:{account}:repository/{repository}"


def execution_policy(model_bucket_arn: str | None, image: str = "") -> str:
    """What the endpoint's containers may do: pull the image, log, read the model."""
    repository = image_repository_arn(image)
    statements: list[dict[str, object]] = [
        # Issuing a registry token takes no resource; pulling is limited to the image's repository.
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repository if repository is not None else "arn:aws:ecr:*:*:repository/*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:*:*:log-group:/aws/sagemaker/*",
        },
    ]
    if model_bucket_arn is not None:
        statements.append(
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{model_bucket_arn}/*"}
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class ServerlessEndpoint(pulumi.ComponentResource):
    """A serverless SageMaker endpoint whose provisioned concurrency the policy scales."""

    endpoint_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServerlessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:ServerlessEndpoint", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-exec",
            assume_role_policy=service_trust("sagemaker.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-exec",
            role=role.id,
            policy=execution_policy(args.model_bucket_arn, s.image),
            opts=pulumi.ResourceOptions(parent=role),
        )
        container: dict[str, Any] = {"image": s.image}
        if s.model_data_url is not None:
            container["model_data_url"] = s.model_data_url
        if s.model_id is not None:
            # The Hugging Face inference toolkit loads this Hub model at cold start.
            container["environment"] = {"HF_MODEL_ID": s.model_id, "HF_TASK": s.task}
        model = aws.sagemaker.Model(
            name,
            execution_role_arn=role.arn,
            primary_container=cast(Any, container),
            tags=args.tags,
            opts=child,
        )
        serverless: dict[str, int] = {
            "memory_size_in_mb": s.memory_mb,
            "max_concurrency": s.max_concurrency,
        }
        if s.provisioned_concurrency > 0:
            serverless["provisioned_concurrency"] = s.provisioned_concurrency
        config = aws.sagemaker.EndpointConfiguration(
            name,
            production_variants=[
                cast(
                    Any,
                    {
                        "variant_name": VARIANT,
                        "model_name": model.name,
                        "serverless_config": cast(Any, serverless),
                    },
                )
            ],
            tags=args.tags,
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            name, endpoint_config_name=config.name, tags=args.tags, opts=child
        )
        self.endpoint_name = endpoint.name
        if args.scaling is not None:
            self._autoscaling(name, endpoint, args.scaling, args.tags, args.now)
        self.register_outputs({"endpoint_name": endpoint.name})

    def _autoscaling(
        self,
        name: str,
        endpoint: aws.sagemaker.Endpoint,
        t: TargetScaling,
        tags: dict[str, str],
        now: datetime,
    ) -> None:
        resource_id = endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{VARIANT}")
        target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="sagemaker",
            resource_id=resource_id,
            scalable_dimension=DIMENSION,
            min_capacity=t.bounds.min,
            max_capacity=t.bounds.max,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=endpoint),
        )
        opts = pulumi.ResourceOptions(parent=target)
        common: Any = {
            "service_namespace": "sagemaker",
            "resource_id": target.resource_id,
            "scalable_dimension": DIMENSION,
        }
        if t.target_tracking is not None:
            tt = t.target_tracking
            aws.appautoscaling.Policy(
                f"{name}-target-tracking",
                policy_type="TargetTrackingScaling",
                target_tracking_scaling_policy_configuration={
                    "target_value": tt.target,
                    "disable_scale_in": tt.disable_scale_in,
                    "scale_out_cooldown": 60,
                    "scale_in_cooldown": tt.warmup_s,
                    "predefined_metric_specification": {
                        "predefined_metric_type": (
                            "SageMakerVariantProvisionedConcurrencyUtilization"
                        )
                    },
                },
                opts=opts,
                **common,
            )
        for action in t.scheduled:
            aws.appautoscaling.ScheduledAction(
                f"{name}-{action.name}",
                name=action.name,
                schedule=aws_cron(action.cron),
                timezone=action.timezone,
                scalable_target_action={
                    "min_capacity": action.min if action.min is not None else action.desired,
                    "max_capacity": action.max,
                },
                opts=opts,
                **common,
            )
        if t.schedule is not None:
            for when, desired in future_changes(t.schedule.changes(), now):
                stamp = when.strftime("%Y%m%dT%H%MZ")
                aws.appautoscaling.ScheduledAction(
                    f"{name}-plan-{stamp}",
                    name=f"scaleplan-{stamp}",
                    schedule=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
                    timezone="UTC",
                    scalable_target_action={
                        "min_capacity": desired,
                        "max_capacity": t.bounds.max,
                    },
                    opts=opts,
                    **common,
                )
