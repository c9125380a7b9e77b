"""Fixtures for `planner emit`: a copy of the committed stack files, bundles, a fixed now."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from planner.emit.target import StackTarget, read_stack_target
from policies.bundle import PolicyBundle, write_bundle
from policies.kinds import spec_from_dict

ROOT = Path(__file__).resolve().parents[3]
STACKS = ("dev", "staging", "prod")
#: A fixed "now" after every committed schedule was emitted (2026-12-02, a Wednesday).
NOW = datetime(2026, 12, 2, 14, 20, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding copies of the three committed stack files."""
    for stack in STACKS:
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    return tmp_path


def stack(name: str) -> StackTarget:
    return read_stack_target(ROOT / f"Pulumi.{name}.yaml")


def bundle_of(spec: dict[str, Any], name: str = "b", version: int = 1) -> PolicyBundle:
    return PolicyBundle(name=name, version=version, spec=spec_from_dict(spec), created_at=NOW)


def written_bundle(root: Path, spec: dict[str, Any], name: str = "b") -> Path:
    return write_bundle(bundle_of(spec, name), root)
