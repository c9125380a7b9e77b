"""Rendered autoscalers validate against the real schemas, for the stack's cluster version.

The HPA against the Kubernetes OpenAPI schema of the version the stack declares
(`kubernetes-validate --strict`: unknown fields fail); the KEDA ScaledObject against
the `openAPIV3Schema` of KEDA 2.17's CRD (tests/data/crds), made strict the same way:
an API server prunes fields a structural schema does not list, which would be a
silently dropped setting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from planner.emit.compile import compile_bundle
from planner.emit.manifests import eks_manifests
from planner.emit.target import StackTarget
from policies.stack_config import TargetScaling

from .conftest import NOW, ROOT, bundle_of, stack

CRD = ROOT / "tests" / "data" / "crds" / "keda-2.17-scaledobjects.yaml"
HPA = {
    "kind": "hpa",
    "target": 0.6,
    "hysteresis": {"scale_down": {"stabilization_window_s": 600, "select_policy": "Min"}},
}
WINDOWS = [{"name": "am", "cron": "0 8 * * 1-5", "duration_s": 36000, "desired": 2}]
#: (spec, stack) -> the eks autoscaler it renders: an HPA, or a ScaledObject for a
#: zero floor, cron windows and a precomputed schedule.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "hpa": (HPA, "staging"),
    "hpa-scale-to-zero": (HPA, "dev"),
    "scheduled-with-inner-hpa": ({"kind": "scheduled", "entries": WINDOWS, "inner": HPA}, "prod"),
    "anomaly-schedule": ({"kind": "anomaly"}, "prod"),
}


def rendered(spec: dict[str, Any], target: StackTarget) -> dict[str, Any]:
    eks = compile_bundle(bundle_of(spec), target.only(("eks",)), now=NOW).scaling.eks
    assert isinstance(eks, TargetScaling)
    service = target.settings.service
    (manifest,) = eks_manifests(eks, namespace=service.namespace, deployment=service.name)
    return manifest


def strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever it lists properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def scaled_object_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return strict(version["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_eks_autoscaler_validates(case: str, scaled_object_schema: dict[str, Any]) -> None:
    spec, stack_name = CASES[case]
    target = stack(stack_name)
    manifest = rendered(spec, target)
    if manifest["kind"] == "HorizontalPodAutoscaler":
        version = f"{target.cluster_version}.0"
        kubernetes_validate.validate(manifest, version, strict=True)
        assert manifest["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    else:
        assert manifest["apiVersion"] == "keda.sh/v1alpha1"
        jsonschema.validate(manifest, scaled_object_schema)
        assert manifest["spec"]["triggers"]


def test_the_cli_validator_accepts_the_rendered_hpa(tmp_path: Path) -> None:
    target = stack("prod")
    path = tmp_path / "hpa.yaml"
    path.write_text(yaml.safe_dump(rendered(HPA, target)))
    validator = Path(sys.executable).with_name("kubernetes-validate")
    done = subprocess.run(
        [str(validator), "--strict", "-k", f"{target.cluster_version}.0", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed for resource horizontalpodautoscaler/llm against version 1.33" in done.stdout


def test_the_validators_catch_what_an_api_server_would_drop(
    scaled_object_schema: dict[str, Any],
) -> None:
    hpa = rendered(HPA, stack("staging"))
    hpa["spec"]["behavior"]["scaleDown"]["tolerence"] = "0.05"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, "1.33.0", strict=True)
    scaled = rendered(HPA, stack("dev"))
    scaled["spec"]["minReplicas"] = 0  # an HPA field name, not KEDA's minReplicaCount
    with pytest.raises(jsonschema.ValidationError, match="minReplicas"):
        jsonschema.validate(scaled, scaled_object_schema)
