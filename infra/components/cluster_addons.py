"""Cluster add-ons the GPU service needs: the NVIDIA device plugin and, when asked, KEDA.

The EKS NVIDIA AMI ships the driver and container toolkit but not the device
plugin, so without it no node advertises `nvidia.com/gpu` and no GPU pod
schedules (EKS user guide, "Amazon EKS optimized accelerated AMIs"). KEDA is
installed only when the emitted policy uses a ScaledObject (scale to zero, cron
triggers): its CRDs must exist before the ScaledObject does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.eks_cluster import SYSTEM_LABELS
from infra.settings import AddonSettings

#: Requests of each KEDA component (the chart's defaults, stated so the
#: schedulability test sees them): operator, metrics API server, admission webhooks.
KEDA_REQUESTS = {"cpu": "100m", "memory": "100Mi"}


@dataclass(frozen=True)
class ClusterAddonsArgs:
    """Inputs of `ClusterAddons`.

    Attributes:
        settings: Chart versions.
        provider: The Kubernetes provider of the cluster.
        install_keda: Install KEDA (the emitted policy has a `keda` block).
        depends_on: What must exist first (the system node group KEDA runs on).
    """

    settings: AddonSettings
    provider: k8s.Provider
    install_keda: bool
    depends_on: tuple[pulumi.Resource, ...] = ()


class ClusterAddons(pulumi.ComponentResource):
    """Helm releases of the NVIDIA device plugin and (optionally) KEDA."""

    keda: k8s.helm.v3.Release | None

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("scaleplan:infra:ClusterAddons", name, None, opts)
        s = args.settings
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart="nvidia-device-plugin",
            version=s.nvidia_device_plugin_version,
            namespace="kube-system",
            repository_opts={"repo": "https://nvidia.github.io/k8s-device-plugin"},
            values={
                # Run only on GPU nodes, through their taint.
                "nodeSelector": {"ai-accelerator": "gpu"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
            opts=k8s_opts,
        )
        self.keda = None
        if args.install_keda:
            self.keda = k8s.helm.v3.Release(
                f"{name}-keda",
                name="keda",
                chart="keda",
                version=s.keda_version,
                namespace="keda",
                create_namespace=True,
                repository_opts={"repo": "https://kedacore.github.io/charts"},
                # On the untainted system nodes: KEDA tolerates no GPU taint.
                values={
                    "nodeSelector": SYSTEM_LABELS,
                    "resources": {
                        part: {"requests": KEDA_REQUESTS, "limits": {"memory": "1000Mi"}}
                        for part in ("operator", "metricServer", "webhooks")
                    },
                },
                opts=k8s_opts,
            )
        self.register_outputs({})
