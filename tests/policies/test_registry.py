"""Registry: presets, round trips through JSON and YAML, and clear errors."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

import pytest
import yaml

from policies import kinds as registry
from policies.registry import list_presets, resolve, spec_from_dict
from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.errors import PolicyError

OWN_KINDS = ("hpa", "aws-target-tracking", "threshold", "step", "scheduled", "fixed")


def _module_available(kind: str) -> bool:
    module = registry.SPEC_CLASSES[kind].partition(":")[0]
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def test_presets_cover_every_documented_name() -> None:
    assert list_presets() == [
        "hpa",
        "aws-target-tracking",
        "threshold",
        "step",
        "scheduled",
        "predictive",
        "anomaly",
        "spillover",
        "fixed",
    ]


@pytest.mark.parametrize("name", list_presets())
def test_preset_round_trips_json_and_yaml(name: str) -> None:
    if not _module_available(name):
        # Another engineer's module is not in this checkout yet: a clear error, no crash.
        with pytest.raises(PolicyError, match="cannot be imported"):
            resolve(name)
        return
    spec = resolve(name)
    assert isinstance(spec, PolicySpecBase)
    assert spec.kind == name
    from_json = spec_from_dict(json.loads(spec.model_dump_json()))
    from_yaml = spec_from_dict(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert from_json == spec
    assert from_yaml == spec
    assert type(from_yaml) is type(spec)


@pytest.mark.parametrize("name", OWN_KINDS)
def test_own_presets_build_fresh_working_policies(
    name: str, make_obs: Callable[..., Observation], context: PolicyContext
) -> None:
    spec = resolve(name)
    first, second = spec.build(), spec.build()
    assert first is not second
    assert isinstance(first, Policy)
    first.reset(context)
    decision = first.decide(make_obs(utilisation=0.95, ready=4, desired=4, max_replicas=10))
    assert isinstance(decision, Decision)
    assert 1 <= decision.desired <= 10
    assert decision.reason


def test_preset_hpa_is_kubernetes_defaults_at_70_percent() -> None:
    spec = resolve("hpa")
    assert spec.model_dump()["target"] == 0.7
    assert spec.hysteresis is None  # HpaPolicy falls back to the Kubernetes default behavior


def test_fixed_forms(make_obs: Callable[..., Observation]) -> None:
    assert resolve("fixed:8").build().decide(make_obs(max_replicas=20)).desired == 8
    assert resolve("fixed").build().decide(make_obs(max_replicas=20)).desired == 20
    assert resolve("fixed:8").display_name() == "fixed:8"
    with pytest.raises(PolicyError, match="whole number"):
        resolve("fixed:many")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(PolicyError) as info:
        resolve("kpa")
    message = str(info.value)
    assert "unknown policy 'kpa'" in message
    for name in list_presets():
        assert name in message
    assert "bundle:PATH" in message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([1, 2], "expected a mapping", id="not-a-mapping"),
        pytest.param({"target": 0.5}, "missing 'kind'", id="no-kind"),
        pytest.param({"kind": "kpa"}, "unknown policy kind 'kpa'; known kinds", id="unknown-kind"),
        pytest.param(
            {"kind": "hpa", "schema_version": 2}, "reads schema_version 1", id="newer-schema"
        ),
        pytest.param({"kind": "hpa", "targett": 0.5}, "targett: Extra inputs", id="typo-field"),
        pytest.param(
            {"kind": "threshold", "lower": 0.9}, "lower 0.9 must be below upper 0.7", id="band"
        ),
    ],
)
def test_spec_from_dict_errors(data: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        spec_from_dict(data, source="test.yaml")


def test_missing_module_is_a_policy_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SPEC_CLASSES, "ghost", "policies.ghost_module:GhostSpec")
    with pytest.raises(PolicyError, match=r"policies\.ghost_module which cannot be imported"):
        spec_from_dict({"kind": "ghost"})
    assert resolve("hpa").kind == "hpa"


def test_wrong_class_is_a_policy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SPEC_CLASSES, "odd", "sim.replay:FixedPolicy")
    with pytest.raises(PolicyError, match="not a PolicySpecBase subclass"):
        spec_from_dict({"kind": "odd"})


def test_every_spec_accepts_a_hysteresis_block() -> None:
    for kind in OWN_KINDS:
        spec = resolve(kind)
        data = {**spec.model_dump(mode="json"), "hysteresis": {"scale_down": {"tolerance": 0.2}}}
        rebuilt = spec_from_dict(data)
        assert rebuilt.hysteresis is not None
        assert rebuilt.hysteresis.scale_down.tolerance == 0.2
