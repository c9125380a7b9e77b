"""CLI options shared by `planner apply`, `rollback`, `control` and `shadow-report`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class TargetChoice(StrEnum):
    aws = "aws"


class ModeChoice(StrEnum):
    shadow = "shadow"
    active = "active"


class ViaChoice(StrEnum):
    aws = "aws"
    pulumi = "pulumi"


#: Where the audit trail goes unless --audit-log says otherwise (relative to --project-dir).
DEFAULT_AUDIT = Path(".scaleplan") / "audit.jsonl"

ProjectDir = Annotated[
    Path, typer.Option(help="Directory holding Pulumi.<stack>.yaml (default: current).")
]
Region = Annotated[str | None, typer.Option(help="AWS region; must match the stack's aws:region.")]
EndpointUrl = Annotated[
    str | None, typer.Option(help="Send AWS calls here (a moto server, LocalStack).")
]
AuditPath = Annotated[
    Path | None, typer.Option(help="Append-only audit log (default .scaleplan/audit.jsonl).")
]
Yes = Annotated[bool, typer.Option("--yes", help="Act; without it apply is a dry run.")]


def resolve_audit(project_dir: Path, audit_log: Path | None) -> Path:
    """--audit-log, or the default under --project-dir."""
    return audit_log if audit_log is not None else project_dir / DEFAULT_AUDIT
