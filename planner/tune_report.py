"""What `planner tune` prints: the scores table and the simulate command that reproduces it.

The held-back rows are exactly what `planner simulate` prints for the same window:
the tuner scores a window of the scenario (its traffic scaled by the factor of the
scenario's whole window, not rescaled to the window's own mean), with the tuning
seed driving the workload and the run. `simulate_command` spells out that window
(`--start-h`, `--duration-h`, the window's own `--scale-mean-rps`, `--seed`, the
pool, SLO and interval) so the figures can be checked, or extended to more seeds
or the DES engine, with one command.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from planner.tune import Score, TuneOutcome
from sim.capacity.pools import ServerlessEndpoint


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _window_label(window_h: tuple[float, float]) -> str:
    return f"{window_h[0]:.2f}-{window_h[0] + window_h[1]:.2f} h"


def tune_table(outcome: TuneOutcome) -> Table:
    """Tuned and default scores on both windows, the oracle, and which one won."""
    table = Table(
        title=(
            f"tuned {escape(outcome.base_spec.display_name())}: {outcome.trials} trials, "
            f"{outcome.feasible_trials} feasible; SLO target "
            f"{outcome.scenario.slo.target_attainment:.1%}"
        ),
        title_justify="left",
    )
    for name in ("run", "cost USD", "vs oracle", "SLO att.", "meets SLO"):
        table.add_column(name, justify="right" if name != "run" else "left")
    train, held_back = _window_label(outcome.train_window_h), _window_label(outcome.eval_window_h)
    rows: list[tuple[str, Score | None]] = [
        (f"train {train} (best trial)", outcome.train),
        (f"train {train} (defaults)", outcome.train_default),
        (f"eval {held_back} (best trial)", outcome.eval_tuned),
        (f"eval {held_back} (defaults)", outcome.eval_default),
    ]
    for label, score in rows:
        if score is None:
            continue
        table.add_row(
            label,
            f"{score.cost_usd:,.2f}",
            _ratio(score.cost_vs_oracle),
            f"{score.slo_attainment:.2%}",
            "yes" if score.meets_slo else "no",
        )
    table.add_row("eval oracle", f"{outcome.eval_oracle.cost_usd:,.2f}", "1.00x", "", "")
    params = outcome.trial_params or outcome.best_params
    caption = "best trial: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
    if outcome.winner == "defaults":
        caption += (
            f"\nwinner: the defaults ({outcome.winner_reason}); the bundle keeps the "
            "default parameters"
        )
    else:
        caption += "\nwinner: the best trial (it beats the defaults on both windows)"
    if not outcome.feasible:
        caption += (
            "\nno trial and not the defaults met the SLO target on the training window; try "
            "more trials, a larger --max-replicas, a longer window or a looser SLO"
        )
    elif outcome.feasible_trials == 0:
        caption += "\nno trial met the SLO target on the training window; the defaults did"
    table.caption = escape(caption)
    return table


def simulate_command(
    outcome: TuneOutcome,
    bundle: Path,
    *,
    scenario_path: Path | None,
    trace_args: list[str],
) -> str:
    """The `planner simulate` line whose table shows the held-back rows' figures.

    Args:
        outcome: The tuning result (its `eval_scenario` is the held-back window).
        bundle: The bundle `tune` wrote.
        scenario_path: `--scenario` as the user gave it, or None.
        trace_args: `--trace`, `--trace-format`, `--bin-s`, `--time-unit` as given.
    """
    window = outcome.eval_scenario
    assert window is not None, "tune_policy sets eval_scenario"
    args = ["planner", "simulate"]
    if scenario_path is not None:
        args += ["--scenario", str(scenario_path)]
    args += trace_args
    workload = window.workload
    args += ["--start-h", f"{workload.start_h:g}"]
    if workload.duration_h is not None:
        args += ["--duration-h", f"{workload.duration_h:g}"]
    if workload.scale_mean_rps is not None:
        args += ["--scale-mean-rps", repr(workload.scale_mean_rps)]
    pool = window.pool
    if not isinstance(pool, ServerlessEndpoint):
        args += ["--instance-type", pool.instance_type]
    args += [
        "--min-replicas", str(pool.min_replicas),
        "--max-replicas", str(pool.max_replicas),
        "--initial-replicas", str(pool.start_replicas),
        "--slo-latency-s", f"{window.slo.latency_s:g}",
        "--slo-target", f"{window.slo.target_attainment:g}",
        "--decision-interval-s", f"{window.decision_interval_s:g}",
        "--seed", str(outcome.seed),
        "--policies", f"{outcome.policy_name},bundle:{bundle}",
    ]  # fmt: skip
    return shlex.join(args)
