"""The long rate window's sum from prefix sums is the sliding sum, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import sim.fluid.prepared
from sim.fluid import FluidEngine
from sim.fluid.engine import FluidSettings
from sim.fluid.prepared import window_sums
from sim.replay import FixedPolicy, SchedulePolicy

from .conftest import make_scenario, poisson_envelope


def test_prefix_sums_only_for_whole_counts() -> None:
    assert np.array_equal(window_sums(np.array([2.0, 0.0, 3.0])), [0.0, 2.0, 2.0, 5.0])
    assert window_sums(np.array([0.5, 1.0])).size == 0  # a running sum would round
    assert window_sums(np.array([1.0, 2.0**53])).size == 0


@pytest.mark.parametrize(
    "policy",
    [FixedPolicy(2), FixedPolicy(3), SchedulePolicy(np.repeat([2, 4, 1, 3, 2, 5], 20))],
    ids=["fixed:2", "fixed:3", "schedule"],
)
def test_a_near_saturated_small_pool_runs_as_with_the_sliding_window(
    policy: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool of a few slots near saturation, on the strata path (no per-request work),
    where the window's width follows the utilisation second by second: the run with
    prefix sums equals the run that slides the window (the sums left empty)."""
    scenario = make_scenario(pool={"min_replicas": 1, "max_replicas": 8, "initial_replicas": 2})
    workload = poisson_envelope(3.0, 1800.0)
    settings = FluidSettings(exact_sampling_max_requests=0)  # sampled per second, strata
    fast = FluidEngine(settings).run(scenario, workload, policy, seed=2)  # type: ignore[arg-type]
    monkeypatch.setattr(sim.fluid.prepared, "window_sums", lambda arrivals: np.zeros(0))
    slid = FluidEngine(settings).run(scenario, workload, policy, seed=2)  # type: ignore[arg-type]
    assert (fast.cost_usd, fast.slo_attainment, fast.served, fast.dropped) == (
        slid.cost_usd, slid.slo_attainment, slid.served, slid.dropped,
    )  # fmt: skip
    assert (fast.p50_latency_s, fast.p95_latency_s, fast.p99_latency_s) == (
        slid.p50_latency_s, slid.p95_latency_s, slid.p99_latency_s,
    )  # fmt: skip
    assert np.array_equal(fast.series.p95_latency_s, slid.series.p95_latency_s, equal_nan=True)
