"""The predictive policy: prescaling one delay ahead, reactive floor, explicit fallbacks."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from policies.predictive import PredictivePolicy, PredictiveSpec
from policies.predictive.policy import ReactiveFloor
from policies.predictive.sizing import ScaleInHold, Sizer, SizingConfig, recent_demand_rps
from sim.capacity.queueing import servers_for_attainment
from sim.contract import Observation, PolicyContext
from sim.workload.model import FloatArray, RateEnvelope

LOW_RPS, HIGH_RPS = 10.0, 60.0
#: The preset's sizing corrections (utilisation cap), as the built policies use them.
SIZING = PredictiveSpec().sizing()


def step_days(days: int) -> FloatArray:
    """Hourly demand: 10 rps, and 60 rps from 10:00 to 14:00 every day."""
    hours = np.arange(days * 24) % 24
    return np.where((hours >= 10) & (hours < 14), HIGH_RPS, LOW_RPS)


def naive_policy() -> PredictivePolicy:
    """Seasonal naive on hourly bins: its forecast is exactly yesterday, so tests are exact."""
    spec = PredictiveSpec(bin_s=3600, models=("seasonal-naive",), quantile=None, backtest_days=1)
    policy = spec.build()
    assert isinstance(policy, PredictivePolicy)
    return policy


def reset_on_steps(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    provisioning_s: float = 1800.0,
) -> tuple[PredictivePolicy, Sizer]:
    """The seasonal-naive policy reset on four days of the step pattern, and its sizer."""
    context = make_context(make_envelope(step_days(4)), provisioning_s=provisioning_s)
    policy = naive_policy()
    policy.reset(context)
    return policy, Sizer.from_context(context, SIZING)


def test_decision_at_t_covers_demand_at_t_plus_provisioning(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context)
    early = policy.decide(make_obs(9 * 3600 + 1200, LOW_RPS, desired=1))  # 09:20: ready by 09:50
    late = policy.decide(make_obs(9 * 3600 + 2400, LOW_RPS, desired=1))  # 09:40: ready by 10:10
    assert early.desired == sizer.replicas(LOW_RPS)
    assert late.desired == sizer.replicas(HIGH_RPS)
    assert late.reason.startswith("forecast seasonal-naive 60.0 rps @mean (t+1800s)")


def test_scale_in_waits_until_the_bin_ends(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context)
    # 13:50: the peak lasts until 14:00; removing capacity now would be too early.
    assert policy.decide(make_obs(13 * 3600 + 3000, LOW_RPS)).desired == sizer.replicas(HIGH_RPS)
    assert policy.decide(make_obs(14 * 3600 + 60, LOW_RPS)).desired == sizer.replicas(LOW_RPS)


def test_reactive_floor_wins_when_the_forecast_is_too_low(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context)
    decision = policy.decide(make_obs(3 * 3600, 100.0))
    assert decision.desired == sizer.replicas(100.0) > sizer.replicas(LOW_RPS)
    assert decision.reason.startswith(f"reactive floor {sizer.replicas(100.0)} (100.0 rps) > ")


def test_short_history_falls_back_loudly_in_every_reason(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = PredictiveSpec().build()
    with caplog.at_level(logging.WARNING):
        policy.reset(make_context(make_envelope(np.full(3, 20.0))))
    assert "falling back to reactive" in caplog.text
    sizer = Sizer.from_context(make_context(None), SIZING)
    for t_s in (60.0, 120.0, 180.0):
        decision = policy.decide(make_obs(t_s, 20.0))
        assert decision.reason.startswith("fallback: reactive (history 3.0h < 2+2 days)")
        assert decision.desired == sizer.replicas(20.0)


def test_no_history_falls_back(
    make_context: Callable[..., PolicyContext], make_obs: Callable[..., Observation]
) -> None:
    policy = PredictiveSpec().build()
    policy.reset(make_context(None))
    assert policy.decide(make_obs(60.0, 5.0)).reason.startswith("fallback: reactive (no history)")


def test_missing_demand_holds_and_bins_without_samples_count_as_missing(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context, provisioning_s=600.0)
    decision = policy.decide(make_obs(7200.0 + 60, None, desired=7))
    assert policy.forecast is not None and policy.forecast.completed == 2
    # Missing bins were filled with the forecast (yesterday), not with zero demand.
    np.testing.assert_allclose(policy.forecast.forecast_bins(1), [LOW_RPS])
    assert decision.desired == max(7, sizer.replicas(LOW_RPS))


def test_decisions_clamp_to_pool_bounds(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, _ = reset_on_steps(make_envelope, make_context)
    decision = policy.decide(make_obs(9 * 3600 + 2400, LOW_RPS, max_replicas=5))
    assert decision.desired == 5
    assert decision.reason.endswith("clamped to 5")


def test_same_history_same_decisions(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
    make_series: Callable[..., FloatArray],
) -> None:
    history = make_envelope(make_series(days=5))
    spec = PredictiveSpec(bin_s=3600, models=("ets-add", "seasonal-naive"), backtest_days=1)
    runs = []
    for _ in range(2):
        policy = spec.build()
        policy.reset(make_context(history))
        runs.append([policy.decide(make_obs(t, 45.0)) for t in np.arange(60.0, 7200.0, 60.0)])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("rates", [np.linspace(0.5, 400.0, 60)])
def test_sizing_is_monotone_and_matches_erlang_c(
    rates: FloatArray, make_context: Callable[..., PolicyContext]
) -> None:
    context = make_context(None)
    sizer = Sizer.from_context(context)
    sizes = [sizer.replicas(float(r)) for r in rates]
    assert sizes == sorted(sizes)
    assert sizer.replicas(0.0) == 0
    for rate in rates[::10]:
        exact = math.ceil(servers_for_attainment(float(rate), 2.0, 6.0, 0.95) / context.max_batch)
        # Rates round up to a 1% grid: never below the exact answer, at most one step above.
        assert (
            exact
            <= sizer.replicas(float(rate))
            <= math.ceil(
                servers_for_attainment(float(rate) * 1.01, 2.0, 6.0, 0.95) / context.max_batch
            )
        )


def test_recent_demand_averages_the_window(make_obs: Callable[..., Observation]) -> None:
    from sim.contract import MetricHistory, MetricSample

    history = MetricHistory.of(
        [MetricSample(float(t), float(t), None, 1, 1) for t in (30, 60, 90, 120)]
    )
    obs = make_obs(150.0, 150.0)
    obs = Observation(**{**obs.__dict__, "history": history})
    assert recent_demand_rps(obs, 61.0) == pytest.approx((90 + 120 + 150) / 3)


def test_floor_holds_before_scaling_in_and_drains_the_queue(
    make_context: Callable[..., PolicyContext], make_obs: Callable[..., Observation]
) -> None:
    context = make_context(None, provisioning_s=300.0)
    sizer = Sizer.from_context(context, SIZING)
    floor = ReactiveFloor(window_s=1.0, hold_s=300.0)
    high, _ = floor.replicas(make_obs(60.0, 80.0), sizer, 300.0)
    held, why = floor.replicas(make_obs(120.0, 10.0), sizer, 300.0)
    assert high == held == sizer.replicas(80.0)
    assert "held at" in why
    released, _ = floor.replicas(make_obs(361.0, 10.0), sizer, 300.0)
    assert released == sizer.replicas(10.0)
    queued = replace(make_obs(400.0, 10.0), queue_len=3000)
    drained, why = floor.replicas(queued, sizer, 300.0)
    assert drained == sizer.replicas(10.0 + 3000 / 300.0)
    assert "queue 3000 over 300s" in why


def test_burstier_traffic_needs_more_replicas(make_context: Callable[..., PolicyContext]) -> None:
    context = make_context(None)
    sizes = [
        Sizer.from_context(context, SizingConfig(variability=k)).replicas(50.0)
        for k in (1.0, 2.0, 4.0, 8.0)
    ]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_utilisation_cap_bounds_planned_batch_occupancy(
    make_context: Callable[..., PolicyContext],
) -> None:
    context = make_context(None)
    capped = Sizer.from_context(context, SizingConfig(max_utilisation=0.5))
    # 100 rps x 2 s = 200 busy slots; at most half of 4 slots per replica busy -> 100.
    assert 100 <= capped.replicas(100.0) <= 101  # rates round up to a 1% grid
    assert Sizer.from_context(context).replicas(100.0) < 100


def test_nan_demand_is_a_missing_metric(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, _ = reset_on_steps(make_envelope, make_context, provisioning_s=600.0)
    decision = policy.decide(make_obs(60.0, float("nan"), desired=7))
    policy.decide(make_obs(3700.0, LOW_RPS))
    assert policy.forecast is not None
    assert np.isfinite(policy.forecast.forecast_bins(3)).all()
    assert decision.desired >= 7


def test_a_run_does_not_start_by_dropping_its_initial_capacity(
    make_context: Callable[..., PolicyContext], make_obs: Callable[..., Observation]
) -> None:
    policy = PredictiveSpec().build()
    policy.reset(make_context(None))
    first = policy.decide(make_obs(15.0, 1.0, desired=8, utilisation=0.1))
    assert first.desired == 8 and "held at 8" in first.reason
    later = policy.decide(make_obs(400.0, 1.0, desired=8, utilisation=0.1))
    assert later.desired < 8


def test_scale_in_hold_of_zero_passes_every_recommendation_through() -> None:
    hold = ScaleInHold(0.0)
    assert [hold.push(t, n, current=9) for t, n in ((0.0, 5), (15.0, 3), (30.0, 7))] == [5, 3, 7]


@pytest.mark.parametrize("hold_s", [15.0, 45.0, 300.0], ids=["one-interval", "3-intervals", "k8s"])
def test_scale_in_hold_is_the_highest_recommendation_of_its_window(hold_s: float) -> None:
    rng = np.random.default_rng(7)
    hold = ScaleInHold(hold_s)
    seen: list[tuple[float, int]] = [(0.0, 12)]  # the seed: the capacity in force
    for step in range(400):
        time_s, replicas = step * 15.0, int(rng.integers(0, 20))
        seen.append((time_s, replicas))
        expected = max(n for t, n in seen if t > time_s - hold_s)
        assert hold.push(time_s, replicas, current=12) == expected, step


def test_floor_tracks_utilisation_only_when_asked(
    make_context: Callable[..., PolicyContext], make_obs: Callable[..., Observation]
) -> None:
    sizer = Sizer.from_context(make_context(None), SIZING)
    saturated = make_obs(15.0, 10.0, desired=40, utilisation=1.0)
    tracking, why = ReactiveFloor(60.0, 0.0, track_utilisation=True).replicas(
        saturated, sizer, 300.0
    )
    demand_only, _ = ReactiveFloor(60.0, 0.0, track_utilisation=False).replicas(
        saturated, sizer, 300.0
    )
    # A saturated pool reads as 40 / cap replicas whatever the demand.
    assert tracking == math.ceil(40 / SIZING.max_utilisation) and "utilisation 1.00 of 40" in why
    assert demand_only == sizer.replicas(10.0) < tracking
    assert PredictiveSpec().build().floor.track_utilisation is False  # type: ignore[attr-defined]


def test_decide_before_reset_is_a_caller_error(make_obs: Callable[..., Observation]) -> None:
    with pytest.raises(RuntimeError, match="decide\\(\\) before reset\\(\\)"):
        PredictiveSpec().build().decide(make_obs(15.0, 10.0))


def test_a_diverged_forecast_is_capped_at_a_multiple_of_the_history_peak() -> None:
    """A model that forecasts 8e94 req/s (seen on NAB Twitter FB) must not size the pool."""
    from policies.predictive.online import FORECAST_CEILING_FACTOR, OnlineForecast

    class Diverged:
        def forecast(self, steps: int) -> np.ndarray:
            return np.full(steps, 8.05e94)

        def append(self, values: np.ndarray) -> None:
            del values

    class FakeSelection:
        model = Diverged()

        def ratio_quantile(self, quantile: float | None) -> np.ndarray:
            del quantile
            return np.ones(4)

    config = SimpleNamespace(bin_s=600.0, horizon_bins=4, quantile=None)
    online = OnlineForecast(FakeSelection(), config, 0, ceiling_rps=FORECAST_CEILING_FACTOR * 50.0)  # type: ignore[arg-type]
    mean, quantile_rps, _ = online.forecast_at(0.0)
    assert mean == quantile_rps == 200.0
    assert online.capped == 1
    online.observe(700.0, 15.0, None)  # a bin without demand is filled with the capped forecast
    assert online.forecast_at(700.0)[0] == 200.0
