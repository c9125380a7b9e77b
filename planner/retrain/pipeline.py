"""One contest: tune every family on the older part, score all against the champion on the newest.

The pipeline `planner retrain` and `planner recommend` share:

1. Split the history: the training window (older part) and the scoring window (the
   newest `holdout_share`, or what follows `--train-h`). No challenger sees the
   scoring window; forecasters see the training part as their history.
2. Calibrate every policy family on the training window (`planner.retrain.candidates`,
   one executor task per family): the search fits the older part of it, and its
   finalists are checked on the newest `validation_share` of it.
3. Train the RL challenger within its wall-clock budget, residual on the best tuned
   heuristic, continuing from the champion's weights where they fit
   (`planner.retrain.rl_candidate`).
4. Score every challenger and the champion on the scoring window over several seeds,
   with the replay-verified oracle of each seed (`planner.retrain.scoring`).
5. Decide (`planner.retrain.decision`); when nothing meets the SLO, measure what
   would (`planner.retrain.advice`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.executor import Executor
from planner.retrain.candidates import TunedFamily, TuneJob, families_for, tune_family
from planner.retrain.decision import Decision, decide
from planner.retrain.scoring import Candidate, Scoreboard, score_candidates
from planner.tune import HOUR_S, TUNING_ENGINE, objective_value, scale_factor, windowed
from sim.errors import UserInputError
from sim.scenario import Scenario

Progress = Callable[[str], None]

#: Trace hours a forecasting policy needs behind it before it forecasts at all: the
#: predictive defaults' `min_history_days` plus `backtest_days` (2 + 2 days).
FORECAST_WARMUP_H = 96.0
#: The shortest fitting part worth starting later for: a day.
MIN_FIT_H = 24.0


@dataclass(frozen=True)
class ContestSettings:
    """How hard to search and how to judge (the CLI's flags)."""

    trials: int = 20
    seeds: int = 3
    families: list[str] | None = None
    margin: float = 0.05
    rl_budget_s: float = 0.0
    engine: str = TUNING_ENGINE
    seed: int = 0
    holdout_share: float = 0.25
    train_window_h: tuple[float, float] | None = None
    tuning_headroom: float = 0.0
    validation_share: float = 0.2

    def check(self) -> None:
        if not 0.0 < self.holdout_share < 1.0:
            raise UserInputError(
                f"--holdout-share {self.holdout_share:g}: give a share in (0, 1), e.g. 0.25"
            )
        if not 0.0 <= self.margin < 1.0:
            raise UserInputError(f"--margin {self.margin:g}: give a share in [0, 1), e.g. 0.05")
        if self.trials < 1 or self.seeds < 1:
            raise UserInputError("--trials and --seeds must be at least 1")
        if not 0.0 <= self.tuning_headroom < 0.5:
            raise UserInputError(
                f"--tuning-headroom {self.tuning_headroom:g}: give a share in [0, 0.5), "
                "e.g. 0.01 to tune for one point above the SLO target"
            )
        if not 0.0 <= self.validation_share < 1.0:
            raise UserInputError(
                f"--validation-share {self.validation_share:g}: give a share in [0, 1), "
                "e.g. 0.2 (0: choose each family's candidate on the fitting window alone)"
            )
        if self.rl_budget_s < 0:
            raise UserInputError("--rl-budget-min must not be negative")

    def to_json(self) -> dict[str, Any]:
        return {
            "trials_per_family": self.trials,
            "seeds": self.seeds,
            "families": self.families,
            "margin": self.margin,
            "rl_budget_s": self.rl_budget_s,
            "engine": self.engine,
            "seed": self.seed,
            "holdout_share": self.holdout_share,
            "train_window_h": self.train_window_h,
            "tuning_headroom": self.tuning_headroom,
            "validation_share": self.validation_share,
        }


@dataclass(frozen=True)
class Windows:
    """(start_h, duration_h) of the training and the scoring window.

    The training window is the fitting part followed by the validation part (None:
    no validation part, the search fits all of it).
    """

    train: tuple[float, float]
    score: tuple[float, float]
    validation: tuple[float, float] | None = None

    @property
    def fit(self) -> tuple[float, float]:
        if self.validation is None:
            return self.train
        return (self.train[0], self.validation[0] - self.train[0])

    @property
    def forecast_fit(self) -> tuple[float, float]:
        """The fitting part for a family that forecasts: it starts once
        `FORECAST_WARMUP_H` of the trace lie before it (with less a forecaster fits
        nothing and the family would be tuned as its reactive fallback), unless that
        would leave less than `MIN_FIT_H` to fit on."""
        start, length = self.fit
        end = start + length
        if start >= FORECAST_WARMUP_H or end - FORECAST_WARMUP_H < MIN_FIT_H:
            return self.fit
        return (FORECAST_WARMUP_H, end - FORECAST_WARMUP_H)

    def to_json(self) -> dict[str, list[float] | None]:
        return {
            "train_h": list(self.train),
            "fit_h": list(self.fit),
            "forecast_fit_h": list(self.forecast_fit),
            "validation_h": None if self.validation is None else list(self.validation),
            "score_h": list(self.score),
        }


def split_windows(scenario: Scenario, settings: ContestSettings) -> Windows:
    """The training window and the scoring window after it (see the module docstring)."""
    from planner.inputs import build_scenario_workload

    start_h = scenario.workload.start_h
    duration_h = scenario.workload.duration_h
    if duration_h is None:
        duration_h = build_scenario_workload(scenario).duration_s / HOUR_S
    end_h = start_h + duration_h
    if settings.train_window_h is not None:
        train = settings.train_window_h
        score_start = train[0] + train[1]
        if train[0] < start_h or score_start >= end_h:
            raise UserInputError(
                f"--train-h {train[0]:g}:{score_start:g} must lie inside the history "
                f"({start_h:g}:{end_h:g} h) and leave a scoring window after it"
            )
        return _with_validation(train, (score_start, end_h - score_start), settings)
    split_h = start_h + duration_h * (1.0 - settings.holdout_share)
    return _with_validation((start_h, split_h - start_h), (split_h, end_h - split_h), settings)


def _with_validation(
    train: tuple[float, float], score: tuple[float, float], settings: ContestSettings
) -> Windows:
    if settings.validation_share == 0.0:
        return Windows(train, score)
    validation_h = train[1] * settings.validation_share
    start = train[0] + train[1] - validation_h
    return Windows(train, score, (start, validation_h))


@dataclass
class ContestOutcome:
    """Everything one contest produced (the report and the bundle record it)."""

    scenario: Scenario
    score_scenario: Scenario
    windows: Windows
    tuned: list[TunedFamily]
    board: Scoreboard
    decision: Decision
    rl: Any = None
    remedies: list[Any] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_contest(
    scenario: Scenario,
    settings: ContestSettings,
    executor: Executor,
    *,
    workdir: Path,
    champion: Candidate | None = None,
    champion_bundle: Path | None = None,
    progress: Progress | None = None,
) -> ContestOutcome:
    """Steps 1-5 of the module docstring."""
    tell = progress or (lambda _text: None)
    timings: dict[str, float] = {}
    notes: list[str] = []
    windows = split_windows(scenario, settings)
    factor = scale_factor(scenario)
    # Each window is built from the trace once: the search fits `fit`, its finalists
    # are checked on `validation`, the RL challenger (only) trains on all of `train`.
    fit = windowed(scenario, windows.fit, factor)
    forecast_fit = (
        fit
        if windows.forecast_fit == windows.fit
        else windowed(scenario, windows.forecast_fit, factor)
    )
    validation = (
        None if windows.validation is None else windowed(scenario, windows.validation, factor)
    )
    score = windowed(scenario, windows.score, factor)
    families = families_for(scenario, settings.families)

    started = time.perf_counter()
    tell(f"calibrating {len(families)} families, {settings.trials} trials each")
    jobs = [
        TuneJob(
            forecast_fit if _forecasts(family) else fit,
            family,
            settings.trials,
            settings.seed,
            validation=validation,
            headroom=settings.tuning_headroom,
        )
        for family in families
    ]
    tuned: list[TunedFamily] = executor.map(tune_family, jobs, None)
    timings["tune"] = time.perf_counter() - started

    candidates = [
        Candidate(
            t.spec.display_name(), t.spec, "challenger", f"{t.chosen}, {t.trials} trials", t.family
        )
        for t in tuned
    ]
    rl = None
    if settings.rl_budget_s > 0:
        started = time.perf_counter()
        train = fit if windows.validation is None else windowed(scenario, windows.train, factor)
        rl = _rl_challenger(train, windows, settings, tuned, workdir, champion_bundle, tell)
        timings["rl"] = time.perf_counter() - started
        if rl is None:
            notes.append("RL challenger: no model was trained")
        else:
            notes += [f"RL challenger: {n}" for n in rl.notes]
            candidates.append(Candidate(rl.spec.display_name(), rl.spec, "challenger", "rl", "rl"))
    if champion is not None:
        candidates.append(champion)

    started = time.perf_counter()
    seeds = [settings.seed + i for i in range(settings.seeds)]
    tell(f"scoring {len(candidates)} candidates and the oracle on {len(seeds)} seed(s)")
    board: Scoreboard = score_candidates(score, candidates, seeds, executor, settings.engine)
    timings["score"] = time.perf_counter() - started
    decision = decide(board, settings.margin)

    remedies: list[Any] = []
    if not any(s.meets_slo for s in board.scores):
        started = time.perf_counter()
        tell("nothing meets the SLO: measuring what would")
        remedies = _remedies(score, board, seeds[0], settings.engine, executor)
        timings["advice"] = time.perf_counter() - started
    return ContestOutcome(
        scenario=scenario,
        score_scenario=score,
        windows=windows,
        tuned=tuned,
        board=board,
        decision=decision,
        rl=rl,
        remedies=remedies,
        timings_s=timings,
        notes=notes,
    )


def _forecasts(family: str) -> bool:
    """Whether the family's policies fit a forecast on the history before their window."""
    from policies.registry import resolve

    return resolve(family).fits_history()


def _rl_challenger(
    train: Scenario,
    windows: Windows,
    settings: ContestSettings,
    tuned: list[TunedFamily],
    workdir: Path,
    champion_bundle: Path | None,
    tell: Progress,
) -> Any:
    from planner.retrain.rl_candidate import train_rl_candidate

    target = train.slo.target_attainment
    base = min(
        (t for t in tuned if t.family in ("threshold", "hpa", "predictive")),
        key=lambda t: objective_value(t.train_cost_usd, t.train_attainment, target),
        default=None,
    )
    tell(f"training the RL challenger for {settings.rl_budget_s / 60:.1f} min")
    return train_rl_candidate(
        train,
        windows.train,
        budget_s=settings.rl_budget_s,
        seed=settings.seed,
        out_root=workdir / "rl",
        base_spec=None if base is None else base.spec,
        champion_bundle=champion_bundle,
    )


def _remedies(
    score: Scenario, board: Scoreboard, seed: int, engine: str, executor: Executor
) -> list[Any]:
    from planner.retrain.advice import Remedy, what_would_help

    closest = sorted(board.scores, key=lambda s: -s.slo_attainment.mean)[:3]
    found: list[Remedy] = what_would_help(
        score,
        [s.candidate.spec for s in closest],
        seed=seed,
        engine=engine,
        executor=executor,
        oracle=board.oracles[0],
    )
    return list(found)
