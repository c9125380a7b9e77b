"""`planner apply` and `planner rollback`.

Heavy libraries (boto3, pulumi) load inside the commands; importing this module
is cheap (`planner.cli` imports it to register the commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner.apply.options import (
    AuditPath,
    EndpointUrl,
    ModeChoice,
    ProjectDir,
    Region,
    TargetChoice,
    ViaChoice,
    Yes,
    resolve_audit,
)
from planner.cli_app import app, guarded, stderr, stdout
from planner.store.base import StoreError
from sim.errors import UserInputError

if TYPE_CHECKING:
    from planner.apply.service import ApplyOutcome, ApplyRequest
    from planner.store.base import PolicyStore
    from policies.stack_config import StackScaling


def _load_scaling(
    bundle: Path | None,
    config: Path | None,
    project_dir: Path,
    stack: str,
    now: datetime,
    targets: str | None,
) -> StackScaling:
    from planner.apply.inputs import (
        parse_targets,
        restrict,
        scaling_from_bundle,
        scaling_from_config,
        stack_file,
    )

    if (bundle is None) == (config is None):
        raise UserInputError("give exactly one of --bundle PATH or --config Pulumi.<stack>.yaml")
    only = parse_targets(targets)
    target = stack_file(project_dir, stack)
    if config is not None:
        if not config.is_file():
            raise UserInputError(f"--config {config}: no such file")
        return restrict(scaling_from_config(config), only)
    assert bundle is not None
    notes: list[str] = []
    scaling = scaling_from_bundle(bundle, target, now, notes, only)
    for note in notes:
        stdout.print(f"compile: {note}", markup=False, highlight=False)
    return scaling


def _print_outcome(outcome: ApplyOutcome, yes: bool) -> None:
    stdout.print(outcome.plan.describe(), markup=False, highlight=False)
    for note in outcome.notes:
        stdout.print(f"note: {note}", markup=False, highlight=False)
    if outcome.plan.empty:
        pass
    elif not yes:
        stdout.print(f"dry run ({outcome.mode} mode): nothing changed; rerun with --yes to act")
    elif not outcome.acted:
        stdout.print(
            f"shadow mode: nothing changed; {len(outcome.plan.changes)} change(s) recorded in the "
            "audit log. Promote with `planner apply ... --mode active --yes`"
        )
    else:
        stdout.print(f"applied {len(outcome.applied)} change(s)")
    for path in outcome.manifests:
        stdout.print(f"wrote {path}")


def _run(request: ApplyRequest) -> ApplyOutcome:
    from planner.apply.service import ApplyFailed, run_apply

    try:
        return run_apply(request)
    except ApplyFailed as exc:
        stderr.print(f"apply failed, stack restored: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@dataclass(frozen=True)
class _StoreSession:
    """The policy store an apply records in, and the champion it read before acting."""

    url: str
    store: PolicyStore
    who: str
    before: dict[str, Any] | None


def _open_store(store_url: str, request: ApplyRequest) -> _StoreSession:
    """Opened, and its champion read, before anything changes live: an unreadable store
    fails here, not after the apply."""
    from planner.apply.inputs import stack_file, stack_settings
    from planner.aws.session import AwsConnection
    from planner.store import open_store

    region = stack_settings(stack_file(request.project_dir, request.stack)).region
    conn = AwsConnection(region=region, endpoint_url=request.endpoint_url)
    store = open_store(store_url, conn)
    return _StoreSession(store_url, store, conn.caller(), store.champion(request.stack))


def _record_in_store(
    session: _StoreSession, request: ApplyRequest, bundle: Path | None, reason: str
) -> None:
    """Make what was applied the champion, only from the champion read before acting."""
    from planner.apply.inputs import label

    store = session.store
    version = label(request.scaling)
    if bundle is not None:
        version = store.put_bundle(bundle)
    emitted = store.put_emitted(version, request.stack, request.scaling.to_config())
    _set_champion(session, request.stack, version, reason, emitted)
    stdout.print(f"store {session.url}: {version} is the champion of {request.stack}")


def _set_champion(
    session: _StoreSession, stack: str, version: str, reason: str, emitted: str | None
) -> None:
    """`set_champion` from the record read before acting. When someone else promoted
    meanwhile, the live stack already runs `version` (the audit log has it) and the
    store is left to them: say both, so the operator reconciles."""
    try:
        session.store.set_champion(
            stack, version, who=session.who, reason=reason, emitted=emitted,
            expected=session.before,
        )  # fmt: skip
    except StoreError as exc:
        raise StoreError(
            f"{version} was applied to the live stack {stack} (see the audit log), but the "
            f"store's champion was not moved: {exc}. Decide which version should run and "
            f"apply it (or `planner rollback --to` it) again"
        ) from None


@app.command()
@guarded
def apply(
    stack: Annotated[str, typer.Option(help="Stack name: reads Pulumi.<stack>.yaml.")],
    bundle: Annotated[Path | None, typer.Option(help="Policy bundle to compile and apply.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Apply this stack file's scaleplan:scaling block as is.")
    ] = None,
    target: Annotated[TargetChoice, typer.Option(help="Where to apply.")] = TargetChoice.aws,
    targets: Annotated[
        str | None,
        typer.Option(help="Only these stack targets (comma-separated: eks, asg, serverless)."),
    ] = None,
    yes: Yes = False,
    mode: Annotated[
        ModeChoice | None,
        typer.Option(help="shadow records only; active acts (default: shadow until applied once)."),
    ] = None,
    via: Annotated[
        ViaChoice, typer.Option(help="aws: boto3; pulumi: write the stack file and `pulumi up`.")
    ] = ViaChoice.aws,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
    project_dir: ProjectDir = Path("."),
    audit_log: AuditPath = None,
    manifests_dir: Annotated[
        Path | None, typer.Option(help="Write the eks target's HPA / ScaledObject here (GitOps).")
    ] = None,
    max_step: Annotated[
        int | None, typer.Option(min=1, help="Refuse a capacity change larger than this.")
    ] = None,
    asg_name: Annotated[
        str | None, typer.Option(help="Auto Scaling group (default: by tag).")
    ] = None,
    endpoint_name: Annotated[
        str | None, typer.Option(help="SageMaker endpoint (default: by tag).")
    ] = None,
    cluster_name: Annotated[str | None, typer.Option(help="EKS cluster (default: by tag).")] = None,
    store: Annotated[
        str | None, typer.Option(help="Policy store (dir or s3://bucket/prefix) to record it in.")
    ] = None,
    replica_capacity_rps: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Shadow mode: also run the bundle's policy once on live metrics (req/s per "
            "instance at a full batch).",
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="Shadow decisions go here (default .scaleplan/shadow-<stack>.jsonl)."),
    ] = None,
) -> None:
    """Apply a policy to the live stack: dry-run diff first, acts only with --yes."""
    from planner.apply.service import ApplyRequest
    from planner.aws.discovery import StackResources

    now = datetime.now(UTC)
    scaling = _load_scaling(bundle, config, project_dir, stack, now, targets)
    if via is ViaChoice.pulumi:
        from planner.apply.pulumi_route import apply_via_pulumi

        apply_via_pulumi(project_dir, stack, scaling, yes=yes)
        return
    request = ApplyRequest(
        stack=stack,
        project_dir=project_dir,
        scaling=scaling,
        audit_path=resolve_audit(project_dir, audit_log),
        now=now,
        yes=yes,
        mode=None if mode is None else mode.value,
        region=region,
        endpoint_url=endpoint_url,
        names=StackResources(asg=asg_name, endpoint=endpoint_name, cluster=cluster_name),
        manifests_dir=manifests_dir,
        max_step=max_step,
    )
    session = _open_store(store, request) if store is not None and yes else None
    outcome = _run(request)
    _print_outcome(outcome, yes)
    if session is not None and outcome.acted:
        _record_in_store(session, request, bundle, "planner apply")
    if yes and outcome.mode == "shadow" and bundle is not None:
        if replica_capacity_rps is None or outcome.resources.asg is None:
            stdout.print(
                "the policy's own decisions on live metrics: pass --replica-capacity-rps here, "
                "or run `planner control --mode shadow`"
            )
        else:
            path = record or project_dir / ".scaleplan" / f"shadow-{stack}.jsonl"
            _shadow_decision(request, outcome, bundle, replica_capacity_rps, path)


def _shadow_decision(
    request: ApplyRequest, outcome: ApplyOutcome, bundle: Path, rps: float, record: Path
) -> None:
    """One decision of the bundle's policy on live metrics, recorded, acting on nothing."""
    from planner.apply.control_commands import live_context, make_controller, read_history
    from planner.aws.session import AwsConnection
    from policies.bundle import read_bundle

    scaling = request.scaling.asg
    assert scaling is not None and outcome.resources.asg is not None
    conn = AwsConnection(region=outcome.region, endpoint_url=request.endpoint_url)
    low, high = scaling.bounds.min, scaling.bounds.max
    spec, group = read_bundle(bundle).spec, outcome.resources.asg
    controller = make_controller(
        conn=conn,
        group=group,
        policy=spec.build(),
        mode="shadow",
        floor=low,
        ceiling=high,
        context=live_context(60.0, low, high, rps, history=read_history(conn, group, spec, None)),
        record=record,
    )
    step = controller.step()
    stdout.print(
        f"shadow decision: running {step.running_desired}, policy {step.would_set} "
        f"({step.reason}); recorded in {record}",
        markup=False,
        highlight=False,
    )


@app.command()
@guarded
def rollback(
    to: Annotated[str, typer.Option("--to", help="Store version to re-apply, e.g. name@3.")],
    store: Annotated[str, typer.Option(help="Policy store: a directory or s3://bucket/prefix.")],
    stack: Annotated[str, typer.Option(help="Stack name: reads Pulumi.<stack>.yaml.")],
    target: Annotated[TargetChoice, typer.Option(help="Where to apply.")] = TargetChoice.aws,
    yes: Yes = False,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
    project_dir: ProjectDir = Path("."),
    audit_log: AuditPath = None,
    asg_name: Annotated[
        str | None, typer.Option(help="Auto Scaling group (default: by tag).")
    ] = None,
    endpoint_name: Annotated[
        str | None, typer.Option(help="SageMaker endpoint (default: by tag).")
    ] = None,
) -> None:
    """Re-apply a stored version (its emitted config) in active mode and make it the champion."""
    import tempfile

    from planner.apply.inputs import (
        scaling_from_bundle,
        scaling_from_value,
        stack_file,
        stack_settings,
    )
    from planner.apply.service import ApplyRequest
    from planner.aws.discovery import StackResources
    from planner.aws.session import AwsConnection, check_region
    from planner.store import open_store

    now = datetime.now(UTC)
    path = stack_file(project_dir, stack)
    stack_region = check_region(stack_settings(path).region, region, str(path))
    conn = AwsConnection(region=stack_region, endpoint_url=endpoint_url)
    policy_store = open_store(store, conn)
    session = _StoreSession(store, policy_store, conn.caller(), policy_store.champion(stack))
    with tempfile.TemporaryDirectory() as work:
        stored = policy_store.get(to, stack, Path(work))
        if stored.emitted is not None:
            scaling = scaling_from_value(stored.emitted, f"{store} {to}")
        else:
            assert stored.bundle_dir is not None
            scaling = scaling_from_bundle(stored.bundle_dir, path, now)
    request = ApplyRequest(
        stack=stack,
        project_dir=project_dir,
        scaling=scaling,
        audit_path=resolve_audit(project_dir, audit_log),
        now=now,
        yes=yes,
        mode="active",
        region=region,
        endpoint_url=endpoint_url,
        names=StackResources(asg=asg_name, endpoint=endpoint_name),
    )
    outcome = _run(request)
    _print_outcome(outcome, yes)
    if yes:
        _set_champion(session, stack, to, f"planner rollback --to {to}", None)
        stdout.print(f"rolled back {stack} to {to}; it is the champion again")
