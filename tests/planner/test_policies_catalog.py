"""`planner policies` lists every preset; a mistyped name suggests the closest; bundle roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.policies_catalog import DESCRIPTIONS, catalog
from policies.registry import PRESETS, did_you_mean, locate_bundle, resolve
from sim.errors import PolicyError

runner = CliRunner()


def test_every_preset_is_listed_with_a_description_and_its_own_values() -> None:
    entries = {entry.name: entry for entry in catalog()}
    assert list(entries) == list(PRESETS)
    for name, entry in entries.items():
        assert entry.description
        assert entry.parameters, name
        spec = PRESETS[name]().model_dump(mode="json")
        for dotted, value in entry.parameters.items():
            current = spec
            for part in dotted.split("."):
                current = current[part]
            assert current == value, (name, dotted)
    assert set(DESCRIPTIONS) <= set(PRESETS)  # no description of a preset that is gone


def test_planner_policies_prints_every_preset() -> None:
    result = runner.invoke(app, ["policies"])
    assert result.exit_code == 0, result.output
    for name in PRESETS:
        assert name in result.output
    assert "upper=0.7" in result.output  # the threshold preset's band, read from the preset


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("hpaa", "hpa"), ("treshold", "threshold"), ("predictve", "predictive"),
     ("aws-target-traking", "aws-target-tracking"), ("spilover", "spillover")],
)  # fmt: skip
def test_a_mistyped_name_suggests_the_closest_preset(typed: str, suggested: str) -> None:
    assert did_you_mean(typed) == f" (did you mean {suggested!r}?)"
    with pytest.raises(PolicyError, match=f"did you mean '{suggested}'"):
        resolve(typed)


def test_a_name_close_to_nothing_suggests_nothing() -> None:
    assert did_you_mean("warp-drive") == ""


def _bundle(root: Path, name: str, version: int) -> Path:
    folder = root / name / f"v{version}"
    folder.mkdir(parents=True)
    manifest = {
        "schema_version": 1, "name": name, "version": version,
        "created_at": "2026-01-01T00:00:00Z",
        "spec": {"kind": "threshold", "name": name, "upper": 0.5 + version / 10},
    }  # fmt: skip
    (folder / "bundle.json").write_text(json.dumps(manifest))
    return folder


def test_bundle_roots_resolve_to_the_latest_version(tmp_path: Path) -> None:
    _bundle(tmp_path, "threshold-tuned", 1)
    latest = _bundle(tmp_path, "threshold-tuned", 2)
    assert locate_bundle(tmp_path) == latest
    assert locate_bundle(tmp_path / "threshold-tuned") == latest
    assert locate_bundle(latest) == latest
    assert resolve(f"bundle:{tmp_path}").model_dump()["upper"] == pytest.approx(0.7)
    _bundle(tmp_path, "hpa-tuned", 1)
    with pytest.raises(PolicyError, match="holds several bundles"):
        resolve(f"bundle:{tmp_path}")
