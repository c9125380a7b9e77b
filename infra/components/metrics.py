"""The metrics pipeline behind the HPA's Pods metrics and KEDA's Prometheus trigger.

The emitted policy scales the model server on a per-replica metric
(`gpu_utilisation`, `requests_per_replica`, `queue_length_per_replica`). None of
those exists on a bare cluster: the vLLM server exports `vllm:*` series on its
`/metrics`, the NVIDIA DCGM exporter exports `DCGM_FI_DEV_GPU_UTIL` per GPU with
the pod that holds it, Prometheus scrapes both, and prometheus-adapter serves
them to the HPA through `custom.metrics.k8s.io` under the names the HPA asks for
(`gpu_service.HPA_METRICS`). All three are installed here by Helm, so `pulumi up`
needs no hand-installed monitoring.

Prometheus keeps its data on an emptyDir (the cluster has no EBS CSI driver, so
a PersistentVolumeClaim would stay Pending) for as long as the retraining job
looks back (`infra.retrain_command.prometheus_retention_days`). The autoscalers
read only the last minutes; the job reads days, and after a restart of the
server it finds less history than it asked for, keeps the champion and says what
was missing until the window has filled again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import GPU_LABELS, GPU_TAINT, SYSTEM_LABELS

NAMESPACE = "monitoring"
#: The Prometheus chart's server Service (`<release>-server`, port 80).
PROMETHEUS_URL = f"http://prometheus-server.{NAMESPACE}.svc:80"
#: Most of a system node's disk (50 GiB by default) Prometheus's emptyDir may take.
PROMETHEUS_DISK = "20Gi"

#: The vLLM OpenAI server's Prometheus series each HPA metric is computed from
#: (vLLM docs, "Production metrics").
VLLM_QUEUE = "vllm:num_requests_waiting"
VLLM_REQUESTS = "vllm:request_success_total"
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


def adapter_rules(names: dict[str, str]) -> list[dict[str, Any]]:
    """prometheus-adapter custom rules: each HPA metric name from the series it comes from.

    Args:
        names: Logical metric -> the HPA's metric name (`gpu_service.HPA_METRICS`).
    """
    per_pod = {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}

    def rule(series: str, name: str, query: str) -> dict[str, Any]:
        return {
            "seriesQuery": f'{series}{{namespace!="",pod!=""}}',
            "resources": per_pod,
            "name": {"matches": f"^{series}$", "as": name},
            "metricsQuery": query,
        }

    return [
        rule(
            VLLM_QUEUE,
            names["queue_length_per_replica"],
            "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        ),
        rule(
            VLLM_REQUESTS,
            names["requests_per_replica"],
            "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)",
        ),
        rule(
            DCGM_GPU_UTIL,
            names["gpu_utilisation"],
            "avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        ),
    ]


@dataclass(frozen=True)
class MetricsArgs:
    """Inputs of `MetricsPipeline`.

    Attributes:
        prometheus_version: prometheus-community `prometheus` chart version.
        adapter_version: prometheus-community `prometheus-adapter` chart version.
        dcgm_exporter_version: NVIDIA `dcgm-exporter` chart version.
        metric_names: Logical metric -> HPA metric name.
        provider: The Kubernetes provider of the cluster.
        retention_days: Days Prometheus keeps (the retraining job's window and a day).
        depends_on: What must exist first (the system node group).
    """

    prometheus_version: str
    adapter_version: str
    dcgm_exporter_version: str
    metric_names: dict[str, str]
    provider: k8s.Provider
    retention_days: int = 2
    depends_on: tuple[pulumi.Resource, ...] = ()


class MetricsPipeline(pulumi.ComponentResource):
    """Prometheus, the DCGM exporter and prometheus-adapter, by Helm."""

    prometheus_url: str

    def __init__(self, name: str, args: MetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:MetricsPipeline", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        repo: Any = {"repo": "https://prometheus-community.github.io/helm-charts"}
        prometheus = k8s.helm.v3.Release(
            f"{name}-prometheus",
            name="prometheus",
            chart="prometheus",
            version=args.prometheus_version,
            namespace=NAMESPACE,
            create_namespace=True,
            repository_opts=repo,
            values={
                "server": {
                    "nodeSelector": SYSTEM_LABELS,
                    "persistentVolume": {"enabled": False},
                    "retention": f"{args.retention_days}d",
                    # The node's disk, bounded: a few thousand series a minute for a
                    # month take a few GiB.
                    "emptyDir": {"sizeLimit": PROMETHEUS_DISK},
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "2Gi"},
                        "limits": {"memory": "4Gi"},
                    },
                },
                # Only what the autoscalers read: pods and annotated services.
                "alertmanager": {"enabled": False},
                "prometheus-pushgateway": {"enabled": False},
                "prometheus-node-exporter": {"enabled": False},
                "kube-state-metrics": {"enabled": False},
            },
            opts=k8s_opts,
        )
        k8s.helm.v3.Release(
            f"{name}-dcgm-exporter",
            name="dcgm-exporter",
            chart="dcgm-exporter",
            version=args.dcgm_exporter_version,
            namespace=NAMESPACE,
            create_namespace=True,
            repository_opts={"repo": "https://nvidia.github.io/dcgm-exporter/helm-charts"},
            values={
                # A DaemonSet on the GPU nodes only.
                "nodeSelector": {"ai-accelerator": GPU_LABELS["ai-accelerator"]},
                "tolerations": [
                    {"key": GPU_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "serviceMonitor": {"enabled": False},
                "service": {
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9400"}
                },
            },
            opts=k8s_opts,
        )
        k8s.helm.v3.Release(
            f"{name}-adapter",
            name="prometheus-adapter",
            chart="prometheus-adapter",
            version=args.adapter_version,
            namespace=NAMESPACE,
            create_namespace=True,
            repository_opts=repo,
            values={
                "prometheus": {"url": f"http://prometheus-server.{NAMESPACE}.svc", "port": 80},
                "nodeSelector": SYSTEM_LABELS,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "rules": {"default": False, "custom": adapter_rules(args.metric_names)},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.depends_on, prometheus],
            ),
        )
        self.prometheus_url = PROMETHEUS_URL
        self.register_outputs({})
