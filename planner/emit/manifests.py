"""The Kubernetes objects an `eks` block becomes: an HPA or a KEDA ScaledObject.

The specs come from the Pulumi program's own builders (`infra.components.gpu_service`),
so what `planner apply` writes for GitOps and what `pulumi up` creates are the same
objects; this module only adds the envelope (apiVersion, kind, metadata). The infra
module imports pulumi, so it is imported here only when a manifest is rendered.
"""

from __future__ import annotations

from typing import Any

from policies.stack_config import TargetScaling

HPA_API_VERSION = "autoscaling/v2"
KEDA_API_VERSION = "keda.sh/v1alpha1"
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"


def eks_manifests(
    eks: TargetScaling,
    *,
    namespace: str,
    deployment: str,
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
) -> list[dict[str, Any]]:
    """The autoscaler of the inference Deployment `deployment` in `namespace`."""
    from infra.components.gpu_service import hpa_behavior, hpa_metric, keda_spec

    labels = {"app.kubernetes.io/name": deployment, "app.kubernetes.io/part-of": "scaleplan"}
    metadata = {"name": deployment, "namespace": namespace, "labels": labels}
    if eks.keda is not None:
        spec = keda_spec(deployment, eks.keda, eks, prometheus_url)
        return [
            {
                "apiVersion": KEDA_API_VERSION,
                "kind": "ScaledObject",
                "metadata": metadata,
                "spec": spec,
            }
        ]
    tracking = eks.target_tracking
    if tracking is None:
        raise ValueError("eks: neither keda nor target_tracking; StackScaling forbids this")
    hpa: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": eks.bounds.min,
        "maxReplicas": eks.bounds.max,
        "metrics": [hpa_metric(tracking.metric, tracking.target)],
    }
    if eks.hpa_behavior is not None:
        hpa["behavior"] = hpa_behavior(eks.hpa_behavior)
    return [
        {
            "apiVersion": HPA_API_VERSION,
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata,
            "spec": hpa,
        }
    ]
