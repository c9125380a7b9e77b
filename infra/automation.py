"""Drive `pulumi preview` / `pulumi up` from Python (Pulumi Automation API).

The Automation API shells out to the Pulumi CLI, so these functions first check
that `pulumi` is on PATH and fail with a clear, actionable message when it is
not. Before touching the cloud they validate the stack file and its guardrails
with the same code the program runs, so a bad emitted policy fails here, fast.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import guardrails
from infra.stack_file import load_stack_file
from sim.errors import ScaleplanError

PROJECT_DIR = Path(__file__).resolve().parents[1]
POLICY_PACK_DIR = Path(__file__).resolve().parent / "policypack"


class PulumiCliMissingError(ScaleplanError):
    """The Pulumi CLI is needed (Automation API) and is not installed."""


@dataclass(frozen=True)
class RunSummary:
    """What a preview or update did: the change counts by operation, and outputs."""

    stack: str
    changes: dict[str, int]
    outputs: dict[str, object]


def require_cli(which: str | None = None) -> str:
    """The path of the `pulumi` executable, or PulumiCliMissingError saying how to install it.

    Args:
        which: The path to use instead of looking up `pulumi` on PATH (tests).
    """
    path = which if which is not None else shutil.which("pulumi")
    if path is None or not Path(path).exists():
        raise PulumiCliMissingError(
            "the Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/ "
            "(e.g. `curl -fsSL https://get.pulumi.com | sh`), then log in with "
            "`pulumi login` and retry. The Automation API drives the CLI and cannot "
            "run without it."
        )
    return path


def _prepared(
    stack: str, project_dir: Path, with_policy_pack: bool
) -> tuple[Any, list[str] | None]:
    """The selected stack and its policy packs, once the CLI and the guardrails pass."""
    require_cli()
    guardrails.enforce_stack(load_stack_file(project_dir / f"Pulumi.{stack}.yaml"))
    packs = [str(POLICY_PACK_DIR)] if with_policy_pack else None
    return _select(stack, project_dir), packs


def _select(stack: str, project_dir: Path) -> Any:
    from pulumi import automation as auto

    return auto.select_stack(stack_name=stack, work_dir=str(project_dir))


def preview(
    stack: str, project_dir: Path = PROJECT_DIR, with_policy_pack: bool = True
) -> RunSummary:
    """`pulumi preview -s <stack> [--policy-pack infra/policypack]`.

    Raises:
        PulumiCliMissingError: `pulumi` is not on PATH.
        StackConfigError: the stack file or its emitted policy is invalid.
    """
    selected, packs = _prepared(stack, project_dir, with_policy_pack)
    result = selected.preview(policy_packs=packs)
    changes = {str(k): int(v) for k, v in (result.change_summary or {}).items()}
    return RunSummary(stack=stack, changes=changes, outputs={})


def up(stack: str, project_dir: Path = PROJECT_DIR, with_policy_pack: bool = True) -> RunSummary:
    """`pulumi up --yes -s <stack> [--policy-pack infra/policypack]`.

    Raises:
        PulumiCliMissingError: `pulumi` is not on PATH.
        StackConfigError: the stack file or its emitted policy is invalid.
    """
    selected, packs = _prepared(stack, project_dir, with_policy_pack)
    result = selected.up(policy_packs=packs)
    changes = {str(k): int(v) for k, v in (result.summary.resource_changes or {}).items()}
    outputs = {k: v.value for k, v in result.outputs.items()}
    return RunSummary(stack=stack, changes=changes, outputs=outputs)
