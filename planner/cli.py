"""The `planner` command line: simulate, sweep, tune, and the registry of the others.

A thin layer: each command parses flags, calls one orchestration function
(`planner.whatif`, `planner.sweep`, `planner.tune`) and renders what it returns.
The application object, exit codes and consoles are in `planner.cli_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli_app import (
    DEFAULT_ENGINE,
    BackendChoice,
    EngineChoice,
    app,
    guarded,
    stderr,
    stdout,
)
from planner.cli_flags import (
    BinFlag,
    DecisionIntervalFlag,
    InitialReplicasFlag,
    InstanceTypeFlag,
    MaxReplicasFlag,
    MinReplicasFlag,
    SloLatencyFlag,
    SloTargetFlag,
    TimeUnitFlag,
    TraceFormatFlag,
)
from sim.errors import UserInputError

if TYPE_CHECKING:
    from planner.run_setup import RunSetup
    from planner.scenario_input import ClusterOverrides, WorkloadOverrides

__all__ = ["app", "main"]


def _checked_setup(
    scenario: Path | None,
    overrides: WorkloadOverrides,
    policies: list[str] | None,
    seed: int | None,
    cluster: ClusterOverrides | None,
    what: str,
) -> RunSetup:
    """`prepare_run` under a status line, its warnings and pool sizing told on stderr."""
    from planner.run_setup import prepare_run

    with stderr.status(f"checking the scenario, {what} and the trace"):
        setup = prepare_run(scenario, overrides, policies=policies, seed=seed, cluster=cluster)
    for warning in setup.warnings:
        stderr.print(f"warning: {warning}", style="yellow")
    if setup.sizing is not None:
        stderr.print(setup.sizing.note())
    return setup


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command()
@guarded
def simulate(
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario YAML (default: the bundled default scenario).")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option(help="Trace file or directory replacing the workload.")
    ] = None,
    trace_format: TraceFormatFlag = None,
    bin_s: BinFlag = None,
    scale_mean_rps: Annotated[
        float | None, typer.Option(help="Rescale the workload to this mean rate (req/s).")
    ] = None,
    start_h: Annotated[
        float | None, typer.Option(help="Window start, hours from the trace start.")
    ] = None,
    duration_h: Annotated[float | None, typer.Option(help="Window length in hours.")] = None,
    time_unit: TimeUnitFlag = None,
    instance_type: InstanceTypeFlag = None,
    min_replicas: MinReplicasFlag = None,
    max_replicas: MaxReplicasFlag = None,
    initial_replicas: InitialReplicasFlag = None,
    slo_latency_s: SloLatencyFlag = None,
    slo_target: SloTargetFlag = None,
    decision_interval_s: DecisionIntervalFlag = None,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated policy names: presets (`planner policies`), fixed:N, bundle:PATH."
        ),
    ] = None,
    engine: Annotated[EngineChoice, typer.Option(help="Simulation engine.")] = DEFAULT_ENGINE,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed (default: the scenario's).")] = None,
    seeds: Annotated[
        int,
        typer.Option(
            min=1,
            help="Run this many seeds (--seed, --seed + 1, ...) and show each figure's mean "
            "and 95 % interval.",
        ),
    ] = 1,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON to FILE.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report to FILE.html.")
    ] = None,
    plot_dir: Annotated[Path | None, typer.Option(help="Write the plots as PNG here.")] = None,
    decisions: Annotated[
        Path | None,
        typer.Option(help="Write every policy's scaling decisions and their reasons as CSV."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes running policies side by side (default: 1 below 6 h of "
            "traffic, else up to the CPU count). Results do not depend on it.",
        ),
    ] = None,
) -> None:
    """Run policies side by side on a scenario; compare each with the offline optimum."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from planner.atomic import StagedOutputs, check_output_dir, check_output_file
    from planner.cli_flags import cluster_overrides, time_unit_value
    from planner.report.table import whatif_table
    from planner.scenario_input import WorkloadOverrides
    from planner.seeds import SeedsReport, run_seeds, seed_list, seeds_table
    from planner.whatif import run_whatif

    for path, option in ((json_out, "--json"), (report, "--report"), (decisions, "--decisions")):
        if path is not None:
            check_output_file(path, option)
    if plot_dir is not None:
        check_output_dir(plot_dir, "--plot-dir")
    overrides = WorkloadOverrides(
        trace=trace,
        trace_format=trace_format.value if trace_format is not None else None,
        bin_s=bin_s,
        start_h=start_h,
        duration_h=duration_h,
        scale_mean_rps=scale_mean_rps,
        time_unit=time_unit_value(time_unit),
    )
    cluster = cluster_overrides(
        instance_type, min_replicas, max_replicas, slo_latency_s, slo_target,
        decision_interval_s, initial_replicas,
    )  # fmt: skip
    setup = _checked_setup(
        scenario, overrides, _split_names(policies), seed, cluster, "the policies"
    )
    resolved = setup.scenario
    multi: SeedsReport | None = None
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=stderr.console(),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_stage(label: str) -> None:
            bar.update(task, description=label)

        if seeds > 1:
            first = resolved.seed if seed is None else seed
            multi = run_seeds(
                resolved, seed_list(first, seeds), engine=engine.value, workers=workers,
                progress=on_stage,
            )  # fmt: skip
            result = multi.reports[0]
        else:
            result = run_whatif(
                resolved, engine=engine.value, seed=seed, workers=workers, progress=on_stage
            )

    if multi is None:
        stdout.print(whatif_table(result))
    else:
        stdout.print(seeds_table(multi))
        if report is not None or plot_dir is not None or decisions is not None:
            stderr.print(f"the report, plots and decisions show seed {result.seed}, the first")
    staged = StagedOutputs()
    if json_out is not None:
        from planner.report.document import whatif_document

        staged.add_json(
            json_out, whatif_document(result) if multi is None else multi.to_json(whatif_document)
        )
    if decisions is not None:
        from planner.report.decisions import decisions_csv

        staged.add_text(decisions, decisions_csv(result.results))
    if report is not None or plot_dir is not None:
        from planner.report.html import render_html
        from planner.report.plots import render_plots

        plots = render_plots(result)
        if report is not None:
            staged.add_text(report, render_html(result, plots))
        if plot_dir is not None:
            staged.directories.append(plot_dir)
            for name, data in plots.items():
                staged.add(plot_dir / name, data)
    for path in staged.publish():
        stderr.print(f"wrote {path}")


@app.command()
@guarded
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep YAML: scenarios, policies, grid, seeds.")],
    backend: Annotated[BackendChoice, typer.Option(help="Where runs execute.")] = (
        BackendChoice.local
    ),
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --backend ray).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes / local Ray CPUs.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write rows as CSV.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write rows as JSON.")] = None,
    instance_type: InstanceTypeFlag = None,
    min_replicas: MinReplicasFlag = None,
    max_replicas: MaxReplicasFlag = None,
    initial_replicas: InitialReplicasFlag = None,
    slo_latency_s: SloLatencyFlag = None,
    slo_target: SloTargetFlag = None,
    decision_interval_s: DecisionIntervalFlag = None,
) -> None:
    """Run a grid of scenarios x policies x parameters x seeds, locally or on Ray.

    The cluster flags apply to every scenario of the sweep file.
    """
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from planner.atomic import StagedOutputs, check_output_file
    from planner.cli_flags import cluster_overrides
    from planner.executor import make_executor
    from planner.sweep import load_sweep, rows_to_csv, run_sweep
    from planner.sweep_report import sweep_table

    for path, option in ((csv_out, "--csv"), (json_out, "--json")):
        if path is not None:
            check_output_file(path, option)
    cluster = cluster_overrides(
        instance_type, min_replicas, max_replicas, slo_latency_s, slo_target,
        decision_interval_s, initial_replicas,
    )  # fmt: skip
    plan = load_sweep(spec, cluster)
    with (
        make_executor(backend.value, address=address, workers=workers) as executor,
        Progress(
            TextColumn(f"sweep on {backend.value}: runs and oracles done"),
            MofNCompleteColumn(),
            BarColumn(),
            TimeElapsedColumn(),
            console=stderr.console(),
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("runs", total=None)
        rows = run_sweep(
            plan,
            executor,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            workers=workers or os.cpu_count() or 1,
        )
    stdout.print(sweep_table(rows))
    staged = StagedOutputs()
    if csv_out is not None:
        staged.add_text(csv_out, rows_to_csv(rows))
    if json_out is not None:
        staged.add_json(json_out, [row.to_json() for row in rows])
    for path in staged.publish():
        stderr.print(f"wrote {path}")


@app.command()
@guarded
def tune(
    policy: Annotated[str, typer.Option(help="Policy to calibrate (preset name or bundle:PATH).")],
    out: Annotated[Path, typer.Option(help="Bundle root; the bundle goes to OUT/<name>/v<N>.")],
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario YAML (default: the bundled default scenario).")
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(help="Trace file or directory (alone: its own rate, pool sized from it)."),
    ] = None,
    trace_format: TraceFormatFlag = None,
    bin_s: BinFlag = None,
    time_unit: TimeUnitFlag = None,
    scale_mean_rps: Annotated[
        float | None, typer.Option(help="Rescale the scenario's window to this mean (req/s).")
    ] = None,
    instance_type: InstanceTypeFlag = None,
    min_replicas: MinReplicasFlag = None,
    max_replicas: MaxReplicasFlag = None,
    initial_replicas: InitialReplicasFlag = None,
    slo_latency_s: SloLatencyFlag = None,
    slo_target: SloTargetFlag = None,
    decision_interval_s: DecisionIntervalFlag = None,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials.")] = 40,
    train_h: Annotated[
        str | None,
        typer.Option(
            help="Training window START:END, hours from the trace start "
            "(default: the first 2/3 of the scenario's window)."
        ),
    ] = None,
    eval_h: Annotated[
        str | None,
        typer.Option(help="Held-back window START:END in hours (default: the last 1/3)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the TPE sampler, the workload and the runs.")
    ] = 0,
    allow_infeasible: Annotated[
        bool,
        typer.Option(
            help="Write the bundle even when nothing tried meets the SLO (default: exit 3)."
        ),
    ] = False,
) -> None:
    """Calibrate a policy's parameters with optuna; evaluate on a held-back window."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from planner.atomic import check_output_dir
    from planner.cli_flags import cluster_overrides, time_unit_value
    from planner.inputs import resolve_policies
    from planner.scenario_input import WorkloadOverrides, parse_window_h
    from planner.tune import default_windows, tune_policy, write_tuned_bundle
    from planner.tune_report import simulate_command, tune_table
    from planner.tuning_space import tunable

    check_output_dir(out, "--out")
    tunable(resolve_policies([policy])[0])
    overrides = WorkloadOverrides(
        trace=trace,
        trace_format=trace_format.value if trace_format is not None else None,
        bin_s=bin_s,
        scale_mean_rps=scale_mean_rps,
        time_unit=time_unit_value(time_unit),
    )
    cluster = cluster_overrides(
        instance_type, min_replicas, max_replicas, slo_latency_s, slo_target,
        decision_interval_s, initial_replicas,
    )  # fmt: skip
    setup = _checked_setup(scenario, overrides, [policy], seed, cluster, "the policy")
    resolved = setup.scenario
    if (train_h is None) != (eval_h is None):
        raise UserInputError("give both --train-h and --eval-h, or neither (default split 2:1)")
    if train_h is not None and eval_h is not None:
        train, held_back = parse_window_h(train_h, "--train-h"), parse_window_h(eval_h, "--eval-h")
    else:
        train, held_back = default_windows(resolved)
    with Progress(
        TextColumn(f"tuning {policy}: trial"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        console=stderr.console(),
        transient=True,
    ) as bar:
        task = bar.add_task("trials", total=trials)
        outcome = tune_policy(
            resolved,
            policy,
            trials=trials,
            train_window_h=train,
            eval_window_h=held_back,
            seed=seed,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    stdout.print(tune_table(outcome))
    if not outcome.feasible and not allow_infeasible:
        stderr.print(
            "no trial (and not the defaults) met the SLO on the training window, so no bundle "
            "was written; pass --allow-infeasible to write the closest one anyway",
            style="bold red",
        )
        raise typer.Exit(3)
    written = write_tuned_bundle(outcome, out, created_at=datetime.now(UTC))
    trace_args = []
    if trace is not None and trace_format is not None:
        trace_args = ["--trace", str(trace), "--trace-format", trace_format.value]
        trace_args += [] if bin_s is None else ["--bin-s", f"{bin_s:g}"]
        trace_args += [] if overrides.time_unit is None else ["--time-unit", overrides.time_unit]
    command = simulate_command(outcome, written, scenario_path=scenario, trace_args=trace_args)
    stdout.print(
        "the eval rows (and the bundle's, which holds the winner) are what this prints:\n"
        f"  {command}",
        soft_wrap=True,
    )
    stdout.print(f"wrote bundle {written}", soft_wrap=True)


# Commands defined beside what they drive register on `app` when imported here
# (one line each, lazy inside: importing a command module imports no heavy library).
from planner import policies_catalog as _policies_catalog  # noqa: E402, F401
from planner.apply import commands as _apply_commands  # noqa: E402, F401
from planner.apply import control_commands as _control_commands  # noqa: E402, F401
from planner.emit import commands as _emit_commands  # noqa: E402, F401
from planner.retrain import commands as _retrain_commands  # noqa: E402, F401
from planner.train import commands as _train_commands  # noqa: E402, F401


def main() -> None:
    """Console-script entry point (`planner`)."""
    app()
