"""An EC2 Auto Scaling group serving directly on GPU instances, with native scaling.

The emitted policy (`scaleplan:scaling.asg`) becomes EC2 Auto Scaling's own
constructs, so the fleet keeps scaling with scaleplan out of the loop:
target tracking, step scaling between two CloudWatch alarms (the gap between the
high and the low threshold is the hysteresis band), recurring scheduled actions,
predictive scaling, and a precomputed 48 h schedule as one-shot scheduled
actions. Desired capacity belongs to those policies (`ignore_changes`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pulumi
import pulumi_aws as aws

from infra.components.asg_serving import (
    LAUNCH_HOOK,
    LAUNCH_TIMEOUT_S,
    encoded,
    instance_policy,
    internal_load_balancer,
    user_data,
)
from infra.components.iam import service_role
from infra.components.schedules import (
    RECURRING_OPTIONS,
    SCHEDULE_LEAD,
    UNSET,
    future_changes,
    sentinel,
)
from infra.settings import AsgSettings
from policies.stack_config import StepScaling, TargetScaling

#: Logical metric -> (CloudWatch namespace, metric name) for alarms and custom
#: target tracking. GPU and request metrics are published per instance by the
#: CloudWatch agent / serving image under the `scaleplan` namespace with an
#: `AutoScalingGroupName` dimension.
CLOUDWATCH_METRICS: dict[str, tuple[str, str]] = {
    "cpu_utilisation": ("AWS/EC2", "CPUUtilization"),
    "gpu_utilisation": ("scaleplan", "GPUUtilization"),
    "requests_per_replica": ("scaleplan", "RequestsPerReplica"),
    "queue_length_per_replica": ("scaleplan", "QueueLengthPerReplica"),
}

#: Deep Learning Base OSS NVIDIA Driver GPU AMI (Amazon Linux 2023): the public
#: SSM parameter AWS keeps pointing at the latest release (DLAMI release notes).
GPU_AMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/"
    "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
)


@dataclass(frozen=True)
class GpuAsgArgs:
    """Inputs of `GpuAsg`.

    Attributes:
        settings: Instance types, sizes, spot share, warm pool, volume.
        scaling: The emitted policy for this target; None keeps settings' sizes
            with no scaling policy.
        vpc_id: VPC of the instances.
        vpc_cidr: Only this range may reach the serving port.
        subnet_ids: Private subnets, one per AZ.
        ami_id: GPU AMI (config override, or resolved from `GPU_AMI_PARAMETER`).
        service_port: Port of the model server.
        image: The model server image the instances run.
        model_id: The model they serve (it must fit one instance's GPUs).
        region: AWS region (the boot script's CLI calls).
        model_token: Secret token of the model registry (kept in SSM for the instances).
        max_model_len: Context length to reserve KV cache for; None: the model's.
        tags: Tags on every resource (propagated to instances).
        now: When the program runs; one-shot actions before it are left out.
    """

    settings: AsgSettings
    scaling: TargetScaling | None
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: pulumi.Input[Sequence[str]]
    ami_id: pulumi.Input[str]
    service_port: int = 8000
    image: str = "vllm/vllm-openai:v0.8.5"
    model_id: str = "Qwen/Qwen2.5-1.5B-Instruct"
    region: str = "us-east-1"
    model_token: pulumi.Input[str] = ""
    max_model_len: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def step_adjustments(step: StepScaling, out: bool) -> list[dict[str, Any]]:
    """AWS StepAdjustments (bounds as strings, relative to the alarm threshold)."""
    result = []
    for s in step.scale_out if out else step.scale_in:
        adj: dict[str, Any] = {"scaling_adjustment": s.adjustment}
        if s.lower is not None:
            adj["metric_interval_lower_bound"] = f"{s.lower:g}"
        if s.upper is not None:
            adj["metric_interval_upper_bound"] = f"{s.upper:g}"
        result.append(adj)
    return result


class GpuAsg(pulumi.ComponentResource):
    """Launch template, security group, the group, and its scaling policies."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GpuAsgArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:GpuAsg", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            f"{name}-instance",
            "ec2.amazonaws.com",
            ("AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"),
            args.tags,
            self,
        )
        token = aws.ssm.Parameter(
            f"{name}-model-token",
            name=f"/{name}/model-token",
            type="SecureString",
            value=args.model_token,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-boot",
            role=role.id,
            policy=token.arn.apply(lambda arn: json.dumps(instance_policy(arn, name))),
            opts=pulumi.ResourceOptions(parent=role),
        )
        target_group = internal_load_balancer(
            name,
            vpc_id=args.vpc_id,
            subnet_ids=args.subnet_ids,
            port=args.service_port,
            tags=args.tags,
            parent=self,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance", role=role.name, tags=args.tags, opts=child
        )
        sg = aws.ec2.SecurityGroup(
            f"{name}-serving",
            vpc_id=args.vpc_id,
            description="model server port from inside the VPC only",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": args.service_port,
                    "to_port": args.service_port,
                    "cidr_blocks": [args.vpc_cidr],
                }
            ],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            tags=args.tags,
            opts=child,
        )
        lt = aws.ec2.LaunchTemplate(
            name,
            image_id=args.ami_id,
            # Without a mixed instances policy (warm pool), the type is set here.
            instance_type=None if s.uses_mixed_instances else s.instance_types[0],
            iam_instance_profile={"arn": profile.arn},
            vpc_security_group_ids=[sg.id],
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": s.volume_gb,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                # The server runs in Docker with host networking off: one hop suffices
                # for the boot script, none is left for containers.
                "http_put_response_hop_limit": 1,
            },
            user_data=encoded(
                user_data(
                    image=args.image,
                    model_id=args.model_id,
                    port=args.service_port,
                    region=args.region,
                    token_parameter=f"/{name}/model-token",
                    max_model_len=args.max_model_len,
                )
            ),
            monitoring={"enabled": True},
            tag_specifications=[
                {"resource_type": "instance", "tags": args.tags},
                {"resource_type": "volume", "tags": args.tags},
            ],
            tags=args.tags,
            opts=child,
        )
        bounds = args.scaling.bounds if args.scaling is not None else None
        min_size = bounds.min if bounds is not None else s.min_size
        max_size = bounds.max if bounds is not None else s.max_size
        lt_spec = {"id": lt.id, "version": "$Latest"}
        group_kwargs: dict[str, Any] = {}
        if s.uses_mixed_instances:
            group_kwargs["mixed_instances_policy"] = {
                "instances_distribution": {
                    "on_demand_base_capacity": s.on_demand_base_capacity,
                    "on_demand_percentage_above_base_capacity": s.on_demand_pct_above_base,
                    "spot_allocation_strategy": s.spot_allocation_strategy,
                },
                "launch_template": {
                    "launch_template_specification": {
                        "launch_template_id": lt.id,
                        "version": "$Latest",
                    },
                    "overrides": [{"instance_type": t} for t in s.instance_types],
                },
            }
            # Replace spot instances proactively when AWS signals a rebalance risk.
            group_kwargs["capacity_rebalance"] = s.on_demand_pct_above_base < 100
        else:
            group_kwargs["launch_template"] = lt_spec
        if s.warm_pool is not None:
            group_kwargs["warm_pool"] = {
                "pool_state": s.warm_pool.state,
                "min_size": s.warm_pool.min_size,
                "max_group_prepared_capacity": s.warm_pool.max_prepared,
                "instance_reuse_policy": {"reuse_on_scale_in": True},
            }
        group = aws.autoscaling.Group(
            name,
            min_size=min_size,
            max_size=max_size,
            desired_capacity=min_size,
            vpc_zone_identifiers=args.subnet_ids,
            # The load balancer's /health check decides; model load takes minutes.
            health_check_type="ELB",
            health_check_grace_period=900,
            target_group_arns=[target_group.arn],
            # No instance counts before its server answers /health (the boot script
            # completes this hook); a warm-pool instance stops warmed after it.
            initial_lifecycle_hooks=[
                {
                    "name": LAUNCH_HOOK,
                    "lifecycle_transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                    "default_result": "ABANDON",
                    "heartbeat_timeout": LAUNCH_TIMEOUT_S,
                }
            ],
            default_instance_warmup=(
                args.scaling.target_tracking.warmup_s
                if args.scaling is not None and args.scaling.target_tracking is not None
                else 300
            ),
            enabled_metrics=[
                aws.autoscaling.Metric.GROUP_DESIRED_CAPACITY,
                aws.autoscaling.Metric.GROUP_IN_SERVICE_INSTANCES,
                aws.autoscaling.Metric.GROUP_PENDING_INSTANCES,
                aws.autoscaling.Metric.GROUP_TOTAL_INSTANCES,
                aws.autoscaling.Metric.WARM_POOL_WARMED_CAPACITY,
            ],
            tags=[
                {"key": k, "value": v, "propagate_at_launch": True} for k, v in args.tags.items()
            ],
            # The scaling policies own desired capacity after creation.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCapacity"]),
            **group_kwargs,
        )
        self.group_name = group.name
        self.group_arn = group.arn
        if args.scaling is not None:
            self._policies(name, group, args.scaling, args.tags, args.now)
        self.register_outputs({"group_name": group.name, "group_arn": group.arn})

    def _policies(
        self,
        name: str,
        group: aws.autoscaling.Group,
        t: TargetScaling,
        tags: dict[str, str],
        now: datetime,
    ) -> None:
        opts = pulumi.ResourceOptions(parent=group)
        if t.target_tracking is not None:
            tt = t.target_tracking
            config: dict[str, Any] = {
                "target_value": tt.target,
                "disable_scale_in": tt.disable_scale_in,
            }
            if tt.metric == "cpu_utilisation":
                config["predefined_metric_specification"] = {
                    "predefined_metric_type": "ASGAverageCPUUtilization"
                }
            else:
                namespace, metric = CLOUDWATCH_METRICS[tt.metric]
                config["customized_metric_specification"] = {
                    "namespace": namespace,
                    "metric_name": metric,
                    "statistic": "Average",
                    "metric_dimensions": [{"name": "AutoScalingGroupName", "value": group.name}],
                }
            aws.autoscaling.Policy(
                f"{name}-target-tracking",
                autoscaling_group_name=group.name,
                policy_type="TargetTrackingScaling",
                estimated_instance_warmup=tt.warmup_s,
                target_tracking_configuration=cast(Any, config),
                opts=opts,
            )
        if t.step is not None:
            self._step(name, group, t.step, tags, opts)
        for action in t.scheduled:
            aws.autoscaling.Schedule(
                f"{name}-{action.name}",
                autoscaling_group_name=group.name,
                scheduled_action_name=action.name,
                recurrence=action.cron,
                time_zone=action.timezone,
                min_size=sentinel(action.min),
                max_size=sentinel(action.max),
                desired_capacity=sentinel(action.desired),
                opts=pulumi.ResourceOptions.merge(opts, RECURRING_OPTIONS),
            )
        if t.predictive is not None:
            p = t.predictive
            aws.autoscaling.Policy(
                f"{name}-predictive",
                autoscaling_group_name=group.name,
                policy_type="PredictiveScaling",
                predictive_scaling_configuration={
                    "mode": p.mode,
                    "scheduling_buffer_time": str(p.scheduling_buffer_s),
                    "max_capacity_breach_behavior": p.max_capacity_breach_behavior,
                    "max_capacity_buffer": (
                        None
                        if p.max_capacity_buffer_pct is None
                        else str(p.max_capacity_buffer_pct)
                    ),
                    "metric_specification": {
                        "target_value": p.target,
                        "predefined_metric_pair_specification": {
                            "predefined_metric_type": p.metric
                        },
                    },
                },
                opts=opts,
            )
        if t.schedule is not None:
            changes = t.schedule.changes()
            upcoming = future_changes(changes, now)
            if len(upcoming) < len(changes):
                pulumi.log.warn(
                    f"{name}: {len(changes) - len(upcoming)} of {len(changes)} planned capacity "
                    f"changes start before {(now + SCHEDULE_LEAD).isoformat()} and are left out; "
                    "the retraining job refreshes the plan"
                )
            for when, desired in upcoming:
                stamp = when.strftime("%Y%m%dT%H%MZ")
                aws.autoscaling.Schedule(
                    f"{name}-plan-{stamp}",
                    autoscaling_group_name=group.name,
                    scheduled_action_name=f"scaleplan-{stamp}",
                    start_time=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    min_size=UNSET,
                    max_size=UNSET,
                    desired_capacity=desired,
                    opts=opts,
                )

    def _step(
        self,
        name: str,
        group: aws.autoscaling.Group,
        step: StepScaling,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions,
    ) -> None:
        namespace, metric = CLOUDWATCH_METRICS[step.metric]
        for direction, out in (("out", True), ("in", False)):
            policy = aws.autoscaling.Policy(
                f"{name}-step-{direction}",
                autoscaling_group_name=group.name,
                policy_type="StepScaling",
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Average",
                estimated_instance_warmup=step.warmup_s if out else None,
                step_adjustments=cast(Any, step_adjustments(step, out)),
                opts=opts,
            )
            aws.cloudwatch.MetricAlarm(
                f"{name}-{'high' if out else 'low'}",
                alarm_description=(
                    f"scale {direction}: {step.metric} "
                    f"{'>=' if out else '<='} {step.high if out else step.low:g}"
                ),
                namespace=namespace,
                metric_name=metric,
                dimensions={"AutoScalingGroupName": group.name},
                statistic="Average",
                period=step.period_s,
                evaluation_periods=(
                    step.evaluation_periods_high if out else step.evaluation_periods_low
                ),
                threshold=step.high if out else step.low,
                comparison_operator=(
                    "GreaterThanOrEqualToThreshold" if out else "LessThanOrEqualToThreshold"
                ),
                # No data means no load signal: do not scale on silence.
                treat_missing_data="notBreaching" if out else "missing",
                alarm_actions=[policy.arn],
                tags=tags,
                opts=opts,
            )
