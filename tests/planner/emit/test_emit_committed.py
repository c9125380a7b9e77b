"""The committed `scaleplan:scaling` blocks are `planner emit` output, and docs/emit.md is true.

Each block is recompiled from the bundle it names (committed under bundles/) and
must equal what the stack file holds: the blocks are emitted, not hand-written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import yaml

from planner.emit.compile import CONSTRUCTS, REFUSALS, compile_bundle
from planner.emit.guard import TARGETS
from planner.emit.target import read_stack_target
from policies.bundle import read_bundle
from policies.kinds import SPEC_CLASSES
from policies.registry import locate_bundle
from policies.stack_config import CONFIG_KEY, StackScaling
from sim.scenario import load_scenario

from .conftest import ROOT, STACKS

#: stack -> the scenario its bundle was tuned on (its schedule is simulated on it).
SCENARIOS = {
    "dev": "business_hours.yaml",
    "staging": "business_hours.yaml",
    "prod": "business_hours.yaml",
}


def committed(stack: str) -> StackScaling:
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"][CONFIG_KEY]
    return StackScaling.model_validate(raw)


@pytest.mark.parametrize("stack", STACKS)
def test_committed_block_is_what_emit_writes_for_its_bundle(stack: str) -> None:
    block = committed(stack)
    bundle = read_bundle(locate_bundle(ROOT / "bundles" / block.source.bundle_id))
    assert str(bundle.version) == block.source.version
    targets = tuple(n for n in TARGETS if block.target(n) is not None)
    target = read_stack_target(ROOT / f"Pulumi.{stack}.yaml").only(targets)
    schedules = [t.schedule for n in targets if (t := block.target(n)) and t.schedule]
    crons = [c for n in targets if (t := block.target(n)) and t.keda for c in t.keda.cron]
    # Emitted at some time before the schedule's start; compiling at its start repeats it.
    now = schedules[0].start if schedules else datetime(2026, 12, 2, 15, tzinfo=UTC)
    if crons and not schedules:
        day, month = crons[0].start.split()[2:4]
        now = datetime(2026, int(month), int(day), int(crons[0].start.split()[1]), tzinfo=UTC)
    scenario = load_scenario(ROOT / "sim" / "scenarios" / SCENARIOS[stack])
    again = compile_bundle(bundle, target, now=now, scenario=scenario).scaling
    assert again == block


def test_docs_table_says_what_the_compiler_does() -> None:
    text = (ROOT / "docs" / "emit.md").read_text()
    rows = {
        m.group(1): [c.strip() for c in m.group(2).split("|")]
        for m in re.finditer(r"^\| `([a-z-]+)` \|(.*)\|$", text, flags=re.MULTILINE)
    }
    kinds = set(SPEC_CLASSES)
    assert kinds <= set(rows), f"docs/emit.md lacks rows for {kinds - set(rows)}"
    for kind in kinds:
        for target, cell in zip(("eks", "asg", "serverless"), rows[kind], strict=True):
            refused = (kind, target) in REFUSALS
            assert cell.startswith("refused") == refused, (kind, target, cell)
            if refused:
                alternative = REFUSALS[kind, target][1].split()[0]
                assert alternative in cell, (kind, target, cell)
            elif "schedule" in CONSTRUCTS.get((kind, target), "48 h schedule"):
                assert "schedule" in cell, (kind, target, cell)
