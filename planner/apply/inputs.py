"""What `planner apply` applies: a bundle compiled for the stack, or a stack file's scaling block.

A bundle goes through `planner emit`'s compiler (`planner.emit.compile`); until
that compiler is installed, or to apply what a stack file already holds,
`--config Pulumi.<stack>.yaml` applies its `scaleplan:scaling` block as written.
Both end as one validated `StackScaling`.
"""

from __future__ import annotations

import importlib
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


def scaling_from_bundle(bundle: Path, stack_target: Path, now: datetime) -> StackScaling:
    """Compile `bundle` for the stack file `stack_target` with `planner emit`'s compiler.

    Raises:
        PolicyError: the bundle is unreadable or of an unknown schema version.
        UserInputError: the compiler is not installed, or refuses the policy.
    """
    from policies.bundle import read_bundle

    loaded = read_bundle(bundle)
    try:
        compiler = importlib.import_module("planner.emit.compile")
    except ImportError:
        raise UserInputError(
            "this build has no bundle compiler (planner emit); apply the stack file's "
            "scaling block with --config Pulumi.<stack>.yaml instead of --bundle"
        ) from None
    result = compiler.compile_bundle(loaded, stack_target, now=now)
    scaling = result if isinstance(result, StackScaling) else getattr(result, "scaling", None)
    if not isinstance(scaling, StackScaling):
        raise TypeError(f"compile_bundle returned {type(result).__name__}, not a StackScaling")
    return scaling


def label(scaling: StackScaling) -> str:
    """`bundle_id@version`: how the audit log and the store name an emitted policy."""
    return f"{scaling.source.bundle_id}@{scaling.source.version}"
