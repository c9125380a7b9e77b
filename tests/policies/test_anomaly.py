"""Anomaly-triggered pre-scaling: the z-score fires on a surge, before utilisation does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.anomaly import AnomalyPolicy, AnomalySpec, target_tracking
from policies.predictive import PredictiveSpec
from policies.predictive.sizing import Sizer
from policies.spec import validate_spec
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.errors import PolicyError
from sim.workload.model import RateEnvelope

HOURS = np.arange(4 * 24)
HISTORY_RPS = 40.0 * (1.0 + 0.2 * np.sin(2 * np.pi * HOURS / 24))


def context(history: RateEnvelope | None) -> PolicyContext:
    return PolicyContext(
        interval_s=60.0,
        min_replicas=1,
        max_replicas=500,
        replica_capacity_rps=2.0,
        provisioning_s=600.0,
        slo_latency_s=6.0,
        slo_target=0.95,
        mean_service_s=2.0,
        max_batch=4,
        epoch_s=None,
        history=history,
    )


def history() -> RateEnvelope:
    return RateEnvelope(
        bin_s=3600.0, rate_rps=HISTORY_RPS, missing=np.zeros(len(HOURS), bool), epoch_s=0.0
    )


def obs(time_s: float, demand: float, utilisation: float = 0.7, ready: int = 30) -> Observation:
    return Observation(
        time_s=time_s,
        interval_s=60.0,
        demand_rps=demand,
        utilisation=utilisation,
        queue_len=0,
        ready=ready,
        pending=0,
        desired=ready,
        min_replicas=1,
        max_replicas=500,
        replica_capacity_rps=2.0,
    )


def spec() -> AnomalySpec:
    forecast = PredictiveSpec(bin_s=3600, models=("seasonal-naive",), backtest_days=1)
    return AnomalySpec(forecast=forecast)


def run(policy: Policy, surge_at_s: float, seed: int) -> list[Decision]:
    """40 minutes of demand at the forecast (2% noise), then +60%, utilisation on target."""
    noise = np.random.default_rng(seed)
    decisions = []
    for t_s in np.arange(60.0, 3600.0, 60.0):
        expected = HISTORY_RPS[int(t_s // 3600)]
        factor = 1.6 if t_s >= surge_at_s else 1.0
        decisions.append(
            policy.decide(obs(t_s, expected * factor * (1 + 0.02 * noise.standard_normal())))
        )
    return decisions


def test_surge_triggers_scale_out_while_utilisation_is_on_target() -> None:
    policy = spec().build()
    assert isinstance(policy, AnomalyPolicy)
    policy.reset(context(history()))
    decisions = run(policy, surge_at_s=2460.0, seed=7)
    calm, surge = decisions[:40], decisions[40]
    assert all("anomaly" not in d.reason and d.desired == 30 for d in calm)
    assert surge.reason.startswith("anomaly z=")
    implied = HISTORY_RPS[0] * 1.6 * 1.1
    assert (
        surge.desired
        >= Sizer.from_context(context(None), PredictiveSpec().sizing()).replicas(implied * 0.95)
        > 30
    )
    # The surge stays anomalous (its residuals do not enter the window) while it lasts.
    assert all(d.reason.startswith("anomaly") for d in decisions[41:])


def test_same_seed_same_decisions() -> None:
    runs = []
    for _ in range(2):
        policy = spec().build()
        policy.reset(context(history()))
        runs.append(run(policy, surge_at_s=2460.0, seed=3))
    assert runs[0] == runs[1]


def test_without_history_the_baseline_is_a_rolling_mean() -> None:
    policy = spec().build()
    policy.reset(context(None))
    decisions = run(policy, surge_at_s=2460.0, seed=7)
    assert all(
        d.reason.startswith("fallback: baseline rolling mean (no history); ") for d in decisions
    )
    assert "anomaly z=" in decisions[40].reason


@pytest.mark.parametrize(
    ("utilisation", "ready", "demand", "expected"),
    [
        (0.7, 10, 5.0, 10),
        (0.75, 10, 5.0, 10),
        (0.91, 10, 5.0, 13),
        (0.35, 10, 5.0, 5),
        (None, 0, 14.0, 10),
        (None, 0, None, 10),
        (0.8, 6, 5.0, 10),
    ],
    ids=["on-target", "tolerance", "up", "down", "no-util", "no-metrics", "pending"],
)
def test_target_tracking_table(
    utilisation: float | None, ready: int, demand: float | None, expected: int
) -> None:
    observation = Observation(
        time_s=60.0,
        interval_s=60.0,
        demand_rps=demand,
        utilisation=utilisation,
        queue_len=0,
        ready=ready,
        pending=10 - ready if ready else 0,  # the rest of the desired 10 is booting
        desired=10,
        min_replicas=1,
        max_replicas=50,
        replica_capacity_rps=2.0,
    )
    assert target_tracking(observation, 0.7, 0.1)[0] == expected


@pytest.mark.parametrize(
    "data",
    [{"z_threshold": 0}, {"target_utilisation": 1.5}, {"forecast": {"quantile": 2}}, {"zz": 1}],
    ids=["z", "target", "forecast", "extra"],
)
def test_invalid_params_are_policy_errors(data: dict[str, object]) -> None:
    with pytest.raises(PolicyError, match="invalid policy spec"):
        validate_spec(AnomalySpec, {"kind": "anomaly", **data}, "spec.yaml")


@settings(max_examples=60, deadline=None)
@given(
    residuals=st.lists(st.floats(-1.0, 20.0), min_size=1, max_size=120),
    window_s=st.sampled_from([60.0, 300.0, 1800.0]),
)
def test_zscore_running_sums_match_the_window_statistics(
    residuals: list[float], window_s: float
) -> None:
    """The O(1) running sums give numpy's mean and population std of the window."""
    policy = AnomalySpec(window_s=window_s, min_samples=2).build()
    assert isinstance(policy, AnomalyPolicy)
    kept: list[tuple[float, float]] = []
    for k, residual in enumerate(residuals):
        now = 15.0 * (k + 1)
        kept = [(t, r) for t, r in kept if t > now - window_s]
        z = policy.detector.zscore(now, residual)
        if len(kept) >= 2:
            values = np.array([r for _, r in kept])
            spread = max(float(values.std()), policy.detector.min_std)
            assert z == pytest.approx((residual - values.mean()) / spread, rel=1e-7, abs=1e-7)
        else:
            assert z is None
        policy.detector.remember(now, residual)
        kept.append((now, residual))
