"""The challengers: every tunable policy family calibrated on the training window.

Each family is one task for the executor (`tune_family`, module level so it ships
to a worker process or Ray): an optuna TPE search over the family's tuning space
(`planner.tuning_space`), every trial a fluid-engine run on the fitting part of the
training window. Trials are compared on cost relative to the family's untuned
defaults on the same window, penalised by any SLO shortfall
(`planner.tune.objective_value`); no oracle is solved here, since only the ranking
within a family matters.

The search fits its window tightly: the best trial is often tuned to the SLO's edge
on that traffic and misses by a fraction of a point on the next weeks. So the best
few trials and the defaults (the finalists) are replayed on the validation part, the
newest slice of the training window that the search never saw, and the family's
candidate is the finalist with the best objective over both parts: total cost, and
the lower of its two attainments. A candidate that only just meets on one slice
loses to one that meets on both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from planner.runs import RunTask, execute_run
from planner.tune import TUNING_ENGINE, objective_value
from planner.tuning_space import apply_params, suggest, tunable
from policies.spec import PolicySpecBase
from sim.scenario import Scenario

#: The families the retraining job calibrates; spillover only where the scenario has
#: a serverless pool to spill to.
FAMILIES: tuple[str, ...] = (
    "threshold",
    "hpa",
    "aws-target-tracking",
    "step",
    "predictive",
    "anomaly",
    "spillover",
)


def families_for(scenario: Scenario, chosen: list[str] | None = None) -> list[str]:
    """The families to calibrate on `scenario` (all that apply, or `chosen`, checked)."""
    from sim.errors import UserInputError

    applicable = [f for f in FAMILIES if f != "spillover" or scenario.spillover is not None]
    if chosen is None:
        return applicable
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise UserInputError(
            f"--families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
        )
    if "spillover" in chosen and scenario.spillover is None:
        raise UserInputError(
            "--families spillover: the cluster has no serverless pool to spill to; "
            "leave spillover out or add a 'spillover:' pool to the scenario"
        )
    return chosen


@dataclass(frozen=True)
class TuneJob:
    """Calibrate one family on the training window."""

    scenario: Scenario
    family: str
    trials: int
    seed: int
    #: The newest slice of the training window, held out of the search (None: none).
    validation: Scenario | None = None
    #: Added to the SLO target during the search: a candidate tuned to just meet the
    #: target on older traffic tends to miss it on newer traffic by a fraction of a point.
    headroom: float = 0.0
    #: How many of the best trials are replayed on the validation slice.
    finalists: int = 5


@dataclass(frozen=True)
class TunedFamily:
    """A family's candidate and how it did on the training window."""

    family: str
    spec: PolicySpecBase
    params: dict[str, Any]
    #: Cost over the fitting part and the validation part together.
    train_cost_usd: float
    #: The lower of the candidate's attainments on the two parts.
    train_attainment: float
    trials: int
    feasible_trials: int
    chosen: str  # "tuned" or "defaults"
    wall_s: float
    errors: list[str] = field(default_factory=list)
    #: Attainment on the fitting part and on the validation part (None: no validation).
    fit_attainment: float | None = None
    validation_attainment: float | None = None
    #: Finalists replayed on the validation slice, and the rank (0: best on the fitting
    #: part) of the one chosen among the tuned trials.
    finalists: int = 0
    chosen_rank: int | None = None


@dataclass(frozen=True)
class _Outcome:
    cost_usd: float
    attainment: float


@dataclass(frozen=True)
class _Finalist:
    params: dict[str, Any] | None  # None: the family's defaults
    rank: int | None  # among the trials, 0 the best on the fitting part
    fit: _Outcome
    validation: _Outcome | None = None

    @property
    def parts(self) -> list[_Outcome]:
        return [self.fit] if self.validation is None else [self.fit, self.validation]

    @property
    def cost_usd(self) -> float:
        return sum(p.cost_usd for p in self.parts)

    @property
    def attainment(self) -> float:
        """The lower of the two parts' attainments."""
        return min(p.attainment for p in self.parts)

    def value(self, reference_cost_usd: float, target: float) -> float:
        """Objective over both parts: total cost against the defaults', worst attainment."""
        return objective_value(
            self.cost_usd / max(reference_cost_usd, 1e-9), self.attainment, target
        )


def tune_family(job: TuneJob) -> TunedFamily:
    """Worker: the family's best spec on the training window (see the module docstring)."""
    import optuna
    from threadpoolctl import threadpool_limits

    from policies.registry import resolve

    started = time.perf_counter()
    base = resolve(job.family)
    ranges = tunable(base)
    target = min(1.0, job.scenario.slo.target_attainment + job.headroom)

    def spec_of(params: dict[str, Any] | None) -> PolicySpecBase:
        return base if params is None else apply_params(base, ranges, params)

    def run(scenario: Scenario, params: dict[str, Any] | None) -> _Outcome:
        result = execute_run(RunTask(scenario, spec_of(params), job.seed, TUNING_ENGINE))
        return _Outcome(result.cost_usd, result.slo_attainment)

    with threadpool_limits(limits=1, user_api="blas"):
        default = _Finalist(None, None, run(job.scenario, None))
        reference = max(default.fit.cost_usd, 1e-9)

        def objective(trial: optuna.Trial) -> float:
            outcome = run(job.scenario, suggest(trial, ranges))
            trial.set_user_attr("cost_usd", outcome.cost_usd)
            trial.set_user_attr("slo_attainment", outcome.attainment)
            trial.set_constraint("slo_shortfall", target - outcome.attainment)
            return objective_value(outcome.cost_usd / reference, outcome.attainment, target)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=job.seed)
        )
        study.optimize(objective, n_trials=job.trials)
        finalists = [default, *_best_trials(study, job.finalists if job.validation else 1)]
        if job.validation is not None:
            held_out = job.validation
            finalists = [replace(f, validation=run(held_out, f.params)) for f in finalists]
    best = min(finalists, key=lambda f: f.value(finalists[0].cost_usd, target))
    return TunedFamily(
        family=job.family,
        spec=spec_of(best.params).model_copy(update={"name": f"{job.family}-tuned"}),
        params=dict(best.params or {}),
        train_cost_usd=best.cost_usd,
        train_attainment=best.attainment,
        trials=len(study.trials),
        feasible_trials=sum(1 for t in study.trials if t.user_attrs["slo_attainment"] >= target),
        chosen="defaults" if best.params is None else "tuned",
        wall_s=time.perf_counter() - started,
        fit_attainment=best.fit.attainment,
        validation_attainment=None if best.validation is None else best.validation.attainment,
        finalists=len(finalists) if job.validation is not None else 0,
        chosen_rank=best.rank,
    )


def _best_trials(study: Any, count: int) -> list[_Finalist]:
    """The `count` best distinct completed trials on the fitting part, best first."""
    ranked = sorted((t for t in study.trials if t.value is not None), key=lambda t: t.value)
    chosen: list[_Finalist] = []
    for trial in ranked:
        if len(chosen) == count:
            break
        if any(f.params == trial.params for f in chosen):
            continue
        outcome = _Outcome(trial.user_attrs["cost_usd"], trial.user_attrs["slo_attainment"])
        chosen.append(_Finalist(dict(trial.params), len(chosen), outcome))
    return chosen
