"""Writing `scaleplan:scaling` into a stack file: everything else stays byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.emit.stack_file import render, unified_diff
from policies.stack_config import CONFIG_KEY, StackScaling
from sim.errors import StackConfigError

from .conftest import ROOT

SCALING = StackScaling.model_validate(
    {
        "source": {"bundle_id": "b", "version": "1", "policy_kind": "anomaly"},
        "asg": {
            "bounds": {"min": 2, "max": 24},
            "schedule": {"start": "2026-12-02T15:00:00Z", "desired": [2, 3, 5, 5, 2]},
        },
        "serverless": {
            "bounds": {"min": 5, "max": 50},
            "scheduled": [{"name": "peak", "cron": "0 13 * * 1-5", "min": 10}],
        },
    }
)

FILE = """\
# a comment at the top
config:
  aws:region: us-east-1
  # about the owner
  scaleplan:owner: ml-platform  # trailing comment
  scaleplan:scaling:
    schema_version: 1
    source: {bundle_id: old, version: "7"}
    asg:
      bounds: {min: 1, max: 2}
  scaleplan:retraining:
    image: ghcr.io/example/scaleplan:0.1.0
    schedule: "0 3 * * *"
"""


def outside_block(text: str) -> list[str]:
    """The lines that are not inside the `scaleplan:scaling:` block."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith(f"  {CONFIG_KEY}:"):
            inside = True
            continue
        if inside and line.startswith("    "):
            continue
        inside = False
        lines.append(line)
    return lines


def test_only_the_block_changes_and_comments_stay() -> None:
    after = render(FILE, SCALING, "test.yaml")
    assert outside_block(after) == outside_block(FILE)
    assert "# trailing comment" in after and "# about the owner" in after
    value = yaml.safe_load(after)["config"][CONFIG_KEY]
    assert StackScaling.model_validate(value) == SCALING
    # Strings YAML would read as something else are quoted.
    assert 'version: "1"' in after and 'start: "2026-12-02T15:00:00Z"' in after
    assert "desired: [2, 3, 5, 5, 2]" in after


def test_rendering_twice_changes_nothing() -> None:
    once = render(FILE, SCALING, "test.yaml")
    assert render(once, SCALING, "test.yaml") == once
    assert unified_diff(once, once, Path("Pulumi.x.yaml")) == ""


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stack_files_keep_every_other_line(stack: str) -> None:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    after = render(text, SCALING, stack)
    assert outside_block(after) == outside_block(text)


def test_a_block_is_added_to_a_file_without_one() -> None:
    bare = "config:\n  aws:region: us-east-1  # keep me\n"
    after = render(bare, SCALING, "bare.yaml")
    assert after.startswith(bare)
    assert yaml.safe_load(after)["config"][CONFIG_KEY]["asg"]["bounds"] == {"min": 2, "max": 24}


def test_a_file_without_config_is_refused() -> None:
    with pytest.raises(StackConfigError, match="expected a top-level `config:` mapping"):
        render("name: scaleplan\n", SCALING, "Pulumi.yaml")


def test_the_diff_names_the_file() -> None:
    after = render(FILE, SCALING, "test.yaml")
    diff = unified_diff(FILE, after, Path("/x/Pulumi.prod.yaml"))
    assert diff.startswith("--- a/Pulumi.prod.yaml\n+++ b/Pulumi.prod.yaml\n")
    assert '-    source: {bundle_id: old, version: "7"}' in diff
