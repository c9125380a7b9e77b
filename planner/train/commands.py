"""`planner train`: the command line of the training pipeline (`planner.train.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli_app import BackendChoice, app, guarded, stderr, stdout
from planner.cli_flags import BinFlag, TraceFormatFlag
from sim.errors import UserInputError


@app.command()
@guarded
def train(
    algo: Annotated[str, typer.Option(help="Stable-Baselines3 algorithm: ppo or dqn.")],
    out: Annotated[Path, typer.Option(help="Bundle root; the bundle goes to OUT/<name>/v<N>.")],
    trace: Annotated[
        Path | None, typer.Option(help="Trace file or directory (default: the scenario's).")
    ] = None,
    trace_format: TraceFormatFlag = None,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario YAML: cluster, SLO (default: the bundled one).")
    ] = None,
    bin_s: BinFlag = None,
    scale_mean_rps: Annotated[
        float | None, typer.Option(help="Rescale the trace to this mean rate (req/s).")
    ] = None,
    timesteps: Annotated[int, typer.Option(min=1, help="Env steps of training per seed.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed of the first training run.")] = 0,
    seeds: Annotated[
        int, typer.Option(min=1, help="Training seeds (SEED, SEED+1, ...); the best is kept.")
    ] = 1,
    eval_seeds: Annotated[int, typer.Option(min=1, help="Evaluation seeds.")] = 5,
    base: Annotated[
        str, typer.Option(help="Base policy the model adjusts: predictive, threshold or hpa.")
    ] = "threshold",
    action_mode: Annotated[
        str,
        typer.Option(
            help="residual-change (adjust the base's change), residual (scale the base's "
            "level; compounds while the base holds) or absolute."
        ),
    ] = "residual-change",
    floor_mode: Annotated[
        str,
        typer.Option(
            help="release (the base sees its own level; the safety floor lifts above it "
            "while demand needs it) or hold (the base sees the lifted capacity and keeps it)."
        ),
    ] = "release",
    episode_h: Annotated[float, typer.Option(min=0.01, help="Hours of traffic per episode.")] = 6.0,
    train_h: Annotated[
        str | None,
        typer.Option(help="Training window START:END in hours (default: the first 2/3)."),
    ] = None,
    eval_h: Annotated[
        str | None, typer.Option(help="Held-back window START:END in hours (default: last 1/3).")
    ] = None,
    tune_trials: Annotated[
        int, typer.Option(min=1, help="Optuna trials calibrating the threshold baseline.")
    ] = 20,
    tune_base: Annotated[
        bool,
        typer.Option(
            help="Tune the base family on the training window first (--tune-trials trials) "
            "and train the model on the tuned base."
        ),
    ] = False,
    checkpoints: Annotated[
        int,
        typer.Option(min=0, help="Validation scores during training; the best checkpoint is kept."),
    ] = 4,
    backend: Annotated[BackendChoice, typer.Option(help="Where the seeds train.")] = (
        BackendChoice.local
    ),
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --backend ray).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes / local Ray CPUs.")
    ] = None,
) -> None:
    """Train a learned scaling policy (SB3) and compare it with the calibrated baselines."""
    from datetime import UTC, datetime

    from planner.atomic import check_output_dir
    from planner.executor import make_executor
    from planner.scenario_input import WorkloadOverrides, parse_window_h, resolve_scenario
    from planner.train.config import ALGOS, BASES, TrainConfig
    from planner.train.pipeline import Windows, train_policy, write_rl_bundle
    from planner.train.report import train_table
    from planner.tune import default_windows
    from sim.gym.actions import ACTION_MODES, FLOOR_MODES

    if algo not in ALGOS:
        raise UserInputError(f"unknown --algo {algo!r}; use one of: {', '.join(ALGOS)}")
    if base not in BASES:
        raise UserInputError(f"unknown --base {base!r}; use one of: {', '.join(BASES)}")
    if action_mode not in ACTION_MODES:
        raise UserInputError(
            f"unknown --action-mode {action_mode!r}; use one of: {', '.join(ACTION_MODES)}"
        )
    if floor_mode not in FLOOR_MODES:
        raise UserInputError(
            f"unknown --floor-mode {floor_mode!r}; use one of: {', '.join(FLOOR_MODES)}"
        )
    check_output_dir(out, "--out")
    overrides = WorkloadOverrides(
        trace=trace,
        trace_format=trace_format.value if trace_format is not None else None,
        bin_s=bin_s,
        scale_mean_rps=scale_mean_rps,
    )
    resolved = resolve_scenario(scenario, overrides)
    if (train_h is None) != (eval_h is None):
        raise UserInputError("give both --train-h and --eval-h, or neither (default split 2:1)")
    if train_h is not None and eval_h is not None:
        train_w = parse_window_h(train_h, "--train-h")
        held_back = parse_window_h(eval_h, "--eval-h")
    else:
        train_w, held_back = default_windows(resolved)
    config = TrainConfig(
        algo=algo,
        timesteps=timesteps,
        base=base,
        action_mode=action_mode,  # type: ignore[arg-type]  # checked above
        floor_mode=floor_mode,  # type: ignore[arg-type]  # checked above
        episode_h=episode_h,
        history_h=7 * 24.0 if base == "predictive" else 0.0,
        checkpoints=checkpoints,
        tune_base=tune_base,
    )
    training_seeds = [seed + i for i in range(seeds)]
    with (
        make_executor(backend.value, address=address, workers=workers) as executor,
        stderr.status(f"training {algo} on {len(training_seeds)} seed(s), {timesteps} steps each"),
    ):
        outcome = train_policy(
            resolved,
            config,
            windows=Windows.split(train_w, held_back),
            seeds=training_seeds,
            eval_seeds=list(range(eval_seeds)),
            tune_trials=tune_trials,
            executor=executor,
        )
    stdout.print(train_table(outcome))
    written = write_rl_bundle(outcome, out, created_at=datetime.now(UTC))
    stderr.print(f"wrote bundle {written}; compare it with --policies rl:{written}")
