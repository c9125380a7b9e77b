"""`planner emit`: a policy bundle compiled into a stack's `scaleplan:scaling` block.

Registered on the `planner` app when `planner.cli` imports this module; everything
heavier than typer (the compiler, the simulator, ruamel.yaml, infra) is imported
inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli_app import app, guarded, stderr, stdout
from sim.errors import UserInputError


def _parse_now(text: str | None) -> object:
    from datetime import UTC, datetime

    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserInputError(
            f"--now {text!r}: not an ISO 8601 time; use e.g. 2026-12-02T14:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise UserInputError(f"--now {text!r}: give a time zone, e.g. 2026-12-02T14:00:00Z")
    return value


def _parse_targets(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ("eks", "asg", "serverless")]
    if unknown or not names:
        raise UserInputError(
            f"--targets {text!r}: use a comma-separated subset of eks, asg, serverless"
        )
    return names


@app.command()
@guarded
def emit(
    bundle: Annotated[
        Path, typer.Option(help="Policy bundle: a v<N> directory, its parent, or a .tar.gz.")
    ],
    stack: Annotated[str, typer.Option(help="Stack name: writes Pulumi.<STACK>.yaml.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the diff; write nothing.")
    ] = False,
    project_dir: Annotated[
        Path, typer.Option(help="Directory holding the Pulumi.<stack>.yaml files.")
    ] = Path("."),
    targets: Annotated[
        str | None,
        typer.Option(help="Comma-separated targets to drive (default: every one the stack has)."),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Scenario YAML a precomputed schedule is simulated on: the one the bundle was "
            "tuned on (default: the bundled default scenario)."
        ),
    ] = None,
    max_step: Annotated[
        int | None,
        typer.Option(min=1, help="Guardrail: largest capacity change one scheduled step may make."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(help="Current time, ISO 8601 with zone (default: the clock); for replays."),
    ] = None,
) -> None:
    """Compile a policy bundle into the stack's `scaleplan:scaling` and print the diff."""
    from datetime import datetime

    from planner.emit.compile import compile_bundle
    from planner.emit.guard import guardrail_problems
    from planner.emit.native import Unexpressible
    from planner.emit.stack_file import render, unified_diff, write
    from planner.emit.target import read_stack_target, stack_file_path
    from planner.scenario_input import resolve_scenario
    from policies.bundle import read_bundle
    from policies.registry import locate_bundle

    current = _parse_now(now)
    assert isinstance(current, datetime)
    chosen = _parse_targets(targets)
    path = stack_file_path(project_dir, stack)
    bundle_dir = locate_bundle(bundle)
    policy = read_bundle(bundle_dir)
    target = read_stack_target(path)
    if chosen is not None:
        target = target.only(chosen)  # type: ignore[arg-type]
    traffic = resolve_scenario(scenario) if scenario is not None else None
    try:
        compiled = compile_bundle(
            policy, target, now=current, scenario=traffic, bundle_path=bundle_dir
        )
    except Unexpressible as exc:
        others = [p.name for p in target.pools if p.name != exc.target]
        hint = f"; or leave {exc.target} out: --targets {','.join(others)}" if others else ""
        raise UserInputError(f"{exc}{hint}") from None
    problems = guardrail_problems(compiled.scaling, target, max_step=max_step)
    if problems:
        raise UserInputError(
            f"{path}: the compiled policy breaks guardrails; nothing written:\n  "
            + "\n  ".join(problems)
        )
    before = path.read_text()
    after = render(before, compiled.scaling, str(path))
    for name, construct in compiled.constructs.items():
        stderr.print(f"{name}: {construct}", soft_wrap=True)
    for note in compiled.notes:
        stderr.print(f"note: {note}", soft_wrap=True)
    diff = unified_diff(before, after, path)
    if diff:
        stdout.print(diff, end="", markup=False, highlight=False, soft_wrap=True)
    if not diff:
        stderr.print(f"{path}: scaleplan:scaling already holds this policy; nothing to write")
    elif dry_run:
        stderr.print(f"dry run: {path} not written")
    else:
        write(path, after)
        stderr.print(f"wrote {path} (scaleplan:scaling from {policy.name} v{policy.version})")
