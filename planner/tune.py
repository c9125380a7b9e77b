"""`planner tune`: calibrate a policy's parameters with optuna on a training window.

The objective is the lowest cost subject to SLO attainment >= the scenario's target
(RLScale-Bench: a calibrated threshold autoscaler is the baseline smarter policies
must beat). Cost is measured as a ratio to the oracle on the same window so values
are comparable across windows. Infeasible trials are both reported to the TPE
sampler as constraint violations (`Trial.set_constraint`) and penalised in the value,
so the best trial is always feasible when any trial is. The winner is then scored
on a held-back window it never saw, next to the untuned defaults and the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

from planner.inputs import build_scenario_workload, resolve_policies
from planner.oracle import OracleSummary
from planner.runs import OracleTask, RunTask, execute_run, run_task, scenario_inputs
from planner.tuning_space import apply_params, suggest, tunable
from policies.spec import PolicySpecBase
from sim.errors import ScenarioError
from sim.result import RunResult
from sim.scenario import Scenario, scenario_from_dict

#: Added to the cost ratio of a trial that misses the SLO, plus 100 per unit of
#: shortfall: an infeasible trial ranks below any feasible one costing < 10x oracle.
INFEASIBLE_PENALTY = 10.0
SHORTFALL_WEIGHT = 100.0
TUNING_ENGINE = "fluid"
HOUR_S = 3600.0


@dataclass(frozen=True)
class Score:
    """How one spec did on one window."""

    cost_usd: float
    slo_attainment: float
    cost_vs_oracle: float | None
    meets_slo: bool

    @classmethod
    def of(cls, result: RunResult, oracle: OracleSummary) -> Score:
        return cls(
            result.cost_usd, result.slo_attainment, oracle.ratio(result.cost_usd), result.meets_slo
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cost_usd": self.cost_usd,
            "slo_attainment": self.slo_attainment,
            "cost_vs_oracle": self.cost_vs_oracle,
            "meets_slo": self.meets_slo,
        }


@dataclass(frozen=True)
class TuneOutcome:
    """The result of one tuning session (everything a bundle records)."""

    scenario: Scenario
    policy_name: str
    base_spec: PolicySpecBase
    tuned_spec: PolicySpecBase
    best_params: dict[str, Any]
    trials: int
    feasible_trials: int
    seed: int
    train_window_h: tuple[float, float]
    eval_window_h: tuple[float, float]
    train: Score
    eval_tuned: Score
    eval_default: Score
    eval_oracle: OracleSummary
    source: str
    epoch_s: float | None
    #: The defaults on the training window, the winner and why the defaults won.
    train_default: Score | None = None
    winner: str = "tuned"
    winner_reason: str = ""
    #: The best trial's parameters (the bundle's when the tuned spec wins).
    trial_params: dict[str, Any] | None = None
    #: The held-back window as a scenario (what `planner simulate` reproduces).
    eval_scenario: Scenario | None = None

    @property
    def feasible(self) -> bool:
        """Whether anything tried (a trial or the defaults) met the SLO on the training window."""
        default_meets = self.train_default is not None and self.train_default.meets_slo
        return self.feasible_trials > 0 or default_meets

    @property
    def bundle_name(self) -> str:
        """The tuned spec's name: the bundle's name, distinct from the untuned preset's."""
        return self.tuned_spec.display_name()

    def scores_json(self) -> dict[str, Any]:
        return {
            "objective": "min cost s.t. slo_attainment >= target",
            "slo_target": self.scenario.slo.target_attainment,
            "trials": self.trials,
            "feasible_trials": self.feasible_trials,
            "winner": self.winner,
            "winner_reason": self.winner_reason,
            "best_trial_params": self.trial_params or {},
            "train": self.train.to_json(),
            "train_default": None if self.train_default is None else self.train_default.to_json(),
            "eval_tuned": self.eval_tuned.to_json(),
            "eval_default": self.eval_default.to_json(),
            "eval_oracle": self.eval_oracle.to_json(),
        }


def objective_value(cost_ratio: float, attainment: float, target: float) -> float:
    """Cost ratio, plus a penalty that grows with the SLO shortfall when infeasible."""
    shortfall = max(0.0, target - attainment)
    if shortfall == 0.0:
        return cost_ratio
    return cost_ratio + INFEASIBLE_PENALTY + SHORTFALL_WEIGHT * shortfall


def _with_workload(scenario: Scenario, update: dict[str, Any], source: str) -> Scenario:
    data = scenario.model_dump(mode="json")
    data["workload"] = {**data["workload"], **update}
    base_dir = Path(data.pop("base_dir"))
    return scenario_from_dict(data, source, base_dir)


def scale_factor(scenario: Scenario) -> float | None:
    """The factor `scale_mean_rps` applies to the scenario's own window; None if unscaled."""
    target_rps = scenario.workload.scale_mean_rps
    if target_rps is None:
        return None
    return target_rps / _mean_rps(_with_workload(scenario, {"scale_mean_rps": None}, scenario.name))


def windowed(
    scenario: Scenario, window_h: tuple[float, float], factor: float | None = None
) -> Scenario:
    """`scenario` restricted to (start_h, duration_h) of its trace, validated.

    A scenario that rescales its traffic (`scale_mean_rps`) has its factor computed
    once, on its own window, and applied unchanged to this one: rescaling each
    window to the same mean would flatten the trend between training and evaluation.
    Pass `factor` (from `scale_factor`) to cut several windows without rebuilding the
    scenario's whole workload for each.
    """
    start_h, duration_h = window_h
    label = f"{scenario.name} window {start_h:g}+{duration_h:g} h"
    update: dict[str, Any] = {"start_h": start_h, "duration_h": duration_h}
    if scenario.workload.scale_mean_rps is not None:
        factor = scale_factor(scenario) if factor is None else factor
        assert factor is not None
        window = _with_workload(scenario, {**update, "scale_mean_rps": None}, label)
        update["scale_mean_rps"] = _mean_rps(window) * factor
    return _with_workload(scenario, update, label)


def _mean_rps(scenario: Scenario) -> float:
    from sim.workload import mean_rps, observed_s

    workload = build_scenario_workload(scenario)
    if observed_s(workload) <= 0 or mean_rps(workload) <= 0:
        raise ScenarioError(
            f"{scenario.name}: window starting at {scenario.workload.start_h:g} h has no "
            "traffic; pick windows with data"
        )
    return mean_rps(workload)


def default_windows(scenario: Scenario) -> tuple[tuple[float, float], tuple[float, float]]:
    """Train on the first two thirds of the scenario's window, evaluate on the last third."""
    start_h = scenario.workload.start_h
    duration_h = scenario.workload.duration_h
    if duration_h is None:
        duration_h = build_scenario_workload(scenario).duration_s / HOUR_S - start_h
    split_h = duration_h * 2.0 / 3.0
    return (start_h, split_h), (start_h + split_h, duration_h - split_h)


def _check_disjoint(train: tuple[float, float], held_back: tuple[float, float]) -> None:
    train_end = train[0] + train[1]
    eval_end = held_back[0] + held_back[1]
    if train[0] < eval_end and held_back[0] < train_end:
        raise ScenarioError(
            f"--train-h {train[0]:g}:{train_end:g} and --eval-h {held_back[0]:g}:{eval_end:g} "
            "overlap; the evaluation window must be held back from training"
        )


#: Told after each trial: (trials done, trials in all).
TrialProgress = Callable[[int, int], None]


def _objective(score: Score, target: float) -> float:
    ratio = score.cost_vs_oracle if score.cost_vs_oracle is not None else score.cost_usd
    return objective_value(ratio, score.slo_attainment, target)


def tune_policy(
    scenario: Scenario,
    policy_name: str,
    *,
    trials: int,
    train_window_h: tuple[float, float],
    eval_window_h: tuple[float, float],
    seed: int = 0,
    progress: TrialProgress | None = None,
) -> TuneOutcome:
    """Search the policy's tuning space on the training window; score on the eval window.

    The untuned defaults are scored on both windows too, and they stay the winner
    (`TuneOutcome.winner == "defaults"`, `tuned_spec` their spec under the tuned
    name) when the best trial does worse than them on the training window, or does
    worse on the held-back window: a tuned result worse than the defaults is never
    presented as the answer. "Worse" is `objective_value`, the quantity the search
    minimises (cost ratio, penalised by any SLO shortfall).

    Args:
        scenario: Resolved scenario; its SLO is the constraint.
        policy_name: Registry name or `bundle:PATH` of the policy to calibrate.
        trials: Optuna trials (each one fluid-engine run on the training window).
        train_window_h: (start_h, duration_h) of the training window.
        eval_window_h: (start_h, duration_h) of the held-back window.
        seed: Seed of the TPE sampler and of every run.
        progress: Told after each trial (done, total).
    """
    import optuna

    _check_disjoint(train_window_h, eval_window_h)
    (base_spec,) = resolve_policies([policy_name])
    ranges = tunable(base_spec)
    factor = scale_factor(scenario)  # one build of the full window, shared by both
    train_scenario = windowed(scenario, train_window_h, factor)
    eval_scenario = windowed(scenario, eval_window_h, factor)
    source = scenario.workload.path or scenario.workload.format
    # the oracle is verified in the engine and on the seed the trials run
    train_oracle = run_task(OracleTask(train_scenario, TUNING_ENGINE, seed)).oracle
    train_epoch_s = scenario_inputs(train_scenario)[0].epoch_s
    target = scenario.slo.target_attainment

    def score(window: Scenario, spec: PolicySpecBase, oracle: OracleSummary) -> Score:
        result = execute_run(RunTask(window, spec, seed, TUNING_ENGINE))
        return Score.of(result, oracle)

    def objective(trial: optuna.Trial) -> float:
        spec = apply_params(base_spec, ranges, suggest(trial, ranges))
        score_ = score(train_scenario, spec, train_oracle)
        trial.set_user_attr("cost_usd", score_.cost_usd)
        trial.set_user_attr("slo_attainment", score_.slo_attainment)
        trial.set_user_attr("shortfall", target - score_.slo_attainment)
        # Optuna >= 5: constraints live on the trial (<= 0 is feasible); TPE favours
        # feasible trials and best_trial only picks an infeasible one if all are.
        trial.set_constraint("slo_shortfall", target - score_.slo_attainment)
        return _objective(score_, target)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        del trial
        if progress is not None:
            progress(len(study.trials), trials)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=trials, callbacks=[after_trial])

    feasible = sum(1 for t in study.trials if t.user_attrs["shortfall"] <= 0)
    # With constraints, optuna's best_trial refuses to answer when no trial is
    # feasible; the penalised value still ranks them (smallest shortfall first), and
    # the report says plainly that the SLO was not met.
    best = study.best_trial if feasible else min(study.trials, key=_trial_value)
    tuned_name = f"{base_spec.display_name()}-tuned"
    tuned_spec = apply_params(base_spec, ranges, best.params).model_copy(
        update={"name": tuned_name}
    )
    train_score = Score(
        best.user_attrs["cost_usd"],
        best.user_attrs["slo_attainment"],
        train_oracle.ratio(best.user_attrs["cost_usd"]),
        best.user_attrs["slo_attainment"] >= target,
    )
    train_default = score(train_scenario, base_spec, train_oracle)

    eval_oracle = run_task(OracleTask(eval_scenario, TUNING_ENGINE, seed)).oracle
    eval_tuned = score(eval_scenario, tuned_spec, eval_oracle)
    eval_default = score(eval_scenario, base_spec, eval_oracle)
    winner, reason = "tuned", ""
    if _objective(train_default, target) < _objective(train_score, target):
        winner, reason = "defaults", "the defaults beat every trial on the training window"
    elif _objective(eval_default, target) < _objective(eval_tuned, target):
        winner = "defaults"
        reason = "the tuned parameters did worse than the defaults on the held-back window"
    return TuneOutcome(
        scenario=scenario,
        policy_name=policy_name,
        base_spec=base_spec,
        tuned_spec=(
            tuned_spec if winner == "tuned" else base_spec.model_copy(update={"name": tuned_name})
        ),
        best_params=dict(best.params) if winner == "tuned" else {},
        trials=len(study.trials),
        feasible_trials=feasible,
        seed=seed,
        train_window_h=train_window_h,
        eval_window_h=eval_window_h,
        train=train_score,
        eval_tuned=eval_tuned,
        eval_default=eval_default,
        eval_oracle=eval_oracle,
        source=source,
        # Slicing moved the window's epoch to its own start; the bundle records t = 0's.
        epoch_s=(None if train_epoch_s is None else train_epoch_s - train_window_h[0] * HOUR_S),
        train_default=train_default,
        winner=winner,
        winner_reason=reason,
        trial_params=dict(best.params),
        eval_scenario=eval_scenario,
    )


def _trial_value(trial: optuna.trial.FrozenTrial) -> float:
    value = trial.value
    return float("inf") if value is None else float(value)


def write_tuned_bundle(outcome: TuneOutcome, root: Path, *, created_at: datetime) -> Path:
    """Write the tuned spec as a PolicyBundle under `root/<name>/v<N>` (never overwriting).

    The bundle records the tuned parameters, the training window (seconds on the
    trace's clock), the train and held-back scores and the package versions.
    """
    from policies.bundle import PolicyBundle, TrainingWindow, collect_versions, next_version
    from policies.bundle import write_bundle as write

    start_h, duration_h = outcome.train_window_h
    name = outcome.bundle_name
    bundle = PolicyBundle(
        name=name,
        version=next_version(root, name),
        spec=outcome.tuned_spec,
        fitted_params=outcome.best_params,
        training_window=TrainingWindow(
            source=outcome.source,
            start_s=start_h * HOUR_S,
            end_s=(start_h + duration_h) * HOUR_S,
            epoch_s=outcome.epoch_s,
        ),
        scores=outcome.scores_json(),
        versions=collect_versions(),
        created_at=created_at,
    )
    return write(bundle, root)
