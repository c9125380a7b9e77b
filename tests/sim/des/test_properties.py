"""Properties of every run: conservation, costs that add up, determinism by seed."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.capacity.distributions import Delay
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool, ServerlessEndpoint
from sim.capacity.service import ExponentialService, TokenService
from sim.contract import SPILLOVER, Decision, Observation, PolicyContext
from sim.des import DesEngine
from sim.des.requests import DROPPED, IN_FLIGHT, SERVED
from sim.result import RunResult
from sim.workload.model import RateEnvelope, RequestTrace, TokenProfile


class Jitter:
    """A test policy that moves capacity at random (from the context's seeded rng),
    sometimes outside the bounds, to exercise scale-out, drain, cancel and clamps."""

    name = "jitter"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, context: PolicyContext) -> None:
        self.rng = context.rng

    def decide(self, observation: Observation) -> Decision:
        desired = observation.desired + int(self.rng.integers(-3, 4))
        provisioned = int(self.rng.integers(-1, 3))
        return Decision(desired, "jitter", targets={SPILLOVER: provisioned})


def _delay(mean_s: float) -> Delay:
    return Delay(kind="lognormal", mean_s=mean_s, cv=0.5)


def _build(kind: str, max_batch: int, spot: float, hazard: float, timeout_s: float) -> object:
    service = TokenService(max_batch=max_batch, decode_s_per_token=0.005)
    common: dict[str, object] = {
        "min_replicas": 1,
        "max_replicas": 6,
        "service": service,
        "queue_timeout_s": timeout_s,
        "model_load_s": _delay(20),
    }
    if kind == "gpu":
        return GpuNodePool(
            instance_type="g5.12xlarge",
            replicas_per_gpu=1,
            spot_share=spot,
            spot_interruption_per_h=hazard,
            node_failure_per_h=hazard / 4,
            node_boot_s=_delay(40),
            image_pull_s=_delay(20),
            **common,  # type: ignore[arg-type]
        )
    if kind == "asg":
        return Ec2AutoScalingGroup(
            instance_type="g5.xlarge",
            spot_share=spot,
            spot_interruption_per_h=hazard,
            warm_pool_size=2,
            instance_boot_s=_delay(60),
            warm_start_s=_delay(10),
            **common,  # type: ignore[arg-type]
        )
    return ServerlessEndpoint(
        min_replicas=0,
        max_replicas=4,
        service=ExponentialService(mean_s=1.0),
        cold_start_s=Delay(kind="exponential", mean_s=3.0),
        keep_alive_s=30.0,
    )


def _check_conservation(result: RunResult, outcome: np.ndarray) -> None:
    assert result.served + result.dropped + result.in_flight == result.arrivals
    assert result.served == int(np.count_nonzero(outcome == SERVED))
    assert result.dropped == int(np.count_nonzero(outcome == DROPPED))
    assert result.in_flight == int(np.count_nonzero(outcome == IN_FLIGHT))
    assert all(cost >= 0.0 for cost in result.cost_by_pool.values())
    assert np.isclose(result.cost_usd, sum(result.cost_by_pool.values()), rtol=1e-12)
    assert result.gpu_hours >= 0.0
    assert 0.0 <= result.slo_attainment <= 1.0
    cumulative = result.series.cost_usd
    assert np.all(np.diff(cumulative) >= -1e-12)
    assert cumulative[-1] <= result.cost_usd + 1e-9  # the minimum charge is added at the end


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["gpu", "asg", "serverless"]),
    rate_rps=st.floats(0.1, 6.0),
    duration_s=st.floats(30.0, 900.0),
    max_batch=st.integers(1, 8),
    spot=st.sampled_from([0.0, 0.5, 1.0]),
    hazard=st.sampled_from([0.0, 20.0, 200.0]),
    timeout_s=st.sampled_from([1.0, 10.0, 120.0]),
    with_spill=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_arrival_is_served_dropped_or_in_flight(
    kind: str,
    rate_rps: float,
    duration_s: float,
    max_batch: int,
    spot: float,
    hazard: float,
    timeout_s: float,
    with_spill: bool,
    seed: int,
    make_scenario: Callable,
) -> None:
    pool = _build(kind, max_batch, spot, hazard, timeout_s)
    spill = None
    if with_spill and kind != "serverless":
        spill = ServerlessEndpoint(
            name="spill", max_replicas=3, cold_start_s=Delay(kind="exponential", mean_s=2.0)
        )
    rng = np.random.default_rng(seed)
    arrival_s = np.sort(rng.uniform(0.0, duration_s, rng.poisson(rate_rps * duration_s)))
    trace = RequestTrace(arrival_s=arrival_s, duration_s=duration_s, source="hypothesis")
    run = DesEngine().simulate(
        make_scenario(pool, spillover=spill, interval_s=10.0),
        trace,
        Jitter(),
        seed=seed,
    )
    _check_conservation(run.result, run.requests.outcome)
    served = run.requests.outcome == SERVED
    assert np.all(run.requests.latency_s[served] >= 0.0)
    assert np.all(run.requests.start_s[served] >= run.requests.arrival_s[served])


def _rich_scenario(make_scenario: Callable, kind: str) -> object:
    """A scenario exercising every random source of one pool kind."""
    if kind == "serverless":
        pool: object = ServerlessEndpoint(
            min_replicas=1,
            max_replicas=30,
            service=ExponentialService(mean_s=2.0),
            cold_start_s=Delay(kind="lognormal", mean_s=5.0, cv=0.5),
            keep_alive_s=60.0,
        )
        return make_scenario(pool, interval_s=15.0)
    common: dict[str, object] = {
        "min_replicas": 1,
        "max_replicas": 12,
        "spot_share": 0.5,
        "spot_interruption_per_h": 30.0,
        "node_failure_per_h": 5.0,
        "queue_timeout_s": 20.0,
    }
    if kind == "asg":
        pool = Ec2AutoScalingGroup(instance_type="g5.xlarge", warm_pool_size=2, **common)  # type: ignore[arg-type]
        return make_scenario(pool, interval_s=15.0)
    pool = GpuNodePool(instance_type="g5.12xlarge", **common)  # type: ignore[arg-type]
    spill = ServerlessEndpoint(name="spill", spill_queue_threshold=2)
    return make_scenario(pool, spillover=spill, interval_s=15.0)


def _envelope() -> RateEnvelope:
    rate = np.array([2.0, 6.0, 12.0, 4.0, 8.0, 1.0])
    return RateEnvelope(
        bin_s=300.0, rate_rps=rate, missing=np.zeros(rate.size, bool), tokens=TokenProfile()
    )


@pytest.mark.parametrize("kind", ["gpu-with-spillover", "asg", "serverless"])
def test_same_seed_same_result_bit_for_bit(make_scenario: Callable, kind: str) -> None:
    chosen = _rich_scenario(make_scenario, kind.removesuffix("-with-spillover"))
    first = DesEngine().run(chosen, _envelope(), Jitter(), seed=42)  # type: ignore[arg-type]
    second = DesEngine().run(chosen, _envelope(), Jitter(), seed=42)  # type: ignore[arg-type]
    other = DesEngine().run(chosen, _envelope(), Jitter(), seed=43)  # type: ignore[arg-type]
    assert pickle.dumps(first) == pickle.dumps(second)
    assert pickle.dumps(first) != pickle.dumps(other)
    assert first.scaling_actions > 0
    if kind != "serverless":
        assert first.retried > 0, "spot reclaims and failures exercised"
    if kind != "asg":
        assert first.cold_starts > 0
    assert first.served + first.dropped + first.in_flight == first.arrivals


def test_series_has_one_row_per_decision_plus_the_end(
    make_scenario: Callable, make_poisson: Callable
) -> None:
    pool = GpuNodePool(instance_type="g5.xlarge", min_replicas=1, max_replicas=3)
    trace = make_poisson(1.0, 100.0, seed=1)
    result = DesEngine().run(make_scenario(pool, interval_s=15.0), trace, Jitter(), seed=1)
    np.testing.assert_allclose(result.series.time_s, [15, 30, 45, 60, 75, 90, 100])
    widths_s = np.diff([0.0, *result.series.time_s])
    assert np.sum(result.series.demand_rps * widths_s) == pytest.approx(result.arrivals)
