"""The training pipeline: windows -> calibrated baseline -> models -> best -> evaluation -> bundle.

1. Split the scenario's trace: the training window (episodes are cut from its first
   80 %, the validation window is its last 20 %) and the held-back window.
2. Calibrate the threshold policy on the same training data (`planner.train.calibrate`).
3. Train one model per seed (in parallel on the executor: local processes or Ray)
   and keep the best on validation (lowest cost vs the oracle subject to the SLO,
   `planner.tune.objective_value`): the best checkpoint of each seed (scored before,
   during and after training: `planner.train.learn.BestCheckpoint`), then the best seed.
4. Score it on the held-back window over several seeds against the calibrated
   threshold, predictive, HPA defaults, the untouched base policy and the oracle.
5. Write the bundle: model, spec, observation layout version, scores, windows,
   package versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from planner.executor import Executor
from planner.oracle import solve_reference
from planner.runs import scenario_inputs
from planner.train.calibrate import calibrate
from planner.train.config import HOUR_S, TrainConfig, TrainedModel, TrainJob
from planner.train.evaluate import Evaluation, evaluate
from planner.train.learn import earliest_start_s, make_spec, run_learned, train_model
from planner.train.windows import cut
from planner.tune import objective_value
from policies.registry import resolve
from policies.spec import PolicySpecBase
from sim.errors import UserInputError
from sim.scenario import Scenario

#: Share of the training window held out of episodes to pick the best seed on.
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class Windows:
    """(start_h, duration_h) of each part of the trace."""

    fit: tuple[float, float]
    validation: tuple[float, float]
    held_back: tuple[float, float]

    @classmethod
    def split(cls, train_h: tuple[float, float], held_back_h: tuple[float, float]) -> Windows:
        start, duration = train_h
        fit_h = duration * (1.0 - VALIDATION_SHARE)
        return cls((start, fit_h), (start + fit_h, duration - fit_h), held_back_h)


@dataclass(frozen=True)
class TrainOutcome:
    """Everything a training run produced (what the bundle records)."""

    scenario: Scenario
    config: TrainConfig
    windows: Windows
    best: TrainedModel
    trained: tuple[TrainedModel, ...]
    validation_oracle_usd: float
    tuned_threshold: PolicySpecBase
    tuned_params: dict[str, Any]
    evaluation: Evaluation
    source: str
    epoch_s: float | None

    @property
    def bundle_name(self) -> str:
        return f"rl-{self.config.algo}-{self.config.base}"


def check_windows(scenario: Scenario, config: TrainConfig, windows: Windows) -> None:
    """Fail before any training when a window cannot hold what it must.

    Raises:
        UserInputError: The training window (less validation) is shorter than one
            episode, or a window has no traffic.
    """
    fit = cut(scenario, {"fit": windows.fit})["fit"]
    fit_s = scenario_inputs(fit)[0].duration_s
    history_s = earliest_start_s(config)
    need_s = history_s + config.episode_h * HOUR_S + scenario.decision_interval_s
    if fit_s < need_s:
        after = (
            f" after the {history_s / HOUR_S:.0f} h of history the {config.base} base fits on"
            if history_s
            else ""
        )
        raise UserInputError(
            f"the trace gives {fit_s / HOUR_S:.2f} h for training episodes (the training "
            f"window less its last {VALIDATION_SHARE:.0%} for validation), too short for one "
            f"{config.episode_h:g} h episode{after}; use a longer trace or --train-h, or a "
            "shorter --episode-h"
        )


def _check_disjoint(windows: Windows) -> None:
    train_start = windows.fit[0]
    train_end = windows.validation[0] + windows.validation[1]
    start, duration = windows.held_back
    if train_start < start + duration and start < train_end:
        raise UserInputError(
            f"--train-h {train_start:g}:{train_end:g} and --eval-h {start:g}:{start + duration:g} "
            "overlap; the evaluation window must be held back from training"
        )


def train_policy(
    scenario: Scenario,
    config: TrainConfig,
    *,
    windows: Windows,
    seeds: Sequence[int],
    eval_seeds: Sequence[int],
    tune_trials: int,
    executor: Executor,
) -> TrainOutcome:
    """Run the pipeline (see the module docstring) and return what it found."""
    _check_disjoint(windows)
    check_windows(scenario, config, windows)
    parts = cut(
        scenario,
        {"fit": windows.fit, "validation": windows.validation, "held_back": windows.held_back},
    )
    fit, validation, held_back = parts["fit"], parts["validation"], parts["held_back"]
    for part in parts.values():
        scenario_inputs(part)  # a window outside the trace fails here, before any work
    tuned = calibrate(fit, "threshold", trials=tune_trials, seed=seeds[0])
    if config.tune_base and config.base_spec is None:
        # the agent starts from its family's best heuristic on the same data
        base = (
            tuned
            if config.base == "threshold"
            else calibrate(fit, config.base, trials=tune_trials, seed=seeds[0])
        )
        config = replace(config, base_spec=base.spec)
    validation_oracle = float(solve_reference(validation, scenario_inputs(validation)[0]).cost_usd)
    jobs = [TrainJob(config, seed, fit, validation, validation_oracle) for seed in seeds]
    trained = tuple(executor.map(train_model, jobs))
    target = scenario.slo.target_attainment

    def rank(model: TrainedModel) -> float:
        cost = model.validation_cost_usd
        ratio = cost / validation_oracle if validation_oracle > 0 else cost
        return objective_value(ratio, model.validation_attainment, target)

    best = min(trained, key=rank)
    from policies.rl import load_model

    model = load_model(make_spec(config, "rl"), best.model_zip)
    learned_name = f"rl-{config.algo}"

    def run_best(window: Scenario, seed: int) -> Any:
        return run_learned(window, model, config, seed, name=learned_name)

    baselines: dict[str, PolicySpecBase] = {
        "threshold-tuned": tuned.spec,
        "threshold": resolve("threshold"),
        "predictive": resolve("predictive"),
        "hpa": resolve("hpa"),
    }
    evaluation = evaluate(
        held_back,
        windows.held_back,
        learned={learned_name: run_best},
        baselines=baselines,
        seeds=eval_seeds,
    )
    fit_epoch = scenario_inputs(fit)[0].epoch_s
    return TrainOutcome(
        scenario=scenario,
        config=config,
        windows=windows,
        best=best,
        trained=trained,
        validation_oracle_usd=validation_oracle,
        tuned_threshold=tuned.spec,
        tuned_params=tuned.params,
        evaluation=evaluation,
        source=scenario.workload.path or scenario.workload.format,
        epoch_s=None if fit_epoch is None else fit_epoch - windows.fit[0] * HOUR_S,
    )


def write_rl_bundle(outcome: TrainOutcome, root: Path, *, created_at: datetime) -> Path:
    """Write the learned policy as a bundle under `root/<name>/v<N>` (never overwriting)."""
    from planner.train.bundle import write_learned_bundle
    from policies.bundle import TrainingWindow

    start_h, fit_h = outcome.windows.fit
    return write_learned_bundle(
        outcome.config,
        outcome.bundle_name,
        root,
        model_zip=outcome.best.model_zip,
        window=TrainingWindow(
            source=outcome.source,
            start_s=start_h * HOUR_S,
            end_s=(start_h + fit_h) * HOUR_S,
            epoch_s=outcome.epoch_s,
        ),
        created_at=created_at,
        fitted={
            "timesteps": outcome.best.timesteps,
            "seed": outcome.best.seed,
            "calibrated_threshold": outcome.tuned_params,
        },
        scores=scores_json(outcome),
    )


def scores_json(outcome: TrainOutcome) -> dict[str, Any]:
    return {
        "objective": "min cost vs oracle s.t. slo_attainment >= target (validation)",
        "slo_target": outcome.scenario.slo.target_attainment,
        "windows_h": {
            "fit": list(outcome.windows.fit),
            "validation": list(outcome.windows.validation),
            "held_back": list(outcome.windows.held_back),
        },
        "validation": {
            "oracle_cost_usd": outcome.validation_oracle_usd,
            "seeds": {
                str(m.seed): {
                    "cost_usd": m.validation_cost_usd,
                    "slo_attainment": m.validation_attainment,
                    "kept_timesteps": m.timesteps,
                    "trained_timesteps": m.trained_timesteps,
                    "checkpoints": [
                        {
                            "timesteps": c.timesteps,
                            "cost_usd": c.cost_usd,
                            "slo_attainment": c.attainment,
                        }
                        for c in m.checkpoints
                    ],
                }
                for m in outcome.trained
            },
            "best_seed": outcome.best.seed,
        },
        "held_back": outcome.evaluation.to_json(),
    }
