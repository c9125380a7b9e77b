"""The inference service on Kubernetes: a GPU Deployment and its autoscaler.

The autoscaler is compiled from the emitted policy (`scaleplan:scaling.eks`): an
`autoscaling/v2` HorizontalPodAutoscaler whose `behavior` (stabilisation windows,
rate policies, tolerance) comes from `hpa_behavior`, or a KEDA ScaledObject when
the policy asks for scale to zero or cron triggers (`keda`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import GPU_LABELS
from infra.settings import ServiceSettings
from policies.stack_config import HpaBehavior, HpaRules, Keda, TargetScaling

#: Logical metric -> HPA metric. CPU is a Resource metric; the others are Pods
#: metrics that prometheus-adapter serves (`metrics.adapter_rules`): the NVIDIA DCGM
#: exporter's `DCGM_FI_DEV_GPU_UTIL` (percent), and the request rate and queue
#: length computed from the vLLM server's own `vllm:*` series.
HPA_METRICS: dict[str, str] = {
    "gpu_utilisation": "DCGM_FI_DEV_GPU_UTIL",
    "requests_per_replica": "scaleplan_requests_per_second",
    "queue_length_per_replica": "scaleplan_queue_length",
}


#: PriorityClass of the model server pods.
PRIORITY_CLASS = "scaleplan-inference"

#: Where the server keeps downloaded weights (a node-local emptyDir).
MODEL_CACHE = "/models"


@dataclass(frozen=True)
class GpuServiceArgs:
    """Inputs of `GpuService`.

    Attributes:
        settings: Image, model, GPUs per replica, port, namespace.
        scaling: The emitted policy for this target; None runs `settings.replicas`
            fixed replicas with no autoscaler.
        provider: The Kubernetes provider of the cluster.
        model_token: Secret token for the model registry (stored as a Secret).
        prometheus_url: Prometheus the KEDA prometheus trigger queries.
        depends_on: Add-ons that must exist first (device plugin, KEDA CRDs).
    """

    settings: ServiceSettings
    scaling: TargetScaling | None
    provider: k8s.Provider
    model_token: pulumi.Input[str]
    prometheus_url: str = "http://prometheus-server.monitoring.svc:80"
    depends_on: tuple[pulumi.Resource, ...] = ()


def hpa_rules(rules: HpaRules) -> dict[str, Any]:
    """One direction of `spec.behavior` in Kubernetes' field names."""
    out: dict[str, Any] = {
        "stabilizationWindowSeconds": rules.stabilization_window_s,
        "selectPolicy": rules.select_policy,
    }
    if rules.policies:
        out["policies"] = [
            {"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in rules.policies
        ]
    # `rules.tolerance` is not written: the field needs the alpha HPAConfigurableTolerance
    # feature gate, which EKS does not enable (the API server drops it), and KEDA 2.17's
    # ScaledObject schema has no such field. The cluster-wide 10 % applies.
    return out


def hpa_behavior(behavior: HpaBehavior) -> dict[str, Any]:
    """`spec.behavior` of an autoscaling/v2 HPA."""
    return {"scaleUp": hpa_rules(behavior.scale_up), "scaleDown": hpa_rules(behavior.scale_down)}


def hpa_metric(metric: str, target: float) -> dict[str, Any]:
    """An autoscaling/v2 MetricSpec for a logical metric name."""
    if metric == "cpu_utilisation":
        return {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": round(target)},
            },
        }
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": HPA_METRICS[metric]},
            "target": {"type": "AverageValue", "averageValue": f"{target:g}"},
        },
    }


def keda_spec(
    deployment: str, keda: Keda, scaling: TargetScaling, prometheus_url: str
) -> dict[str, Any]:
    """`spec` of a KEDA ScaledObject (keda.sh/v1alpha1)."""
    triggers: list[dict[str, Any]] = [
        {
            "type": "cron",
            "metadata": {
                "timezone": c.timezone,
                "start": c.start,
                "end": c.end,
                "desiredReplicas": str(c.desired),
            },
        }
        for c in keda.cron
    ]
    if keda.prometheus_query is not None:
        triggers.append(
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": keda.prometheus_query,
                    "threshold": f"{keda.prometheus_threshold:g}",
                },
            }
        )
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": deployment},
        "minReplicaCount": keda.min_replicas,
        "maxReplicaCount": scaling.bounds.max,
        "pollingInterval": keda.polling_interval_s,
        "cooldownPeriod": keda.cooldown_s,
        "triggers": triggers,
    }
    if scaling.hpa_behavior is not None:
        spec["advanced"] = {
            "horizontalPodAutoscalerConfig": {"behavior": hpa_behavior(scaling.hpa_behavior)}
        }
    return spec


class GpuService(pulumi.ComponentResource):
    """Namespace, model-token Secret, GPU Deployment, ClusterIP Service, autoscaler."""

    namespace: pulumi.Output[str]
    deployment_name: pulumi.Output[str]
    autoscaler_kind: str

    def __init__(self, name: str, args: GpuServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:GpuService", name, None, opts)
        s = args.settings
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/part-of": "scaleplan"}
        ns = k8s.core.v1.Namespace(name, metadata={"name": s.namespace}, opts=k8s_opts)
        # Model servers outrank batch work (the retraining job) when GPUs are short.
        k8s.scheduling.v1.PriorityClass(
            f"{name}-priority",
            metadata={"name": PRIORITY_CLASS},
            value=100000,
            global_default=False,
            description="scaleplan GPU inference: preempts batch pods, not system pods",
            opts=k8s_opts,
        )
        meta: Any = {"namespace": ns.metadata.name, "labels": labels}
        secret = k8s.core.v1.Secret(
            f"{name}-model-token",
            metadata=meta,
            string_data=cast(Any, {"token": args.model_token}),
            opts=k8s_opts,
        )
        scaled = args.scaling is not None
        deployment = k8s.apps.v1.Deployment(
            name,
            metadata={**meta, "name": s.name},
            spec=cast(
                Any,
                {
                    "replicas": s.replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {
                            "labels": labels,
                            # Prometheus scrapes the server's own /metrics (vllm:*).
                            "annotations": {
                                "prometheus.io/scrape": "true",
                                "prometheus.io/port": str(s.port),
                                "prometheus.io/path": "/metrics",
                            },
                        },
                        "spec": _pod_spec(s, secret, labels),
                    },
                },
            ),
            # The autoscaler owns the replica count once it exists.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=list(args.depends_on),
                ignore_changes=["spec.replicas"] if scaled else None,
            ),
        )
        k8s.core.v1.Service(
            name,
            metadata={**meta, "name": s.name},
            spec=cast(
                Any,
                {
                    "type": "ClusterIP",
                    "selector": labels,
                    "ports": [{"name": "http", "port": 80, "targetPort": s.port}],
                },
            ),
            opts=k8s_opts,
        )
        # Voluntary disruptions (node drains, scale-down) take one replica at a time.
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={**meta, "name": s.name},
            spec=cast(Any, {"maxUnavailable": 1, "selector": {"matchLabels": labels}}),
            opts=k8s_opts,
        )
        self.autoscaler_kind = "none"
        if args.scaling is not None:
            self.autoscaler_kind = self._autoscaler(name, args, args.scaling, meta, k8s_opts)
        self.namespace = ns.metadata.name
        self.deployment_name = deployment.metadata.name
        self.register_outputs(
            {"namespace": self.namespace, "deployment_name": self.deployment_name}
        )

    def _autoscaler(
        self,
        name: str,
        args: GpuServiceArgs,
        scaling: TargetScaling,
        meta: Any,
        opts: pulumi.ResourceOptions,
    ) -> str:
        s = args.settings
        if scaling.keda is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-scaler",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata={**meta, "name": s.name},
                spec=keda_spec(s.name, scaling.keda, scaling, args.prometheus_url),
                opts=opts,
            )
            return "ScaledObject"
        tracking = scaling.target_tracking
        assert tracking is not None  # StackScaling validation guarantees it without keda
        spec: Any = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name},
            "minReplicas": scaling.bounds.min,
            "maxReplicas": scaling.bounds.max,
            "metrics": [hpa_metric(tracking.metric, tracking.target)],
        }
        if scaling.hpa_behavior is not None:
            spec["behavior"] = hpa_behavior(scaling.hpa_behavior)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa", metadata={**meta, "name": s.name}, spec=spec, opts=opts
        )
        return "HorizontalPodAutoscaler"


def server_args(s: ServiceSettings) -> list[str]:
    """The vLLM OpenAI server's arguments: the model split over the replica's GPUs."""
    args = [
        "--model",
        s.model_id,
        "--port",
        str(s.port),
        "--tensor-parallel-size",
        str(s.gpus_per_replica),
        "--download-dir",
        MODEL_CACHE,
    ]
    if s.max_model_len is not None:
        args += ["--max-model-len", str(s.max_model_len)]
    return args


def _pod_spec(
    s: ServiceSettings, secret: k8s.core.v1.Secret, labels: dict[str, str]
) -> dict[str, Any]:
    gpu = str(s.gpus_per_replica)
    return {
        "priorityClassName": PRIORITY_CLASS,
        # Replicas spread over AZs where capacity allows (GPU capacity is scarce:
        # never leave a replica Pending for balance).
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": labels},
            }
        ],
        "volumes": [
            # Tensor-parallel workers exchange tensors through /dev/shm (NCCL); the
            # container runtime's 64 MiB default is far too small.
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{s.shm_gi}Gi"}},
            {"name": "model-cache", "emptyDir": {"sizeLimit": f"{s.model_cache_gi}Gi"}},
        ],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "ai-accelerator",
                                    "operator": "In",
                                    "values": [GPU_LABELS["ai-accelerator"]],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        # The vLLM image runs as root and writes its caches under /root; no
        # privilege escalation, no host access.
        "containers": [
            {
                "name": "server",
                "image": s.image,
                "args": server_args(s),
                "volumeMounts": [
                    {"name": "shm", "mountPath": "/dev/shm"},
                    {"name": "model-cache", "mountPath": MODEL_CACHE},
                ],
                "ports": [{"name": "http", "containerPort": s.port}],
                "env": [
                    {
                        "name": "HF_TOKEN",
                        "valueFrom": {
                            "secretKeyRef": {"name": secret.metadata.name, "key": "token"}
                        },
                    }
                ],
                "resources": {
                    "requests": {
                        "cpu": s.cpu,
                        "memory": s.memory,
                        "nvidia.com/gpu": gpu,
                        "ephemeral-storage": f"{s.model_cache_gi}Gi",
                    },
                    "limits": {"memory": s.memory, "nvidia.com/gpu": gpu},
                },
                # Model load takes minutes: only route traffic once the server says ready.
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": s.port},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "startupProbe": {
                    "httpGet": {"path": "/health", "port": s.port},
                    "periodSeconds": 10,
                    "failureThreshold": 60,
                },
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
    }
