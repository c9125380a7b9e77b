"""`planner emit` end to end: diff, dry run, atomic write, and the exit-2 refusals."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from planner.cli import app
from policies.stack_config import CONFIG_KEY, StackScaling

from .conftest import NOW, written_bundle

runner = CliRunner()
HPA = {"kind": "hpa", "target": 0.65}
WINDOW = {"name": "peak", "cron": "0 9 * * 1-5", "duration_s": 3600, "desired": 6}


def emit(project: Path, bundle: Path, stack: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        [
            "emit",
            "--bundle",
            str(bundle),
            "--stack",
            stack,
            "--project-dir",
            str(project),
            "--now",
            NOW.isoformat(),
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def scaling_of(path: Path) -> StackScaling:
    return StackScaling.model_validate(yaml.safe_load(path.read_text())["config"][CONFIG_KEY])


def test_dry_run_prints_the_diff_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA, name="hpa-x")
    before = (project / "Pulumi.staging.yaml").read_text()
    code, out, err = emit(project, bundle, "staging", "--targets", "eks", "--dry-run")
    assert code == 0, err
    assert out.startswith("--- a/Pulumi.staging.yaml\n+++ b/Pulumi.staging.yaml\n")
    assert '+    source: {bundle_id: hpa-x, version: "1", policy_kind: hpa}' in out
    assert "eks: HPA metric target + behavior" in err and "dry run" in err
    assert (project / "Pulumi.staging.yaml").read_text() == before


def test_emit_writes_the_block_and_a_second_emit_changes_nothing(
    project: Path, tmp_path: Path
) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA, name="hpa-x")
    path = project / "Pulumi.staging.yaml"
    code, _, err = emit(project, bundle, "staging", "--targets", "eks")
    assert code == 0, err
    written = scaling_of(path)
    assert written.source.bundle_id == "hpa-x" and written.asg is None
    assert written.eks is not None and written.eks.target_tracking is not None
    assert written.eks.target_tracking.target == 65
    code, out, err = emit(project, bundle, "staging", "--targets", "eks")
    assert code == 0 and out == "" and "already holds this policy" in err
    assert not list(project.glob(".*.tmp"))  # the atomic write left nothing behind


def test_a_stack_without_a_config_file_exits_2(project: Path, tmp_path: Path) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA)
    code, out, err = emit(project, bundle, "qa")
    assert code == 2 and out == ""
    assert "stack 'qa' has no config file" in err and "dev, prod, staging" in err


def test_an_unknown_bundle_schema_version_exits_2_writing_nothing(
    project: Path, tmp_path: Path
) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA)
    manifest = bundle / "bundle.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "schema_version": 2}))
    before = (project / "Pulumi.prod.yaml").read_text()
    code, _, err = emit(project, bundle, "prod", "--targets", "eks")
    assert code == 2 and "bundle schema_version 2 is not supported" in err
    assert (project / "Pulumi.prod.yaml").read_text() == before


def test_an_unexpressible_policy_exits_2_with_the_alternative(
    project: Path, tmp_path: Path
) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA)
    before = (project / "Pulumi.staging.yaml").read_text()
    code, _, err = emit(project, bundle, "staging")
    assert code == 2
    assert "policy kind 'hpa' cannot be expressed on target 'asg'" in err
    assert "nearest expressible: aws-target-tracking" in err
    assert "--targets eks,serverless" in err
    assert (project / "Pulumi.staging.yaml").read_text() == before


def test_a_guardrail_breach_exits_2_writing_nothing(project: Path, tmp_path: Path) -> None:
    spec = {"kind": "scheduled", "entries": [WINDOW]}
    bundle = written_bundle(tmp_path / "bundles", spec)
    before = (project / "Pulumi.prod.yaml").read_text()
    code, _, err = emit(project, bundle, "prod", "--targets", "eks", "--max-step", "2")
    assert code == 2 and "breaks guardrails; nothing written" in err
    assert "change 2 -> 6 exceeds the max step of 2" in err
    assert (project / "Pulumi.prod.yaml").read_text() == before
    code, _, err = emit(project, bundle, "prod", "--targets", "eks", "--max-step", "4")
    assert code == 0, err


def test_bad_flags_exit_2(project: Path, tmp_path: Path) -> None:
    bundle = written_bundle(tmp_path / "bundles", HPA)
    code, _, err = emit(project, bundle, "prod", "--targets", "gpu")
    assert code == 2 and "subset of eks, asg, serverless" in err
    code, _, err = emit(project, bundle, "dev", "--targets", "serverless")
    assert code == 2 and "stack dev has no serverless target" in err
