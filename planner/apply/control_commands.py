"""`planner control` (a bundle's policy online on a live ASG) and `planner shadow-report`.

The controller itself is `planner.control` (a library with no CLI); these commands
and `planner apply --mode shadow` build it through `make_controller`. A spillover
policy (or an RL policy over one) also drives the stack's serverless endpoint's
provisioned concurrency (`spillover_control`).
"""

from __future__ import annotations

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
    resolve_audit,
)
from planner.cli_app import app, guarded, stdout
from sim.errors import UserInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from infra.settings import ServerlessSettings, StackSettings
    from planner.aws.session import AwsConnection
    from planner.control.live import LiveController, Mode, SpilloverControl, StepRecord
    from policies.spec import PolicySpecBase
    from policies.spillover import SpilloverSpec
    from sim.contract import Policy, PolicyContext
    from sim.control import ActuationRecord
    from sim.workload.model import RateEnvelope

#: EC2 Auto Scaling's default instance warmup (EC2 Auto Scaling user guide): the
#: provisioning delay policies assume unless told.
DEFAULT_PROVISIONING_S = 300.0


def live_context(
    interval_s: float,
    floor: int,
    ceiling: int,
    replica_capacity_rps: float,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    slo_latency_s: float = 30.0,
    slo_target: float = 0.95,
    history: RateEnvelope | None = None,
    spillover_mean_service_s: float | None = None,
) -> PolicyContext:
    """What a policy may know before a live run: the flags, as the simulator's context,
    and the group's demand history for a policy that fits a forecast."""
    from sim.contract import PolicyContext

    return PolicyContext(
        interval_s=interval_s,
        min_replicas=floor,
        max_replicas=ceiling,
        replica_capacity_rps=replica_capacity_rps,
        provisioning_s=provisioning_s,
        slo_latency_s=slo_latency_s,
        slo_target=slo_target,
        mean_service_s=1.0 / replica_capacity_rps if replica_capacity_rps > 0 else 1.0,
        max_batch=1,
        history=history,
        spillover_mean_service_s=spillover_mean_service_s,
    )


def read_history(
    conn: AwsConnection, group: str, spec: PolicySpecBase, days: float | None
) -> RateEnvelope | None:
    """The group's demand history for `spec` (`planner.control.history`), its note printed."""
    from planner.control.history import history_days, live_history

    days = history_days(spec, days)
    if days <= 0:
        return None  # nothing to fit: say nothing either
    found = live_history(conn.client("cloudwatch"), group, days, datetime.now(UTC))
    stdout.print(found.note, markup=False, highlight=False)
    return found.envelope


def make_controller(
    *,
    conn: AwsConnection,
    group: str,
    policy: Policy,
    mode: Mode,
    floor: int,
    ceiling: int,
    context: PolicyContext,
    record: Path | None,
    max_step: int | None = None,
    stale_s: float = 300.0,
    on_change: Callable[[ActuationRecord], None] | None = None,
    spillover: SpilloverControl | None = None,
) -> LiveController:
    """The live controller of one Auto Scaling group (and a spillover's serverless variant)."""
    from planner.aws.actuator import AsgActuator
    from planner.control.live import LiveController

    return LiveController(
        policy=policy,
        group=AsgActuator(conn.client("autoscaling"), group, on_change=on_change),
        cloudwatch=conn.client("cloudwatch"),
        context=context,
        mode=mode,
        floor=floor,
        ceiling=ceiling,
        max_step=max_step,
        record_path=record,
        stale_s=stale_s,
        spillover=spillover,
    )


def spillover_spec(spec: PolicySpecBase) -> SpilloverSpec | None:
    """The spillover spec that decides the serverless target: `spec`, or the base an RL
    policy adjusts (it passes the base's spillover target through); None otherwise."""
    from policies.spec import PolicySpecBase
    from policies.spillover import SpilloverSpec

    found: object = spec
    while isinstance(found, PolicySpecBase):
        if isinstance(found, SpilloverSpec):
            return found
        found = getattr(found, "base", None)
    return None


def model_service_s(serverless: ServerlessSettings) -> tuple[float, str]:
    """Mean seconds a request holds one of the endpoint's instances, from the simulator's
    CPU model of what it serves, and how that was found.

    The tokens per request are the simulator's default profile (Splitwise's
    conversation trace), not the live traffic's: the stack does not know them.

    Raises:
        UserInputError: The endpoint serves a model the simulator has no CPU times for.
    """
    from sim.capacity.pools import ServerlessEndpoint
    from sim.errors import StackConfigError
    from sim.workload.model import TokenProfile

    try:
        endpoint = ServerlessEndpoint.model_validate(serverless.sim_spillover())
    except StackConfigError as error:
        raise UserInputError(f"{error}; or give --serverless-service-s") from None
    tokens = TokenProfile()
    seconds = endpoint.service.mean_service_s(tokens, 1)
    basis = (
        f"the simulator's CPU model of {endpoint.model} at {endpoint.memory_gb} GB, for "
        f"{tokens.input_mean:,.0f} prompt and {tokens.output_mean:,.0f} output tokens"
    )
    return seconds, basis


def spillover_control(
    *,
    conn: AwsConnection,
    stack: str,
    settings: StackSettings,
    endpoint_name: str | None,
    mode: Mode,
    max_step: int | None,
    on_change: Callable[[ActuationRecord], None] | None,
) -> SpilloverControl:
    """The stack's serverless variant as the controller's second target.

    Bounds: 1 (SageMaker's least provisioned concurrency) to the stack's
    `serverless.max_concurrency`; the variant's own MaxConcurrency narrows it live.

    Raises:
        UserInputError: the endpoint is not found (by tag or by --endpoint-name), has no
            serverless `AllTraffic` variant, or, in active mode, Application Auto Scaling
            also scales its provisioned concurrency.
    """
    from planner.aws import discovery
    from planner.aws.sagemaker import (
        MIN_PROVISIONED_CONCURRENCY,
        EndpointNotFound,
        ServerlessVariantActuator,
        competing_scaling,
    )
    from planner.control.live import SpilloverControl

    assert settings.serverless is not None
    name = discovery.serverless_endpoint(conn, stack, endpoint_name)
    variant = ServerlessVariantActuator(conn.client("sagemaker"), name, on_change=on_change)
    try:
        variant.refresh()
    except EndpointNotFound as exc:
        raise UserInputError(
            f"{exc}; the spillover policy scales the serverless endpoint of stack {stack}: "
            "check --endpoint-name (or the scaleplan:stack tag); nothing was changed"
        ) from None
    if mode == "active":
        competing = competing_scaling(conn.client("application-autoscaling"), name)
        if competing:
            raise UserInputError(
                f"Application Auto Scaling also sets the provisioned concurrency of {name} "
                f"({', '.join(competing)}) and would undo the controller's changes: apply a "
                "policy without a serverless target first, or run --mode shadow; nothing "
                "was changed"
            )
    return SpilloverControl(
        variant,
        floor=MIN_PROVISIONED_CONCURRENCY,
        ceiling=settings.serverless.max_concurrency,
        max_step=max_step,
    )


@app.command()
@guarded
def control(
    bundle: Annotated[Path, typer.Option(help="Policy bundle whose policy decides.")],
    stack: Annotated[str, typer.Option(help="Stack name: reads Pulumi.<stack>.yaml.")],
    interval_s: Annotated[float, typer.Option(min=1.0, help="Seconds between decisions.")],
    replica_capacity_rps: Annotated[
        float, typer.Option(min=0.0, help="Requests/s one instance serves at a full batch.")
    ],
    target: Annotated[TargetChoice, typer.Option(help="Where to act.")] = TargetChoice.aws,
    once: Annotated[bool, typer.Option("--once", help="Decide once and stop.")] = False,
    duration_s: Annotated[
        float | None, typer.Option(min=1.0, help="Stop after this many seconds.")
    ] = None,
    mode: Annotated[
        ModeChoice | None,
        typer.Option(help="shadow records only; active acts (default: shadow until applied)."),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Append every decision here (JSON lines).")
    ] = None,
    max_step: Annotated[
        int | None, typer.Option(min=1, help="Largest capacity change in one decision.")
    ] = None,
    provisioning_s: Annotated[
        float, typer.Option(min=0.0, help="Mean boot-to-ready time of an instance.")
    ] = DEFAULT_PROVISIONING_S,
    slo_latency_s: Annotated[float, typer.Option(min=0.0, help="Latency objective (s).")] = 30.0,
    slo_target: Annotated[float, typer.Option(min=0.0, max=1.0, help="SLO attainment.")] = 0.95,
    stale_s: Annotated[
        float, typer.Option(min=0.0, help="Hold capacity when demand is older than this.")
    ] = 300.0,
    history_days: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Days of the group's RequestCount a forecasting policy fits on before its "
            "first decision (default 14 for predictive, anomaly, spillover and RL over one; "
            "0 reads none).",
        ),
    ] = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
    project_dir: ProjectDir = Path("."),
    audit_log: AuditPath = None,
    asg_name: Annotated[
        str | None, typer.Option(help="Auto Scaling group (default: by tag).")
    ] = None,
    endpoint_name: Annotated[
        str | None,
        typer.Option(help="Spillover policy: the serverless SageMaker endpoint (default: by tag)."),
    ] = None,
    serverless_service_s: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Spillover policy: seconds one request holds a serverless instance (default: "
            "the bundle's serverless_service_s, else the simulator's CPU model of the "
            "stack's serverless model).",
        ),
    ] = None,
    spillover_max_step: Annotated[
        int | None,
        typer.Option(min=1, help="Largest provisioned-concurrency change in one decision."),
    ] = None,
) -> None:
    """Run a policy against live metrics through the simulator's control loop (bounded)."""
    import signal
    import threading

    from planner.apply.audit import AuditLog, applied_active
    from planner.apply.inputs import stack_file, stack_settings
    from planner.aws import discovery
    from planner.aws.session import AwsConnection, check_region
    from policies.bundle import read_bundle

    if once == (duration_s is not None):
        raise UserInputError("give exactly one of --once or --duration-s N (the loop is bounded)")
    path = stack_file(project_dir, stack)
    settings = stack_settings(path)
    loaded = read_bundle(bundle)
    label = f"{loaded.name}@{loaded.version}"
    region = check_region(settings.region, region, str(path))
    conn = AwsConnection(region=region, endpoint_url=endpoint_url)
    who = conn.caller()
    group = asg_name or discovery.find_asg(conn, stack)
    if group is None:
        raise UserInputError(
            f"no auto scaling group tagged {discovery.STACK_TAG}={stack}; pass --asg-name"
        )
    if settings.asg is None:
        raise UserInputError(f"{path}: the stack has no asg; planner control drives an ASG")
    # The stack's envelope; the live group's own bounds (which `planner apply` set from
    # the emitted policy) narrow it further at every decision (GuardedActuator).
    floor, ceiling = settings.asg.min_size, settings.asg.max_size
    audit_path = resolve_audit(project_dir, audit_log)
    chosen = (
        mode.value
        if mode is not None
        else ("active" if applied_active(audit_path, stack, label) else "shadow")
    )
    audit = AuditLog(audit_path, who=who, stack=stack, bundle=label)

    def on_change(change: ActuationRecord) -> None:
        audit.append("control-change", mode=chosen, **change.__dict__)

    spill_spec = spillover_spec(loaded.spec)
    spillover = None
    spill_service_s = None
    if spill_spec is not None:
        if settings.serverless is None:
            stdout.print(
                f"note: {path} has no serverless endpoint (scaleplan:serverless): the policy's "
                "spillover concurrency is decided but not acted on",
                markup=False,
                highlight=False,
            )
        else:
            spill_service_s = serverless_service_s or spill_spec.serverless_service_s
            if spill_service_s is None:
                spill_service_s, basis = model_service_s(settings.serverless)
                stdout.print(
                    f"serverless service time {spill_service_s:.1f} s a request: {basis} "
                    "(--serverless-service-s to give the endpoint's measured ModelLatency)",
                    markup=False,
                    highlight=False,
                )
            spillover = spillover_control(
                conn=conn,
                stack=stack,
                settings=settings,
                endpoint_name=endpoint_name,
                mode=chosen,  # type: ignore[arg-type]
                max_step=spillover_max_step,
                on_change=on_change,
            )

    controller = make_controller(
        conn=conn,
        group=group,
        policy=loaded.spec.build(),
        mode=chosen,  # type: ignore[arg-type]
        floor=floor,
        ceiling=ceiling,
        context=live_context(
            interval_s,
            floor,
            ceiling,
            replica_capacity_rps,
            provisioning_s,
            slo_latency_s,
            slo_target,
            read_history(conn, group, loaded.spec, history_days),
            spill_service_s,
        ),
        record=record,
        max_step=max_step,
        stale_s=stale_s,
        on_change=on_change,
        spillover=spillover,
    )
    stop = threading.Event()
    received: list[str] = []

    def on_signal(number: int, _frame: object) -> None:
        received.append(signal.Signals(number).name)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    audit.append(
        "control-started",
        mode=chosen,
        group=group,
        interval_s=interval_s,
        **({} if spillover is None else {"endpoint": spillover.variant.target}),
    )
    try:
        steps = controller.run(
            iterations=1 if once else None,
            duration_s=duration_s,
            stop=stop,
            on_step=lambda r: stdout.print(step_line(r), markup=False, highlight=False),
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    why = f"stopped on {received[0]}" if received else "finished"
    audit.append("control-stopped", mode=chosen, steps=steps, why=why)
    stdout.print(
        f"{why} after {steps} decision(s) ({chosen} mode) at {datetime.now(UTC):%H:%M:%SZ}"
    )


def step_line(record: StepRecord) -> str:
    """One decision as the command prints it."""
    spill = ""
    if record.spillover_running is not None:
        spill = (
            f", spillover concurrency running {record.spillover_running}, "
            f"policy {record.spillover_would_set}"
        )
    return (
        f"{record.time} {record.mode}: running {record.running_desired}, policy "
        f"{record.would_set}{spill} ({record.reason})"
    )


@app.command("shadow-report")
@guarded
def shadow_report(
    record: Annotated[Path, typer.Option(help="Shadow record (JSON lines) from planner control.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores.")] = None,
) -> None:
    """Score a shadow run against what ran: capacity-hours, under-provisioned intervals, actions."""
    import dataclasses
    import json

    from planner.control.shadow_report import read_records, score

    result = score(read_records(record))
    rows: list[tuple[str, Any]] = [
        ("intervals", result.intervals),
        ("held (missing or stale metrics)", result.held),
    ]
    stdout.print(f"{'':<24}{'shadow (candidate)':>20}{'running':>12}")
    for label, field in (
        ("capacity-hours", "capacity_hours"),
        ("under-provisioned", "under_provisioned"),
        ("actions", "actions"),
    ):
        a, b = getattr(result.shadow, field), getattr(result.running, field)
        stdout.print(f"{label:<24}{a:>20g}{b:>12g}")
    if result.spillover_shadow is not None and result.spillover_running is not None:
        for label, field in (
            ("spillover conc.-hours", "concurrency_hours"),
            ("spillover actions", "actions"),
        ):
            a = getattr(result.spillover_shadow, field)
            b = getattr(result.spillover_running, field)
            stdout.print(f"{label:<24}{a:>20g}{b:>12g}")
    for label, value in rows:
        stdout.print(f"{label}: {value}")
    if json_out is not None:
        from planner.atomic import write_bytes_atomic

        text = json.dumps(dataclasses.asdict(result), indent=2) + "\n"
        write_bytes_atomic(json_out, text.encode("utf-8"))
