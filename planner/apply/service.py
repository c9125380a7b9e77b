"""One `planner apply`: validate, connect, diff, guard, then act all-or-nothing (or shadow).

The order is the safety argument: every check that can refuse (stack file,
policy, guardrails, credentials, region, resources, max step) runs before the
first write; the diff is shown before anything acts; only `--yes` in active
mode writes, through `planner.apply.plan.execute`, which restores every change
made before a failure. Every step lands in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from planner.apply.audit import AuditLog, applied_active
from planner.apply.plan import Change, Driver, Plan, diff, execute
from planner.aws.discovery import StackResources
from planner.aws.session import AwsConnection
from policies.stack_config import StackScaling
from sim.errors import UserInputError

Mode = Literal["shadow", "active"]


@dataclass(frozen=True)
class ApplyRequest:
    """Everything one apply needs (the CLI builds it from flags)."""

    stack: str
    project_dir: Path
    scaling: StackScaling
    audit_path: Path
    now: datetime
    yes: bool = False
    mode: Mode | None = None
    region: str | None = None
    endpoint_url: str | None = None
    names: StackResources = field(default_factory=StackResources)
    manifests_dir: Path | None = None
    max_step: int | None = None
    retry_attempts: int = 5
    retry_base_s: float = 0.5


@dataclass
class ApplyOutcome:
    """What the apply found and did."""

    plan: Plan
    mode: Mode
    acted: bool
    notes: list[str]
    applied: list[Change] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)
    resources: StackResources = field(default_factory=StackResources)
    region: str = ""


class ApplyFailed(Exception):
    """A change failed part-way; the changes before it were restored (see the audit log)."""


def prepare(request: ApplyRequest, conn: AwsConnection | None = None) -> tuple[Any, ...]:
    """Checks that refuse before any write: (settings, connection, who, resources).

    Raises:
        UserInputError: missing stack file, a policy the stack cannot take, a
            guardrail, credentials, region mismatch, a resource that is missing.
    """
    from infra import guardrails
    from planner.apply.inputs import stack_file, stack_settings
    from planner.aws.session import check_region

    path = stack_file(request.project_dir, request.stack)
    settings = stack_settings(path).with_scaling(request.scaling, source=str(path))
    violations = guardrails.check_plan(request.scaling, settings)
    if violations:
        raise UserInputError(
            f"the policy breaks the guardrails of stack {request.stack}; nothing was changed:\n"
            + guardrails.format_violations(violations)
        )
    region = check_region(settings.region, request.region, str(path))
    conn = conn or AwsConnection(region=region, endpoint_url=request.endpoint_url)
    if conn.region != region:
        raise UserInputError(f"connection region {conn.region} is not the stack's {region}")
    who = conn.caller()
    return settings, conn, who, _resources(request, conn, settings)


def _resources(request: ApplyRequest, conn: AwsConnection, settings: Any) -> StackResources:
    from planner.aws import discovery

    names, scaling, stack = request.names, request.scaling, request.stack
    asg = names.asg
    if scaling.asg is not None and asg is None:
        asg = discovery.find_asg(conn, stack)
        if asg is None:
            raise UserInputError(
                f"the policy scales an auto scaling group but none is tagged "
                f"{discovery.STACK_TAG}={stack} in {conn.region}; deploy the stack or pass "
                "--asg-name; nothing was changed"
            )
    endpoint = names.endpoint
    if scaling.serverless is not None and endpoint is None:
        endpoint = discovery.find_endpoint(conn, stack)
        if endpoint is None:
            raise UserInputError(
                f"the policy scales a SageMaker endpoint but none is tagged "
                f"{discovery.STACK_TAG}={stack}; pass --endpoint-name; nothing was changed"
            )
    cluster = names.cluster
    nodegroups: tuple[str, ...] = ()
    if scaling.eks is not None:
        cluster = cluster or discovery.find_cluster(conn, stack)
        if cluster is not None:
            pools = [p.name for p in settings.gpu_node_pools]
            nodegroups = discovery.nodegroups_for(conn, cluster, pools)
    return StackResources(asg=asg, endpoint=endpoint, cluster=cluster, nodegroups=nodegroups)


def build_plan(
    request: ApplyRequest, conn: AwsConnection, settings: Any, resources: StackResources
) -> tuple[Plan, list[Driver], list[str]]:
    """The drivers of the stack's resources, the diff against the intent, and notes."""
    from planner.apply import intent
    from planner.aws import appscaling, asg, eks

    scaling = request.scaling
    notes = intent.IntentNotes()
    drivers: list[Driver] = []
    wanted: intent.Intent = {}
    if resources.cluster is not None and resources.nodegroups:
        groups = eks.NodegroupScaling(
            conn.client("eks"), resources.cluster, list(resources.nodegroups)
        )
        pools = [
            (ng, p.min_size, p.max_size)
            for ng, p in zip(resources.nodegroups, settings.gpu_node_pools, strict=True)
        ]
        drivers.append(groups)
        wanted.update(intent.nodegroup_intent(resources.cluster, pools, groups.read()))
    elif scaling.eks is not None:
        notes.lines.append(
            "eks: no EKS cluster tagged for this stack (pass --cluster-name); node group "
            "scaling left as it is"
        )
    if scaling.asg is not None and resources.asg is not None:
        client = conn.client("autoscaling")
        capacity = asg.AsgCapacity(client, resources.asg)
        policies = asg.AsgPolicies(client, resources.asg)
        drivers += [
            capacity,
            policies,
            asg.StepAlarms(conn.client("cloudwatch"), policies),
            asg.AsgScheduledActions(client, resources.asg),
        ]
        live = capacity.read()[resources.asg]["DesiredCapacity"]
        wanted.update(intent.asg_intent(resources.asg, scaling.asg, live, request.now, notes))
    if scaling.serverless is not None and resources.endpoint is not None:
        client = conn.client("application-autoscaling")
        resource = appscaling.resource_id(resources.endpoint)
        drivers += [
            appscaling.ScalableTarget(client, resource),
            appscaling.ScalingPolicies(client, resource),
            appscaling.ScheduledActions(client, resource),
        ]
        wanted.update(intent.serverless_intent(resource, scaling.serverless, request.now, notes))
    plan = diff(drivers, wanted)
    return Plan(plan.changes, tuple(notes.lines)), drivers, notes.lines


def check_steps(plan: Plan, scaling: StackScaling, max_step: int | None) -> None:
    """Refuse a plan whose capacity changes break `infra.guardrails.check_change`."""
    from infra import guardrails

    violations = []
    for change in plan.changes:
        if change.kind != "asg.capacity" or change.before is None or change.after is None:
            continue
        assert scaling.asg is not None
        violations += guardrails.check_change(
            f"asg {change.key}",
            int(change.before["DesiredCapacity"]),
            int(change.after["DesiredCapacity"]),
            scaling.asg.bounds,
            max_step,
        )
    if violations:
        raise UserInputError(
            "the apply would break a guardrail; nothing was changed:\n"
            + guardrails.format_violations(violations)
        )


def run_apply(request: ApplyRequest, conn: AwsConnection | None = None) -> ApplyOutcome:
    """Validate, diff and (with `yes`, in active mode) apply; see the module docstring.

    Raises:
        UserInputError: a check refused the apply; nothing was changed.
        ApplyFailed: a change failed; everything before it was restored.
    """
    from planner.apply.inputs import label

    settings, conn, who, resources = prepare(request, conn)
    plan, drivers, notes = build_plan(request, conn, settings, resources)
    check_steps(plan, request.scaling, request.max_step)
    bundle = label(request.scaling)
    mode: Mode = request.mode or (
        "active" if applied_active(request.audit_path, request.stack, bundle) else "shadow"
    )
    outcome = ApplyOutcome(
        plan=plan,
        mode=mode,
        acted=False,
        notes=list(notes),
        resources=resources,
        region=conn.region,
    )
    if not request.yes:
        return outcome
    audit = AuditLog(request.audit_path, who=who, stack=request.stack, bundle=bundle)
    if mode == "shadow":
        # Forecast-only: record what would be set, change nothing.
        for change in plan.changes:
            audit.append(
                "shadow-change",
                mode=mode,
                kind=change.kind,
                key=change.key,
                action=change.action,
                before=change.before,
                after=change.after,
            )
        audit.append("apply-finished", mode=mode, changes=len(plan.changes), acted=False)
        return outcome
    outcome.applied = _act(request, plan, drivers, audit)
    if request.scaling.eks is not None and request.manifests_dir is not None:
        outcome.manifests = _write_manifests(request, settings, audit)
    audit.append("apply-finished", mode=mode, changes=len(outcome.applied), acted=True)
    outcome.acted = True
    return outcome


def _act(request: ApplyRequest, plan: Plan, drivers: list[Driver], audit: AuditLog) -> list[Change]:
    from planner.apply.plan import PlanFailed
    from planner.aws.retry import with_backoff

    audit.append("apply-started", mode="active", changes=len(plan.changes))

    def listen(change: Change, outcome: str) -> None:
        audit.append(
            "change",
            mode="active",
            outcome=outcome,
            kind=change.kind,
            key=change.key,
            action=change.action,
            before=change.before,
            after=change.after,
        )

    def retry(step: Any) -> None:
        with_backoff(step, attempts=request.retry_attempts, base_s=request.retry_base_s)

    try:
        return execute(plan, drivers, listener=listen, retry=retry)
    except PlanFailed as exc:
        audit.append(
            "apply-failed",
            mode="active",
            error=str(exc),
            unrestored=[c.key for c in exc.unrestored],
        )
        raise ApplyFailed(str(exc)) from exc


def _write_manifests(request: ApplyRequest, settings: Any, audit: AuditLog) -> list[Path]:
    from planner.apply import manifests

    assert request.scaling.eks is not None and request.manifests_dir is not None
    written = []
    for manifest in manifests.render(settings.service, request.scaling.eks):
        path, changed = manifests.write(request.manifests_dir, manifest)
        if changed:
            audit.append("manifest-written", mode="active", path=str(path), kind=manifest["kind"])
            written.append(path)
    return written
