"""`planner retrain --apply --yes` against a live stack on a moto server: a newly promoted
champion is compiled for the planned pool and applied in shadow mode (it was never applied
before), so nothing on the stack changes and the audit log records what it would do."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from planner.cli import app
from tests.planner.apply.conftest import (  # noqa: F401 (fixtures)
    GROUP,
    LiveStack,
    aws_env,
    client,
    live_stack,
    moto_server,
)


def test_a_promoted_champion_is_applied_in_shadow_mode(
    live_stack: LiveStack,  # noqa: F811
    tmp_path: Path,
) -> None:
    rows = ["timestamp,value"] + [
        f"{1_764_547_200 + 60 * i},{2.0 + (i // 60 % 4)}" for i in range(1440)
    ]
    (tmp_path / "day.csv").write_text("\n".join(rows) + "\n")
    before = client(live_stack.endpoint, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP]
    )["AutoScalingGroups"][0]
    result = CliRunner().invoke(
        app,
        [
            "retrain", "--source", "trace", "--trace", str(tmp_path / "day.csv"),
            "--trace-format", "rate-csv", "--days", "1", "--stack", "prod", "--target", "asg",
            "--project-dir", str(live_stack.project_dir), "--store", str(tmp_path / "store"),
            "--trials", "2", "--seeds", "1", "--families", "threshold,step", "--workers", "1",
            "--apply", "--yes", "--region", "us-east-1", "--endpoint-url", live_stack.endpoint,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "promote: no champion yet" in out
    assert "apply (shadow mode): shadow: nothing changed" in out
    after = client(live_stack.endpoint, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP]
    )["AutoScalingGroups"][0]
    assert (after["MinSize"], after["MaxSize"], after["DesiredCapacity"]) == (
        before["MinSize"], before["MaxSize"], before["DesiredCapacity"],
    )  # fmt: skip
    audit = live_stack.project_dir / ".scaleplan" / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    modes = {r["mode"] for r in records if "mode" in r}
    assert records and modes == {"shadow"}, records
