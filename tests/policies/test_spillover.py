"""Serverless spillover: GPUs for the base, provisioned concurrency for the overflow."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from policies.predictive import PredictiveSpec
from policies.predictive.sizing import Sizer
from policies.spec import validate_spec
from policies.spillover import SpilloverPolicy, SpilloverSpec
from sim.contract import SPILLOVER, Decision, Observation, PolicyContext
from sim.errors import PolicyError
from sim.workload.model import RateEnvelope

SPILL_S = 3.0
REPLICA_RPS = 2.0

CONTEXT = PolicyContext(
    interval_s=60.0,
    min_replicas=1,
    max_replicas=500,
    replica_capacity_rps=REPLICA_RPS,
    provisioning_s=600.0,
    slo_latency_s=6.0,
    slo_target=0.95,
    mean_service_s=2.0,
    max_batch=4,
    spillover_mean_service_s=SPILL_S,
)
SIZER = Sizer.from_context(CONTEXT, PredictiveSpec().sizing())


def obs(time_s: float, demand: float | None, ready: int) -> Observation:
    return Observation(
        time_s=time_s,
        interval_s=60.0,
        demand_rps=demand,
        utilisation=0.8,
        queue_len=0,
        ready=ready,
        pending=0,
        desired=ready,
        min_replicas=1,
        max_replicas=500,
        replica_capacity_rps=REPLICA_RPS,
    )


def recent_policy() -> SpilloverPolicy:
    policy = SpilloverSpec(base="recent").build()
    assert isinstance(policy, SpilloverPolicy)
    policy.reset(CONTEXT)
    return policy


def feed(
    policy: SpilloverPolicy, demands: list[float], ready: int, start_s: float = 60.0
) -> list[Decision]:
    return [policy.decide(obs(start_s + 60.0 * i, d, ready)) for i, d in enumerate(demands)]


def overflow_concurrency(burst: float, ready: int) -> int:
    return math.ceil(max(burst - SIZER.max_rate(ready), 0.0) * SPILL_S)


def test_max_rate_inverts_sizing() -> None:
    for replicas in (1, 5, 21, 80):
        rate = SIZER.max_rate(replicas)
        assert SIZER.replicas(rate) <= replicas < SIZER.replicas(rate * 1.011)


def test_steady_load_runs_on_gpus_only() -> None:
    policy = recent_policy()
    ready = SIZER.replicas(40.0)
    last = feed(policy, [40.0] * 30, ready)[-1]
    assert last.desired == ready
    assert last.targets.get(SPILLOVER) == overflow_concurrency(40.0, ready) == 0


def test_short_burst_spills_and_gpus_hold_the_base() -> None:
    policy = recent_policy()
    ready = SIZER.replicas(40.0)
    decisions = feed(policy, [40.0] * 30 + [80.0] * 3, ready)
    burst = decisions[-1]
    # Three minutes of burst is shorter than a GPU boot: GPUs stay at the base.
    assert burst.desired == ready
    assert burst.targets.get(SPILLOVER) == overflow_concurrency(80.0, ready) > 0
    assert "spillover" in burst.reason and "overflow" in burst.reason


def test_sustained_burst_moves_to_gpus() -> None:
    policy = recent_policy()
    ready = SIZER.replicas(40.0)
    decisions = feed(policy, [40.0] * 30 + [80.0] * 12, ready)
    assert decisions[-1].desired == SIZER.replicas(80.0)
    # Once the GPUs are ready, the endpoint is no longer provisioned for the overflow.
    after = policy.decide(obs(60.0 * 43, 80.0, SIZER.replicas(80.0)))
    assert after.targets.get(SPILLOVER) == overflow_concurrency(80.0, SIZER.replicas(80.0))
    assert after.targets.get(SPILLOVER) < decisions[-1].targets.get(SPILLOVER)  # type: ignore[operator]


def test_provisioned_concurrency_is_capped() -> None:
    policy = SpilloverSpec(base="recent", max_provisioned=5).build()
    policy.reset(CONTEXT)
    decision = policy.decide(obs(60.0, 500.0, 1))
    assert decision.targets.get(SPILLOVER) == 5


def test_forecast_base_and_its_fallback_are_named() -> None:
    hours = np.arange(4 * 24)
    history = RateEnvelope(
        bin_s=3600.0,
        rate_rps=np.where(hours % 24 >= 12, 40.0, 30.0),
        missing=np.zeros(len(hours), bool),
        epoch_s=0.0,
    )
    forecast = PredictiveSpec(bin_s=3600, models=("seasonal-naive",), backtest_days=1)
    spec = SpilloverSpec(forecast=forecast)
    policy = spec.build()
    policy.reset(replace(CONTEXT, history=history, epoch_s=history.duration_s))
    decision = policy.decide(obs(60.0, 30.0, SIZER.replicas(30.0)))
    assert "(forecast q0.5)" in decision.reason
    assert decision.desired == SIZER.replicas(30.0)
    short = spec.build()
    short.reset(
        replace(
            CONTEXT,
            history=replace(history, rate_rps=history.rate_rps[:10], missing=history.missing[:10]),
        )
    )
    assert (
        "fallback: recent (history 10.0h < 2+1 days) q0.5"
        in short.decide(obs(60.0, 30.0, 5)).reason
    )


def test_a_scenario_without_spillover_is_a_policy_error() -> None:
    policy = SpilloverSpec(base="recent").build()
    with pytest.raises(PolicyError, match="add a 'spillover:' block"):
        policy.reset(replace(CONTEXT, spillover_mean_service_s=None))


def test_missing_demand_holds() -> None:
    policy = recent_policy()
    decision = policy.decide(obs(60.0, None, 7))
    assert decision.desired == 7 and decision.targets.get(SPILLOVER) is None


def test_a_metrics_gap_longer_than_sustain_keeps_the_base() -> None:
    policy = recent_policy()
    ready = SIZER.replicas(40.0)
    feed(policy, [40.0] * 10, ready)
    # 20 minutes without a demand sample: older samples remain in the base window only.
    decision = policy.decide(obs(60.0 * 31, None, ready))
    assert decision.desired == ready
    assert "sustained 0.0 rps" in decision.reason


@pytest.mark.parametrize(
    "data",
    [{"base_quantile": 1.0}, {"max_provisioned": 500}, {"base": "oracle"}, {"sustain_s": -1}],
    ids=["quantile", "sagemaker-cap", "base", "sustain"],
)
def test_invalid_params_are_policy_errors(data: dict[str, object]) -> None:
    with pytest.raises(PolicyError, match="invalid policy spec"):
        validate_spec(SpilloverSpec, {"kind": "spillover", **data}, "spec.yaml")


def test_same_demand_same_decisions() -> None:
    noise = [40.0 + 20.0 * float(x) for x in np.random.default_rng(5).random(60)]
    runs = [feed(recent_policy(), noise, SIZER.replicas(40.0)) for _ in range(2)]
    assert runs[0] == runs[1]
