"""Every Kubernetes object the program declares, against the schema its cluster serves.

Built-in kinds go through `kubernetes-validate --strict` for the Kubernetes
version the stack declares (`cluster.version`): unknown fields, wrong types and
missing required fields fail. Custom resources go through the
`openAPIV3Schema` of their CRD, kept under `tests/data/crds/` with its licence
(KEDA 2.17's ScaledObject: it has no `tolerance` in its HPA behavior, issue 12
item 9). Helm releases are the charts' business, not objects of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra.stack_file import load_stack_file
from tests.infra.conftest import EVERY_BUILD, RecordingMocks

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "tests" / "data" / "crds"
STACKS = ("dev", "staging", "prod")

#: Custom resource type token -> CRD file (shared by file name with other helpers).
CRD_FILES = {"kubernetes:keda.sh/v1alpha1:ScaledObject": "keda-2.17-scaledobjects.yaml"}


@pytest.fixture(scope="module")
def built(every_build: dict[str, RecordingMocks]) -> dict[str, RecordingMocks]:
    """Every stack with the fixed policy and as committed (conftest.every_build)."""
    return every_build


#: Top-level fields of the objects the program declares; the mocks add `arn`/`name`.
OBJECT_FIELDS = frozenset(
    {"apiVersion", "kind", "metadata", "spec", "data", "stringData", "type", "rules"}
    | {"roleRef", "subjects", "value", "globalDefault", "description", "preemptionPolicy"}
)


#: Pulumi's marker of a secret value in serialized inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return _unwrap(value["value"])
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def manifest(props: dict[str, Any]) -> dict[str, Any]:
    """A resource's inputs as the object the provider applies (secrets revealed, no mock keys)."""
    return {k: _unwrap(v) for k, v in props.items() if k in OBJECT_FIELDS}


def crd_schema(path: Path, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return dict(v["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{path.name} has no version {version}")


@pytest.mark.parametrize("stack", EVERY_BUILD)
def test_built_in_objects_pass_strict_schema_validation(
    built: dict[str, RecordingMocks], stack: str
) -> None:
    file = stack.split("@")[0]
    version = load_stack_file(ROOT / f"Pulumi.{file}.yaml").cluster.version
    checked = 0
    for r in built[stack].resources:
        if not r.type.startswith("kubernetes:") or r.type == "kubernetes:helm.sh/v3:Release":
            continue
        if r.type in CRD_FILES or r.type.startswith("kubernetes:pulumi"):
            continue
        kubernetes_validate.validate(manifest(dict(r.props)), f"{version}.0", strict=True)
        checked += 1
    assert checked >= 8


def test_custom_resources_pass_their_crd_schema(built: dict[str, RecordingMocks]) -> None:
    checked = 0
    for stack in EVERY_BUILD:
        for r in built[stack].resources:
            if not r.type.startswith("kubernetes:") or "/" not in r.type:
                continue
            group = r.type.split(":")[1].split("/")[0]
            if "." not in group or group.endswith("k8s.io") or group == "helm.sh":
                continue
            assert r.type in CRD_FILES, f"{r.type}: keep its CRD under tests/data/crds"
            schema = crd_schema(CRDS / CRD_FILES[r.type], r.type.split("/")[1].split(":")[0])
            jsonschema.validate(manifest(dict(r.props)), _no_extra_properties(schema))
            checked += 1
    assert checked >= 1  # dev's ScaledObject


def test_the_keda_schema_refuses_a_tolerance() -> None:
    """What made a ScaledObject with an HPA tolerance fail (issue 12 item 9)."""
    schema = crd_schema(CRDS / CRD_FILES["kubernetes:keda.sh/v1alpha1:ScaledObject"], "v1alpha1")
    obj = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "llm"},
        "spec": {
            "scaleTargetRef": {"name": "llm"},
            "triggers": [{"type": "cron", "metadata": {}}],
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": 60, "tolerance": "0.1"}
                    }
                }
            },
        },
    }
    strict = _no_extra_properties(schema)
    with pytest.raises(jsonschema.ValidationError, match="tolerance"):
        jsonschema.validate(obj, strict)


def _no_extra_properties(schema: Any) -> Any:
    """The schema with `additionalProperties: false` where it lists properties.

    The API server prunes (drops) unknown fields of a structural CRD schema; a field
    that is silently dropped is as wrong as a rejected one, so the tests refuse it.
    """
    if isinstance(schema, dict):
        out = {k: _no_extra_properties(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_no_extra_properties(v) for v in schema]
    return schema
