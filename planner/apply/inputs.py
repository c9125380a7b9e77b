"""What `planner apply` applies: a bundle compiled for the stack, or a stack file's scaling block.

A bundle goes through `planner emit`'s compiler (`planner.emit.compile`), the
same one that writes the stack file; `--config Pulumi.<stack>.yaml` applies the
`scaleplan:scaling` block a stack file already holds, as written. Both end as
one validated `StackScaling`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from policies.stack_config import CONFIG_KEY, SCHEMA_VERSION, StackScaling, TargetName
from sim.errors import StackConfigError, UserInputError

if TYPE_CHECKING:
    from infra.settings import StackSettings


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


def stack_settings(path: Path) -> StackSettings:
    """The stack's settings without its current `scaleplan:scaling` block.

    The policy being applied replaces that block, so an old block that a newer
    schema refuses does not stand in the way of applying a new one.
    """
    from infra.stack_file import SECRET_KEYS, read_stack_file, settings_from_config

    raw = read_stack_file(path)
    region = raw.get("aws:region")
    if not isinstance(region, str):
        raise StackConfigError(f"{path}: missing aws:region; run `pulumi config set aws:region`")
    values = {
        k.removeprefix("scaleplan:"): v
        for k, v in raw.items()
        if k.startswith("scaleplan:") and k != CONFIG_KEY
    }
    values = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return settings_from_config(values, stack=stack, region=region, source=str(path))


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
    bundle: Path,
    stack_path: Path,
    now: datetime,
    notes: list[str] | None = None,
    only: tuple[TargetName, ...] | None = None,
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
    target = read_stack_target(stack_path)
    if only is not None:
        target = target.only(only)
    compiled = compile_bundle(loaded, target, now=now)
    if notes is not None:
        notes.extend(compiled.notes)
    return compiled.scaling


def parse_targets(text: str | None) -> tuple[TargetName, ...] | None:
    """`--targets eks,asg` as a tuple of target names (None: every target of the stack)."""
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    allowed = ("eks", "asg", "serverless")
    if not names or any(n not in allowed for n in names):
        raise UserInputError(
            f"--targets {text!r}: use a comma-separated subset of eks, asg, serverless"
        )
    return names  # type: ignore[return-value]


def restrict(scaling: StackScaling, only: tuple[TargetName, ...] | None) -> StackScaling:
    """`scaling` with the targets outside `only` left out (the stack's other targets untouched)."""
    if only is None:
        return scaling
    kept = [n for n in only if scaling.target(n) is not None]
    if not kept:
        raise UserInputError(f"--targets {','.join(only)}: the policy scales none of them")
    return scaling.model_copy(
        update={n: None for n in ("eks", "asg", "serverless") if n not in only}
    )


def label(scaling: StackScaling) -> str:
    """`bundle_id@version`: how the audit log and the store name an emitted policy."""
    return f"{scaling.source.bundle_id}@{scaling.source.version}"
