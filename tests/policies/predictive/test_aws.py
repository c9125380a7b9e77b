"""AWS-like mode: hourly schedule, 6 h refresh, scheduling buffer, max capacity, forecast-only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from policies.predictive import AwsPredictivePolicy, PredictiveSpec
from policies.predictive.sizing import Sizer
from sim.contract import Observation, PolicyContext
from sim.workload.model import FloatArray, RateEnvelope

LOW_RPS, HIGH_RPS = 10.0, 60.0
#: The preset's sizing corrections (utilisation cap), as the built policies use them.
SIZING = PredictiveSpec().sizing()


def step_days(days: int) -> FloatArray:
    hours = np.arange(days * 24) % 24
    return np.where((hours >= 10) & (hours < 14), HIGH_RPS, LOW_RPS)


def aws_policy(**params: object) -> AwsPredictivePolicy:
    spec = PredictiveSpec.model_validate(
        {
            "mode": "aws",
            "models": ["seasonal-naive"],
            "quantile": None,
            "backtest_days": 1,
            **params,
        }
    )
    policy = spec.build()
    assert isinstance(policy, AwsPredictivePolicy)
    return policy


def reset_on_steps(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    **params: object,
) -> tuple[AwsPredictivePolicy, Sizer]:
    """An AWS-mode policy reset on four days of the step pattern, and its sizer."""
    context = make_context(make_envelope(step_days(4)))
    policy = aws_policy(**params)
    policy.reset(context)
    return policy, Sizer.from_context(context, SIZING)


def test_forecast_is_refreshed_every_six_hours(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy = aws_policy()
    policy.reset(make_context(make_envelope(step_days(4))))
    for t_s in np.arange(900.0, 20 * 3600.0, 900.0):
        policy.decide(make_obs(float(t_s), LOW_RPS, interval_s=900.0))
    assert policy.refresh_times_s == [900.0, 22_500.0, 44_100.0, 65_700.0]


def test_schedule_launches_a_buffer_ahead_of_the_hour(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context, scheduling_buffer_s=300)
    before = policy.decide(make_obs(9 * 3600 + 3000.0, LOW_RPS, desired=1))  # 09:50
    within = policy.decide(make_obs(9 * 3600 + 3360.0, LOW_RPS, desired=1))  # 09:56
    assert before.desired == sizer.replicas(LOW_RPS)
    assert within.desired == sizer.replicas(HIGH_RPS)
    assert within.reason == f"scheduled forecast seasonal-naive hour 9 -> {within.desired}"


def test_forecast_only_reports_but_keeps_the_reactive_decision(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy, sizer = reset_on_steps(make_envelope, make_context, forecast_only=True)
    decision = policy.decide(make_obs(11 * 3600.0, LOW_RPS, desired=1))
    assert decision.desired == sizer.replicas(LOW_RPS)
    assert decision.reason.startswith(
        f"forecast-only: forecast would set {sizer.replicas(HIGH_RPS)}; reactive"
    )


def test_reactive_part_wins_above_the_schedule(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    context = make_context(make_envelope(step_days(4)))
    policy = aws_policy()
    policy.reset(context)
    decision = policy.decide(make_obs(3 * 3600.0, 200.0))
    assert decision.desired == Sizer.from_context(context, SIZING).replicas(200.0)
    assert decision.reason.startswith("reactive ")


def test_max_capacity_honor_and_increase(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    context = make_context(make_envelope(step_days(4)))
    assert Sizer.from_context(context, SIZING).replicas(HIGH_RPS) > 12
    honor = aws_policy(max_capacity=10)
    honor.reset(context)
    assert honor.decide(make_obs(11 * 3600.0, 1.0)).desired == 10
    increase = aws_policy(
        max_capacity=10, max_capacity_behavior="increase", max_capacity_buffer_pct=20
    )
    increase.reset(context)
    assert increase.decide(make_obs(11 * 3600.0, 1.0)).desired == 12


def test_unfittable_history_falls_back_in_every_reason(
    make_envelope: Callable[..., RateEnvelope],
    make_context: Callable[..., PolicyContext],
    make_obs: Callable[..., Observation],
) -> None:
    policy = aws_policy()
    policy.reset(make_context(make_envelope(np.full(30, 5.0))))
    for t_s in (60.0, 4000.0):
        assert policy.decide(make_obs(t_s, 5.0)).reason.startswith(
            "fallback: reactive (history 30.0h < 2+1 days)"
        )
