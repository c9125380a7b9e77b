"""Kubernetes autoscalers for the `eks` target, rendered for GitOps (or `kubectl apply`).

The same objects the Pulumi program creates (`infra.components.gpu_service`):
an `autoscaling/v2` HorizontalPodAutoscaler, or a KEDA `ScaledObject` when the
policy has a `keda` block. They are written as YAML files, one per object,
atomically; applying them through the Kubernetes API is left to the GitOps
controller (Argo CD, Flux) or `kubectl apply -f`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.settings import ServiceSettings
from policies.stack_config import TargetScaling

PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"


def render(service: ServiceSettings, scaling: TargetScaling, stack: str) -> dict[str, Any]:
    """The autoscaler object for the service's Deployment."""
    from infra.components.gpu_service import hpa_behavior, hpa_metric, keda_spec

    meta = {
        "name": service.name,
        "namespace": service.namespace,
        "labels": {"app.kubernetes.io/managed-by": "scaleplan", "scaleplan/stack": stack},
    }
    if scaling.keda is not None:
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta,
            "spec": keda_spec(service.name, scaling.keda, scaling, PROMETHEUS_URL),
        }
    tracking = scaling.target_tracking
    assert tracking is not None  # StackScaling validation: eks without keda tracks a metric
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
        "minReplicas": scaling.bounds.min,
        "maxReplicas": scaling.bounds.max,
        "metrics": [hpa_metric(tracking.metric, tracking.target)],
    }
    if scaling.hpa_behavior is not None:
        spec["behavior"] = hpa_behavior(scaling.hpa_behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": spec,
    }


def manifest_path(directory: Path, manifest: dict[str, Any]) -> Path:
    meta = manifest["metadata"]
    return directory / f"{meta['namespace']}-{manifest['kind'].lower()}-{meta['name']}.yaml"


def write(directory: Path, manifest: dict[str, Any]) -> tuple[Path, bool]:
    """Write `manifest` atomically; (path, changed). An identical file is left alone."""
    import yaml

    from planner.atomic import write_bytes_atomic

    directory.mkdir(parents=True, exist_ok=True)
    path = manifest_path(directory, manifest)
    text = yaml.safe_dump(manifest, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return path, False
    write_bytes_atomic(path, text.encode("utf-8"))
    return path, True
