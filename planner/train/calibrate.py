"""Calibrate the threshold baseline on the training data (RLScale-Bench's hard baseline).

The objective, search space and sampler of `planner tune` (`planner.tune.objective_value`,
`planner.tuning_space`, TPE with the SLO shortfall as a constraint), run on windows
cut by `planner.train.windows`: `planner.tune.tune_policy` builds each window
unscaled first to measure it, which the workload memory check refuses for traces
published at a high rate (ServeGen m-small, ~1,170 req/s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.oracle import solve_reference
from planner.runs import RunTask, execute_run, scenario_inputs
from planner.tune import objective_value
from planner.tuning_space import apply_params, suggest, tunable
from policies.registry import resolve
from policies.spec import PolicySpecBase
from sim.scenario import Scenario


@dataclass(frozen=True)
class Calibrated:
    spec: PolicySpecBase
    params: dict[str, Any]
    trials: int
    feasible_trials: int


def calibrate(fit: Scenario, policy: str, *, trials: int, seed: int) -> Calibrated:
    """The cheapest parameters of `policy` meeting the SLO on `fit` (smallest shortfall if none)."""
    import optuna

    (base,) = [resolve(policy)]
    ranges = tunable(base)
    oracle = solve_reference(fit, scenario_inputs(fit)[0])
    target = fit.slo.target_attainment

    def objective(trial: optuna.Trial) -> float:
        spec = apply_params(base, ranges, suggest(trial, ranges))
        result = execute_run(RunTask(fit, spec, seed, "fluid"))
        shortfall = target - result.slo_attainment
        trial.set_user_attr("shortfall", shortfall)
        trial.set_constraint("slo_shortfall", shortfall)
        ratio = oracle.ratio(result.cost_usd)
        return objective_value(
            ratio if ratio is not None else result.cost_usd, result.slo_attainment, target
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    feasible = sum(1 for t in study.trials if t.user_attrs["shortfall"] <= 0)
    best = (
        study.best_trial
        if feasible
        else min(study.trials, key=lambda t: float("inf") if t.value is None else t.value)
    )
    spec = apply_params(base, ranges, best.params).model_copy(
        update={"name": f"{base.display_name()}-tuned"}
    )
    return Calibrated(spec, dict(best.params), len(study.trials), feasible)
