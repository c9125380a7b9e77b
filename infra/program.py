"""The whole serving stack, built from validated settings.

`build_stack` is the program: `infra/__main__.py` reads the stack config and
calls it; the unit tests call it under Pulumi mocks with each stack's YAML. It
refuses to build a stack that breaks a guardrail, before creating anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import guardrails
from infra.components.asg import GPU_AMI_PARAMETER, GpuAsg, GpuAsgArgs
from infra.components.bundle_bucket import BundleBucket, BundleBucketArgs
from infra.components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from infra.components.eks_cluster import EksCluster, EksClusterArgs
from infra.components.gpu_service import HPA_METRICS, GpuService, GpuServiceArgs
from infra.components.metrics import MetricsArgs, MetricsPipeline
from infra.components.network import Network, NetworkArgs
from infra.components.node_autoscaler import NodeAutoscaler, NodeAutoscalerArgs
from infra.components.retraining import RetrainingArgs, RetrainingJob
from infra.components.serverless import ServerlessArgs, ServerlessEndpoint
from infra.retrain_command import job_stack_file, prometheus_retention_days
from infra.settings import StackSettings


def build_stack(
    settings: StackSettings, model_token: pulumi.Input[str], now: datetime | None = None
) -> dict[str, Any]:
    """Create every resource of one stack and return its outputs (to export).

    Args:
        settings: The validated stack settings, `scaling` included.
        model_token: Secret token of the model registry (a Pulumi secret).
        now: When the program runs (default: the clock); scheduled actions that
            would start before it are left out, since AWS rejects them.

    Raises:
        StackConfigError: a guardrail fails; nothing has been created.
    """
    guardrails.enforce_stack(settings)
    now = now if now is not None else datetime.now(UTC)
    tags = settings.tags
    scaling = settings.scaling
    net_settings = settings.network
    network = Network(
        settings.resource_name("net"),
        NetworkArgs(
            cidr=net_settings.cidr,
            azs=net_settings.azs,
            nat_per_az=net_settings.nat_per_az,
            tags=tags,
            vpc_id=net_settings.vpc_id,
            private_subnet_ids=net_settings.private_subnet_ids,
        ),
    )
    bucket = BundleBucket(
        settings.resource_name("bundles"),
        BundleBucketArgs(
            tags=tags,
            force_destroy=settings.bucket.force_destroy,
            noncurrent_days=settings.bucket.noncurrent_days,
        ),
    )
    cluster = EksCluster(
        settings.resource_name("eks"),
        EksClusterArgs(
            version=settings.cluster.version,
            subnet_ids=network.private_subnet_ids,
            node_pools=settings.gpu_node_pools,
            system_nodes=settings.system_nodes,
            public_access_cidrs=settings.cluster.public_access_cidrs,
            log_types=settings.cluster.log_types,
            tags=tags,
        ),
    )
    provider = k8s.Provider(
        settings.resource_name("k8s"),
        kubeconfig=cluster.kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    eks_scaling = scaling.eks if scaling is not None else None
    addons = ClusterAddons(
        settings.resource_name("addons"),
        ClusterAddonsArgs(
            settings=settings.addons,
            provider=provider,
            install_keda=eks_scaling is not None and eks_scaling.keda is not None,
            depends_on=(cluster.system_node_group,),
        ),
    )
    NodeAutoscaler(
        settings.resource_name("node-autoscaler"),
        NodeAutoscalerArgs(
            cluster_name=cluster.cluster_name,
            cluster_version=settings.cluster.version,
            region=settings.region,
            chart_version=settings.addons.cluster_autoscaler_chart_version,
            provider=provider,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            depends_on=(cluster.system_node_group,),
            tags=tags,
        ),
    )
    metrics = MetricsPipeline(
        settings.resource_name("metrics"),
        MetricsArgs(
            prometheus_version=settings.addons.prometheus_chart_version,
            adapter_version=settings.addons.prometheus_adapter_chart_version,
            dcgm_exporter_version=settings.addons.dcgm_exporter_chart_version,
            metric_names=HPA_METRICS,
            provider=provider,
            retention_days=prometheus_retention_days(settings),
            depends_on=(cluster.system_node_group,),
        ),
    )
    service = GpuService(
        settings.resource_name("service"),
        GpuServiceArgs(
            settings=settings.service,
            scaling=eks_scaling,
            provider=provider,
            model_token=model_token,
            prometheus_url=metrics.prometheus_url,
            depends_on=(addons, metrics),
        ),
    )
    outputs: dict[str, Any] = {
        "vpc_id": network.vpc_id,
        "cluster_name": cluster.cluster_name,
        "kubeconfig": pulumi.Output.secret(cluster.kubeconfig),
        "bundle_bucket": bucket.bucket_name,
        "service_namespace": service.namespace,
        "service_autoscaler": service.autoscaler_kind,
        "scaling_source": scaling.source.model_dump() if scaling is not None else None,
    }
    asg_name: pulumi.Output[str] | None = None
    if settings.asg is not None:
        ami_id: pulumi.Input[str] = (
            settings.asg.ami_id
            if settings.asg.ami_id is not None
            else aws.ssm.get_parameter_output(name=GPU_AMI_PARAMETER).value
        )
        asg = GpuAsg(
            settings.resource_name("asg"),
            GpuAsgArgs(
                settings=settings.asg,
                scaling=scaling.asg if scaling is not None else None,
                vpc_id=network.vpc_id,
                vpc_cidr=net_settings.cidr,
                subnet_ids=network.private_subnet_ids,
                ami_id=ami_id,
                service_port=settings.service.port,
                image=settings.asg.image or settings.service.image,
                model_id=settings.asg.model_id or settings.service.model_id,
                region=settings.region,
                model_token=model_token,
                max_model_len=settings.asg.max_model_len,
                tags=tags,
                now=now,
            ),
        )
        outputs["asg_name"] = asg.group_name
        asg_name = asg.group_name
    if settings.serverless is not None:
        endpoint = ServerlessEndpoint(
            settings.resource_name("serverless"),
            ServerlessArgs(
                settings=settings.serverless,
                scaling=scaling.serverless if scaling is not None else None,
                model_bucket_arn=_bucket_arn(settings.serverless.model_data_url),
                tags=tags,
                now=now,
            ),
        )
        outputs["serverless_endpoint"] = endpoint.endpoint_name
    retraining = RetrainingJob(
        settings.resource_name("retrain"),
        RetrainingArgs(
            settings=settings.retraining,
            stack=settings.stack,
            region=settings.region,
            stack_file=job_stack_file(settings),
            prometheus_url=metrics.prometheus_url,
            namespace=service.namespace,
            provider=provider,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            bucket_name=bucket.bucket_name,
            bucket_arn=bucket.bucket_arn,
            kms_key_arn=bucket.kms_key_arn,
            asg_name=asg_name,
            tags=tags,
        ),
    )
    outputs.update(
        retraining_role_arn=retraining.role_arn,
        retraining_cronjob=retraining.cronjob_name,
        planner_repository_url=retraining.repository_url,
        planner_image=retraining.image,
    )
    return outputs


def _bucket_arn(url: str | None) -> str | None:
    if url is None:
        return None
    return f"arn:aws:s3:::{url.removeprefix('s3://').split('/', 1)[0]}"
