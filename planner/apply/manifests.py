"""Kubernetes autoscalers for the `eks` target, written for GitOps (or `kubectl apply`).

The objects are `planner emit`'s (`planner.emit.manifests.eks_manifests`, built
from the Pulumi program's own spec builders), so what apply writes, what emit
renders and what `pulumi up` creates are the same: an `autoscaling/v2`
HorizontalPodAutoscaler, or a KEDA `ScaledObject` when the policy has a `keda`
block. They are written as YAML files, one per object, atomically; applying them
through the Kubernetes API is left to the GitOps controller (Argo CD, Flux) or
`kubectl apply -f`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.settings import ServiceSettings
from policies.stack_config import TargetScaling


def render(service: ServiceSettings, scaling: TargetScaling) -> list[dict[str, Any]]:
    """The autoscaler objects for the service's Deployment."""
    from planner.emit.manifests import eks_manifests

    return eks_manifests(scaling, namespace=service.namespace, deployment=service.name)


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
