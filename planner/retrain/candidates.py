"""The challengers: every tunable policy family calibrated on the training window.

Each family is one task for the executor (`tune_family`, module level so it ships
to a worker process or Ray): an optuna TPE search over the family's tuning space
(`planner.tuning_space`), every trial a fluid-engine run on the training window.
Trials are compared on cost relative to the family's untuned defaults on the same
window, penalised by any SLO shortfall (`planner.tune.objective_value`); no oracle
is solved here, since only the ranking within a family matters. The family's
candidate is the better of the best trial and the defaults.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from planner.runs import RunTask, execute_run
from planner.tune import TUNING_ENGINE, objective_value
from planner.tuning_space import apply_params, suggest, tunable
from policies.spec import PolicySpecBase
from sim.result import RunResult
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
    #: Added to the SLO target during the search: a candidate tuned to just meet the
    #: target on older traffic tends to miss it on newer traffic by a fraction of a point.
    headroom: float = 0.0


@dataclass(frozen=True)
class TunedFamily:
    """A family's candidate and how it did on the training window."""

    family: str
    spec: PolicySpecBase
    params: dict[str, Any]
    train_cost_usd: float
    train_attainment: float
    trials: int
    feasible_trials: int
    chosen: str  # "tuned" or "defaults"
    wall_s: float
    errors: list[str] = field(default_factory=list)


def tune_family(job: TuneJob) -> TunedFamily:
    """Worker: the family's best spec on the training window (see the module docstring)."""
    import optuna
    from threadpoolctl import threadpool_limits

    from policies.registry import resolve

    started = time.perf_counter()
    base = resolve(job.family)
    ranges = tunable(base)
    target = min(1.0, job.scenario.slo.target_attainment + job.headroom)

    def run(spec: PolicySpecBase) -> RunResult:
        return execute_run(RunTask(job.scenario, spec, job.seed, TUNING_ENGINE))

    with threadpool_limits(limits=1, user_api="blas"):
        default = run(base)
        reference = max(default.cost_usd, 1e-9)

        def value(result: RunResult) -> float:
            return objective_value(result.cost_usd / reference, result.slo_attainment, target)

        def objective(trial: optuna.Trial) -> float:
            result = run(apply_params(base, ranges, suggest(trial, ranges)))
            trial.set_user_attr("cost_usd", result.cost_usd)
            trial.set_user_attr("slo_attainment", result.slo_attainment)
            trial.set_constraint("slo_shortfall", target - result.slo_attainment)
            return value(result)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=job.seed)
        )
        study.optimize(objective, n_trials=job.trials)
    best = min(study.trials, key=lambda t: float("inf") if t.value is None else t.value)
    feasible = sum(1 for t in study.trials if t.user_attrs["slo_attainment"] >= target)
    name = f"{job.family}-tuned"
    if best.value is not None and best.value < value(default):
        spec = apply_params(base, ranges, best.params).model_copy(update={"name": name})
        cost, attainment, chosen = (
            best.user_attrs["cost_usd"],
            best.user_attrs["slo_attainment"],
            "tuned",
        )
        params = dict(best.params)
    else:
        spec = base.model_copy(update={"name": name})
        cost, attainment, chosen, params = default.cost_usd, default.slo_attainment, "defaults", {}
    return TunedFamily(
        family=job.family,
        spec=spec,
        params=params,
        train_cost_usd=cost,
        train_attainment=attainment,
        trials=len(study.trials),
        feasible_trials=feasible,
        chosen=chosen,
        wall_s=time.perf_counter() - started,
    )
