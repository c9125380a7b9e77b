"""What `planner apply` applies: a bundle compiled for the stack, or a stack file's scaling block.

A bundle goes through `planner emit`'s compiler (`planner.emit.compile`), the
same one that writes the stack file; `--config Pulumi.<stack>.yaml` applies the
`scaleplan:scaling` block a stack file already holds, as written. Both end as
one validated `StackScaling`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policies.stack_config import CONFIG_KEY, SCHEMA_VERSION, StackScaling
from sim.errors import StackConfigError, UserInputError


def stack_file(project_dir: Path, stack: str) -> Path:
    """`Pulumi.<stack>.yaml` in `project_dir`, which must exist."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name for p in project_dir.glob("Pulumi.*.yaml"))
        raise UserInputError(
            f"stack {stack!r} has no config file {path} (found: {', '.join(known) or 'none'}); "
            "pass an existing --stack or create it with `pulumi stack init`; nothing was changed"
        )
    return path


def scaling_from_config(path: Path) -> StackScaling:
    """The `scaleplan:scaling` block of a stack file, validated."""
    from infra.stack_file import read_stack_file

    raw = read_stack_file(path).get(CONFIG_KEY)
    if raw is None:
        raise StackConfigError(f"{path}: no {CONFIG_KEY} block; emit one with `planner emit`")
    return scaling_from_value(raw, str(path))


def scaling_from_value(raw: Any, source: str) -> StackScaling:
    """Validate a parsed `scaleplan:scaling` value (a store record, a stack file block)."""
    if isinstance(raw, dict) and raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise StackConfigError(
            f"{source}: scaling schema_version {raw.get('schema_version')!r} is not supported; "
            f"this scaleplan reads schema_version {SCHEMA_VERSION} (re-emit it with this release)"
        )
    try:
        return StackScaling.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or 'scaling'}: {e['msg']}" for e in exc.errors()
        )
        raise StackConfigError(
            f"{source}: the scaling policy cannot be applied:\n{problems}"
        ) from None


def scaling_from_bundle(
    bundle: Path, stack_path: Path, now: datetime, notes: list[str] | None = None
) -> StackScaling:
    """Compile `bundle` onto every target of the stack file `stack_path` (`planner emit`).

    Raises:
        PolicyError: the bundle is unreadable or of an unknown schema version, or a
            target cannot express its policy (the reason and the nearest kind).
    """
    from planner.emit.compile import compile_bundle
    from planner.emit.target import read_stack_target
    from policies.bundle import read_bundle

    loaded = read_bundle(bundle)
    compiled = compile_bundle(loaded, read_stack_target(stack_path), now=now)
    if notes is not None:
        notes.extend(compiled.notes)
    return compiled.scaling


def label(scaling: StackScaling) -> str:
    """`bundle_id@version`: how the audit log and the store name an emitted policy."""
    return f"{scaling.source.bundle_id}@{scaling.source.version}"
