"""A family's candidate is chosen on traffic its search never saw.

A synthetic rate trace: two calm hours (8 req/s) to fit on, then two hours of
bursts (every 20 minutes a 5-minute ramp to three times the rate), the first for
validation, the second for scoring. A search on the calm hours alone tunes to
their edge; the finalists replayed on the first bursty hour reveal which of them
keeps up.
"""

from __future__ import annotations

import random

import pytest

from planner.retrain.candidates import TunedFamily, TuneJob, tune_family
from planner.retrain.pipeline import ContestSettings, split_windows
from planner.runs import RunTask, execute_run
from planner.tune import TUNING_ENGINE, windowed
from sim.result import RunResult
from sim.scenario import Scenario, scenario_from_dict


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    noise = random.Random(1)
    rows = ["timestamp,value"]
    for minute in range(4 * 60):
        rate = 8.0
        if minute >= 120:
            rate *= 1.0 + 2.0 * max(0.0, 1.0 - abs(minute % 20 - 5) / 5.0)
        rows.append(f"{minute * 60},{rate * (1.0 + 0.05 * noise.random()):.3f}")
    trace = tmp_path_factory.mktemp("trace") / "calm-then-bursty.csv"
    trace.write_text("\n".join(rows) + "\n")
    data = {
        "name": "calm-then-bursty",
        "workload": {"format": "rate-csv", "path": str(trace)},
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 1, "max_replicas": 40, "initial_replicas": 6,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "test", trace.parent)


def tuned(scenario: Scenario, *, validated: bool) -> TunedFamily:
    validation = windowed(scenario, (2.0, 1.0)) if validated else None
    job = TuneJob(windowed(scenario, (0.0, 2.0)), "threshold", 8, 0, validation=validation)
    return tune_family(job)


def replay(scenario: Scenario, family: TunedFamily, window_h: tuple[float, float]) -> RunResult:
    return execute_run(RunTask(windowed(scenario, window_h), family.spec, 0, TUNING_ENGINE))


def test_the_validated_choice_serves_the_next_bursts_better(scenario: Scenario) -> None:
    fitted_only = tuned(scenario, validated=False)
    validated = tuned(scenario, validated=True)
    assert fitted_only.chosen_rank == 0 and fitted_only.validation_attainment is None
    assert validated.chosen_rank != 0, "the best trial on the calm hours should lose"
    scored = [replay(scenario, f, (3.0, 1.0)).slo_attainment for f in (fitted_only, validated)]
    assert scored[1] > scored[0] + 0.05


def test_the_reported_attainments_are_the_candidates_own_runs(scenario: Scenario) -> None:
    family = tuned(scenario, validated=True)
    fit = replay(scenario, family, (0.0, 2.0))
    held_out = replay(scenario, family, (2.0, 1.0))
    assert family.fit_attainment == pytest.approx(fit.slo_attainment)
    assert family.validation_attainment == pytest.approx(held_out.slo_attainment)
    assert family.train_attainment == min(fit.slo_attainment, held_out.slo_attainment)
    assert family.train_cost_usd == pytest.approx(fit.cost_usd + held_out.cost_usd)
    assert family.finalists == 6  # the defaults and the five best distinct trials


def test_the_validation_part_is_the_newest_share_of_the_training_window(
    scenario: Scenario,
) -> None:
    windows = split_windows(scenario, ContestSettings())
    assert windows.train == (0.0, 3.0) and windows.score == (3.0, 1.0)
    assert windows.validation == pytest.approx((2.4, 0.6))
    assert windows.fit == pytest.approx((0.0, 2.4))
    custom = split_windows(scenario, ContestSettings(train_window_h=(0.0, 2.5)))
    assert custom.validation == pytest.approx((2.0, 0.5)) and custom.score == (2.5, 1.5)
    plain = split_windows(scenario, ContestSettings(validation_share=0.0))
    assert plain.validation is None and plain.fit == plain.train


@pytest.mark.parametrize(
    ("train", "forecast_fit"),
    [
        ((0.0, 240.0), (96.0, 96.0)),  # ServeGen days 1-10: the first four are history only
        ((96.0, 840.0), (96.0, 672.0)),  # NAB from hour 96: four days lie behind already
        ((0.0, 130.0), (0.0, 104.0)),  # a day or less would be left: fit it all
    ],
)
def test_forecasting_families_fit_only_once_the_trace_lies_behind_them(
    train: tuple[float, float], forecast_fit: tuple[float, float]
) -> None:
    from planner.retrain.pipeline import FORECAST_WARMUP_H, Windows, _forecasts
    from policies.predictive.spec import PredictiveSpec

    defaults = PredictiveSpec()
    assert 24.0 * (defaults.min_history_days + defaults.backtest_days) == FORECAST_WARMUP_H
    validation_h = train[1] * 0.2
    windows = Windows(train, (sum(train), 96.0), (sum(train) - validation_h, validation_h))
    assert windows.forecast_fit == pytest.approx(forecast_fit)
    assert windows.to_json()["forecast_fit_h"] == pytest.approx(list(forecast_fit))
    assert [f for f in ("threshold", "hpa", "predictive", "anomaly") if _forecasts(f)] == [
        "predictive",
        "anomaly",
    ]
