"""`planner retrain` (the scheduled job) and `planner recommend` (a person with a trace).

Both run `planner.retrain.pipeline.run_contest`; retrain adds the store, the lock,
promotion and optionally emit/apply (`planner.retrain.job`), recommend writes the
winner's bundle under `--out` and prints its path as the last word.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli_app import (
    BackendChoice,
    EngineChoice,
    app,
    guarded,
    stderr,
    stdout,
)
from planner.cli_flags import (
    BinFlag,
    InstanceTypeFlag,
    MaxReplicasFlag,
    MinReplicasFlag,
    SloLatencyFlag,
    SloTargetFlag,
    TimeUnitFlag,
    TraceFormatFlag,
    cluster_overrides,
)
from sim.errors import UserInputError

if TYPE_CHECKING:
    from datetime import datetime

    from planner.retrain.pipeline import ContestOutcome, ContestSettings
    from planner.retrain.scoring import Spread
    from policies.stack_config import StackScaling


class SourceChoice(StrEnum):
    cloudwatch = "cloudwatch"
    prometheus = "prometheus"
    trace = "trace"


class TargetPool(StrEnum):
    eks = "eks"
    asg = "asg"


class ModeFlag(StrEnum):
    shadow = "shadow"
    active = "active"


TrialsFlag = Annotated[int, typer.Option(min=1, help="Optuna trials per policy family.")]
SeedsFlag = Annotated[int, typer.Option(min=1, help="Seeds each candidate is scored on.")]
FamiliesFlag = Annotated[
    str | None, typer.Option(help="Families to tune, comma-separated (default: all that apply).")
]
HeadroomFlag = Annotated[
    float,
    typer.Option(help="Tune for the SLO target plus this share (0.01: one point above)."),
]
ValidationFlag = Annotated[
    float,
    typer.Option(
        help="Newest share of the training window each family's finalists are checked on (0: none)."
    ),
]
RlBudgetFlag = Annotated[
    float, typer.Option(min=0.0, help="Minutes of RL training (0: no RL challenger).")
]
EngineFlag = Annotated[EngineChoice, typer.Option(help="Engine the candidates are scored in.")]
WorkersFlag = Annotated[int | None, typer.Option(min=1, help="Worker processes / Ray CPUs.")]
BackendFlag = Annotated[BackendChoice, typer.Option(help="Where tuning and scoring run.")]
TraceFlag = Annotated[Path | None, typer.Option(help="Trace file or directory.")]


def _contest_settings(
    trials: int,
    seeds: int,
    families: str | None,
    margin: float,
    rl_budget_min: float,
    engine: EngineChoice,
    holdout_share: float,
    train_window_h: tuple[float, float] | None = None,
    tuning_headroom: float = 0.0,
    validation_share: float = 0.2,
) -> ContestSettings:
    from planner.retrain.pipeline import ContestSettings

    settings = ContestSettings(
        trials=trials,
        seeds=seeds,
        families=None if families is None else [f.strip() for f in families.split(",") if f],
        margin=margin,
        rl_budget_s=rl_budget_min * 60.0,
        engine=engine.value,
        holdout_share=holdout_share,
        train_window_h=train_window_h,
        tuning_headroom=tuning_headroom,
        validation_share=validation_share,
    )
    settings.check()
    return settings


@app.command()
@guarded
def retrain(
    source: Annotated[SourceChoice, typer.Option(help="Where the history comes from.")],
    store: Annotated[str, typer.Option(help="Policy store: a directory or s3://bucket/prefix.")],
    days: Annotated[float, typer.Option(min=0.0, help="Days of history to pull.")] = 14.0,
    stack: Annotated[
        str | None,
        typer.Option(help="Stack: its pools and scaleplan:retraining.slo (Pulumi.<stack>.yaml)."),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario YAML for the cluster and SLO (instead of --stack)."),
    ] = None,
    project_dir: Annotated[Path, typer.Option(help="Where Pulumi.<stack>.yaml is.")] = Path("."),
    target: Annotated[
        TargetPool | None, typer.Option(help="Which pool of the stack to plan (default eks).")
    ] = None,
    instance_type: InstanceTypeFlag = None,
    min_replicas: MinReplicasFlag = None,
    max_replicas: MaxReplicasFlag = None,
    slo_latency_s: SloLatencyFlag = None,
    slo_target: SloTargetFlag = None,
    trace: TraceFlag = None,
    trace_format: TraceFormatFlag = None,
    bin_s: BinFlag = None,
    time_unit: TimeUnitFlag = None,
    asg_name: Annotated[
        str | None, typer.Option(help="CloudWatch: the Auto Scaling group.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (CloudWatch, S3 store).")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="AWS endpoint override (a test server).")
    ] = None,
    period_s: Annotated[
        int | None, typer.Option(min=60, help="CloudWatch period (default: finest kept).")
    ] = None,
    prometheus_url: Annotated[str | None, typer.Option(help="Prometheus base URL.")] = None,
    demand_query: Annotated[
        str | None, typer.Option(help="PromQL of arrivals per second (one series).")
    ] = None,
    capacity_query: Annotated[
        str | None,
        typer.Option(help="PromQL of ready replicas (one series; default: vLLM targets up)."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Prometheus: namespace of the vLLM servers (default: the stack's)."),
    ] = None,
    step_s: Annotated[float, typer.Option(min=1.0, help="Prometheus query step (s).")] = 60.0,
    holdout_share: Annotated[
        float, typer.Option(help="Newest share of the history kept for scoring.")
    ] = 0.25,
    trials: TrialsFlag = 20,
    seeds: SeedsFlag = 3,
    families: FamiliesFlag = None,
    margin: Annotated[
        float, typer.Option(help="How much cheaper a challenger must be to replace the champion.")
    ] = 0.05,
    rl_budget_min: RlBudgetFlag = 0.0,
    tuning_headroom: HeadroomFlag = 0.0,
    validation_share: ValidationFlag = 0.2,
    engine: EngineFlag = EngineChoice.fluid,
    emit: Annotated[
        bool, typer.Option(help="Write a promoted champion into Pulumi.<stack>.yaml.")
    ] = False,
    apply: Annotated[
        bool, typer.Option(help="Apply a promoted champion to the live stack (with --yes).")
    ] = False,
    yes: Annotated[bool, typer.Option(help="Act: without it --apply is a dry run.")] = False,
    mode: Annotated[
        ModeFlag | None, typer.Option(help="Apply mode (default: shadow for a new champion).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write report.json / report.html here.")
    ] = None,
    backend: BackendFlag = BackendChoice.local,
    workers: WorkersFlag = None,
) -> None:
    """Pull fresh metrics, tune every policy family and RL, promote only a better champion."""
    from planner.executor import make_executor
    from planner.retrain.inputs import HistorySource
    from planner.retrain.job import RetrainRequest, run_retrain
    from planner.store import open_store

    if (emit or apply) and stack is None:
        raise UserInputError("--emit and --apply need --stack (the stack to write or apply to)")
    if mode is not None and not apply:
        raise UserInputError("--mode applies with --apply")
    request = RetrainRequest(
        source=HistorySource(
            kind=source.value,
            days=days,
            trace=trace,
            trace_format=None if trace_format is None else trace_format.value,
            bin_s=bin_s,
            time_unit=time_unit,
            asg_name=asg_name,
            region=region,
            endpoint_url=endpoint_url,
            period_s=period_s,
            prometheus_url=prometheus_url,
            demand_query=demand_query,
            capacity_query=capacity_query,
            namespace=namespace,
            step_s=step_s,
        ),
        settings=_contest_settings(
            trials,
            seeds,
            families,
            margin,
            rl_budget_min,
            engine,
            holdout_share,
            tuning_headroom=tuning_headroom,
            validation_share=validation_share,
        ),
        store_url=store,
        stack=stack,
        scenario_path=scenario,
        cluster=cluster_overrides(
            instance_type, min_replicas, max_replicas, slo_latency_s, slo_target, None
        ),
        project_dir=project_dir,
        target=None if target is None else target.value,
        out_dir=out,
        region=region,
        endpoint_url=endpoint_url,
        refresh_champion=emit or apply,
    )
    request.check()
    connection = None
    if store.startswith("s3://"):
        from planner.aws.session import AwsConnection

        connection = AwsConnection(region=region or "us-east-1", endpoint_url=endpoint_url)
    policy_store = open_store(store, connection)
    with (
        make_executor(backend.value, workers=workers) as executor,
        stderr.status("retraining") as status,
    ):
        result = run_retrain(request, policy_store, executor, progress=status.update)
    if result.cached:
        stdout.print(
            f"run {result.run_id} already decided on this history: {result.action} "
            f"({result.reason}); champion {result.champion}"
        )
        return
    if result.outcome is not None:
        stdout.print(_table(result.outcome))
    stdout.print(f"{result.action}: {result.reason}", markup=False, highlight=False)
    if result.report_dir is not None:
        stderr.print(
            f"report: {result.report_dir / 'report.html'} "
            f"(and in the store under runs/{result.run_id}/)"
        )
    compiled = result.promoted_bundle or result.refreshed_bundle
    if result.scaling is not None and compiled is not None and stack is not None:
        if result.refreshed_bundle is not None:
            stdout.print(
                f"champion {result.champion} kept: compiled again from now (a forecast "
                "schedule lasts 48 hours; native constructs come out unchanged)"
            )
        _emit_and_apply(
            compiled,
            result.scaling,
            stack,
            project_dir,
            (emit, apply, yes),
            mode,
            region,
            endpoint_url,
        )
    stdout.print(f"champion of {stack or 'the scenario'}: {result.champion}")


def _emit_and_apply(
    bundle: Path,
    scaling: StackScaling,
    stack: str,
    project_dir: Path,
    actions: tuple[bool, bool, bool],
    mode: ModeFlag | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """`--emit` writes the stack file; `--apply` applies (shadow unless --mode active)."""
    from datetime import UTC, datetime

    from planner.apply.inputs import stack_file

    emit, apply, yes = actions
    now = datetime.now(UTC)
    path = stack_file(project_dir, stack)
    if emit:
        from planner.emit.stack_file import render, write

        write(path, render(path.read_text(), scaling, str(path)))
        stdout.print(f"wrote {path} (scaleplan:scaling from {bundle})")
    if apply:
        from planner.apply.options import resolve_audit
        from planner.apply.service import ApplyRequest, run_apply

        outcome = run_apply(
            ApplyRequest(
                stack=stack,
                project_dir=project_dir,
                scaling=scaling,
                audit_path=resolve_audit(project_dir, None),
                now=now,
                yes=yes,
                mode=None if mode is None else mode.value,
                region=region,
                endpoint_url=endpoint_url,
            )
        )
        stdout.print(outcome.plan.describe(), markup=False, highlight=False)
        acted = "applied" if outcome.acted else f"{outcome.mode}: nothing changed"
        stdout.print(
            f"apply ({outcome.mode} mode): {acted}" if yes else "apply: dry run (add --yes)"
        )


def _attainment(spread: Spread) -> str:
    return f"{spread.mean:.2%} [{spread.low:.2%}, {spread.high:.2%}]"


def _table(outcome: ContestOutcome) -> object:
    from rich.table import Table

    table = Table(
        title=f"scored on hours {outcome.windows.score[0]:g}+{outcome.windows.score[1]:g}"
    )
    for column in ("candidate", "role", "SLO", "attainment", "cost USD", "x oracle"):
        table.add_column(column, justify="left" if column in ("candidate", "role") else "right")
    for score in outcome.board.ranked():
        ratio = score.cost_vs_oracle
        table.add_row(
            score.candidate.label,
            score.candidate.role,
            "meets" if score.meets_slo else "misses",
            _attainment(score.slo_attainment),
            f"{score.cost_usd.mean:,.2f}",
            "n/a" if ratio is None else f"{ratio.mean:.2f}",
        )
    return table


@app.command()
@guarded
def recommend(
    out: Annotated[Path, typer.Option(help="The winner's bundle goes to OUT/<name>/v<N>.")],
    trace: TraceFlag = None,
    trace_format: TraceFormatFlag = None,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario YAML (its trace, cluster and SLO).")
    ] = None,
    bin_s: BinFlag = None,
    time_unit: TimeUnitFlag = None,
    scale_mean_rps: Annotated[
        float | None, typer.Option(help="Rescale the trace to this mean rate (req/s).")
    ] = None,
    train_h: Annotated[
        str | None,
        typer.Option(
            help="Training window START:END in hours (default: all but the last quarter)."
        ),
    ] = None,
    instance_type: InstanceTypeFlag = None,
    min_replicas: MinReplicasFlag = None,
    max_replicas: MaxReplicasFlag = None,
    slo_latency_s: SloLatencyFlag = None,
    slo_target: SloTargetFlag = None,
    trials: TrialsFlag = 20,
    seeds: SeedsFlag = 3,
    families: FamiliesFlag = None,
    rl_budget_min: RlBudgetFlag = 0.0,
    tuning_headroom: HeadroomFlag = 0.0,
    validation_share: ValidationFlag = 0.2,
    engine: EngineFlag = EngineChoice.fluid,
    backend: BackendFlag = BackendChoice.local,
    workers: WorkersFlag = None,
) -> None:
    """Which policy, with which parameters, for this traffic: the winner's bundle under --out."""
    from datetime import UTC, datetime

    from planner.atomic import check_output_dir
    from planner.executor import make_executor
    from planner.retrain.job import write_winner_bundle
    from planner.retrain.pipeline import run_contest
    from planner.run_setup import prepare_run
    from planner.scenario_input import WorkloadOverrides, parse_window_h

    if trace is None and scenario is None:
        raise UserInputError("give --trace F --trace-format X, or --scenario FILE")
    check_output_dir(out, "--out")
    settings = _contest_settings(
        trials,
        seeds,
        families,
        0.0,
        rl_budget_min,
        engine,
        0.25,
        None if train_h is None else parse_window_h(train_h, "--train-h"),
        tuning_headroom,
        validation_share,
    )
    overrides = WorkloadOverrides(
        trace=trace,
        trace_format=None if trace_format is None else trace_format.value,
        bin_s=bin_s,
        scale_mean_rps=scale_mean_rps,
        time_unit=time_unit,
    )
    cluster = cluster_overrides(
        instance_type, min_replicas, max_replicas, slo_latency_s, slo_target, None
    )
    setup = prepare_run(scenario, overrides, cluster=cluster)
    if setup.sizing is not None:
        stderr.print(setup.sizing.note())
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="scaleplan-recommend-"))
    with (
        make_executor(backend.value, workers=workers) as executor,
        stderr.status("recommending") as status,
    ):
        outcome = run_contest(
            setup.scenario, settings, executor, workdir=workdir, progress=status.update
        )
    stdout.print(_table(outcome))
    decision = outcome.decision
    best = decision.best_challenger
    if best is None:
        raise UserInputError("no candidate could be scored")
    for remedy in outcome.remedies:
        stdout.print(
            f"would help: {remedy.change}: {remedy.policy} {remedy.slo_attainment:.2%} at "
            f"USD {remedy.cost_usd:,.2f}",
            markup=False,
        )
    now = datetime.now(UTC)
    written = write_winner_bundle(outcome, out, now)
    report_dir = out / "reports" / f"{written.parent.name}-{written.name}"
    _write_recommend_report(outcome, settings, now, report_dir, str(written))
    stderr.print(f"report: {report_dir / 'report.html'}")
    verdict = "meets the SLO" if best.meets_slo else "misses the SLO (closest candidate)"
    ratio = best.cost_vs_oracle
    vs = "" if ratio is None else f", {ratio.mean:.2f}x the oracle"
    stdout.print(
        f"recommended: {best.candidate.label} ({verdict}{vs}); bundle: {written}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _write_recommend_report(
    outcome: ContestOutcome,
    settings: ContestSettings,
    now: datetime,
    report_dir: Path,
    bundle: str,
) -> None:
    """The contest's report (JSON and HTML) beside the bundles, as retrain writes it."""
    import hashlib

    from planner.retrain.inputs import PulledHistory
    from planner.retrain.report import build_report, write_report

    workload = outcome.scenario.workload
    source = workload.path or workload.format
    history = PulledHistory(
        trace=Path(source),
        trace_format=workload.format,
        bin_s=workload.bin_s,
        time_unit=workload.time_unit,
        start_h=workload.start_h,
        label=f"trace:{source}",
        problems=[],
        digest="",
    )
    decision = outcome.decision
    winner = decision.best_challenger
    report = build_report(
        run_id=hashlib.sha256(bundle.encode()).hexdigest()[:16],
        created_at=now,
        key=outcome.scenario.name,
        history=history,
        scenario=outcome.scenario,
        settings=settings,
        outcome=outcome,
        action="recommend",
        reason=decision.reason
        if winner is None
        else f"{winner.candidate.label}: {decision.reason}",
        champion_before=None,
        champion_after=bundle,
        notes=[],
    )
    write_report(report, report_dir)
