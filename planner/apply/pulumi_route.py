"""`planner apply --via pulumi`: write the policy into the stack file, then `pulumi up`.

The Pulumi CLI is checked first, so where it is missing nothing is written and
the message says how to install it (exit 2). The stack file is edited with
ruamel.yaml's round trip: every other key and comment stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from policies.stack_config import CONFIG_KEY, StackScaling
from sim.errors import UserInputError


def write_scaling(path: Path, scaling: StackScaling) -> bool:
    """Set `scaleplan:scaling` in `path`, atomically; False when it already holds it."""
    import io

    from ruamel.yaml import YAML

    from planner.atomic import write_bytes_atomic

    yaml = YAML()
    yaml.preserve_quotes = True
    doc = yaml.load(path.read_text())
    if doc.get("config", {}).get(CONFIG_KEY) == scaling.to_config():
        return False
    doc["config"][CONFIG_KEY] = scaling.to_config()
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))
    return True


def apply_via_pulumi(project_dir: Path, stack: str, scaling: StackScaling, *, yes: bool) -> None:
    """Check the CLI, write the stack file, `pulumi up` (with --yes; else only the check).

    Raises:
        UserInputError: the Pulumi CLI is missing (nothing written), or the stack is invalid.
    """
    from infra import automation
    from planner.apply.inputs import stack_file
    from planner.cli_app import stdout

    path = stack_file(project_dir, stack)
    try:
        automation.require_cli()
    except automation.PulumiCliMissingError as exc:
        raise UserInputError(f"--via pulumi: {exc} Nothing was changed.") from None
    if not yes:
        stdout.print(f"dry run: would write {CONFIG_KEY} to {path} and run `pulumi up -s {stack}`")
        return
    changed = write_scaling(path, scaling)
    stdout.print(f"{'wrote' if changed else 'unchanged'}: {CONFIG_KEY} in {path}")
    summary = automation.up(stack, project_dir)
    stdout.print(f"pulumi up -s {stack}: {summary.changes}")
