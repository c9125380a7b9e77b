"""The append-only audit trail of `planner apply`, `rollback` and `control`: JSON lines.

One line per event: who (the caller's ARN and the local user), when (UTC),
stack, bundle version, mode, what changed (kind, key, before, after) and the
outcome. Lines are appended with O_APPEND and fsynced; nothing rewrites the
file. States hold resource names and scaling parameters only: credentials never
reach them, and `redact` refuses anything shaped like an AWS secret.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Access key ids (AKIA/ASIA + 16) and 40-character secret keys.
_SECRET_PATTERNS = (
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
)


def redact(text: str) -> str:
    """`text` with anything shaped like an AWS access key or secret replaced."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


@dataclass
class AuditLog:
    """Appends events to `path` (created with its directory when missing)."""

    path: Path
    who: str
    stack: str
    bundle: str

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "who": self.who,
            "user": _local_user(),
            "stack": self.stack,
            "bundle": self.bundle,
            "event": event,
            **fields,
        }
        line = redact(json.dumps(record, sort_keys=True, default=str)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return record


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every event in the log, oldest first (an absent log is empty)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def applied_active(path: Path, stack: str, bundle: str) -> bool:
    """True when `bundle` was applied to `stack` in active mode (then active is the default)."""
    return any(
        e.get("event") == "apply-finished"
        and e.get("mode") == "active"
        and e.get("stack") == stack
        and e.get("bundle") == bundle
        for e in read_audit(path)
    )
