"""The table `planner train` prints: every policy on the held-back window, over seeds."""

from __future__ import annotations

from rich.table import Table

from planner.train.pipeline import TrainOutcome


def train_table(outcome: TrainOutcome) -> Table:
    evaluation = outcome.evaluation
    start, duration = evaluation.window_h
    target = outcome.scenario.slo.target_attainment
    table = Table(
        title=(
            f"held-back window {start:g}-{start + duration:g} h, {len(evaluation.seeds)} seeds; "
            f"SLO target {target:.1%}; best training seed {outcome.best.seed} of "
            f"{len(outcome.trained)}, {_kept(outcome)}"
        ),
        title_justify="left",
    )
    for name in ("policy", "cost USD (mean ± sd)", "vs oracle", "SLO att. (mean ± sd)", "meets"):
        table.add_column(name, justify="left" if name == "policy" else "right")
    for score in evaluation.scores:
        table.add_row(
            score.name,
            f"{score.cost_mean:,.2f} ± {score.cost_std:,.2f}",
            _ratio(score.cost_vs_oracle),
            f"{score.attainment_mean:.2%} ± {score.attainment_std:.2%}",
            f"{score.seeds_meeting_slo}/{len(score.attainment)}",
        )
    table.add_row("oracle", f"{evaluation.oracle_cost_usd:,.2f}", "1.00x", "", "")
    return table


def _kept(outcome: TrainOutcome) -> str:
    """Which checkpoint of the best seed was kept, said plainly when it is the untrained one."""
    best = outcome.best
    if best.timesteps == 0 and best.trained_timesteps > 0:
        return (
            f"weights before training kept (the base policy's proposals): none of "
            f"{len(best.checkpoints) - 1} checkpoints up to {best.trained_timesteps:,} steps "
            "scored better on validation"
        )
    return f"checkpoint at {best.timesteps:,} of {best.trained_timesteps:,} steps"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"
