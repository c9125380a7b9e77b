"""The fluid engine counts the arrivals the workload realised, interval by interval.

Two hours of the bundled ServeGen day at 60 req/s with the traffic stopped for
20 minutes at a time, on the engine's production-scale path (no request drawn one
by one, as for any envelope of more than 3 M requests). A pool with few slots near
saturation takes its stationary wait's rate from a window of up to 12 h each side;
it once took its queue's input from that window too, so the engine counted requests
in the gaps (and lost others in the busy hours). The queue's input is each second's
own arrivals, whatever the pool does.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.contract import Policy
from sim.control import ControlLoop
from sim.engine import make_context
from sim.fluid import kernel as K
from sim.fluid.engine import _InstanceRun
from sim.replay import FixedPolicy, SchedulePolicy
from tests.gap_case import INTERVAL_S, OFF_S, ON_S, GapCase, make_gap_case


@pytest.fixture(scope="module")
def gap_case() -> GapCase:
    return make_gap_case()


def _counted_and_realised(
    case: GapCase, policy: Policy
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per decision interval: the arrivals the engine counted, those the envelope
    realised (its per-second counts summed over the interval) and the interval starts."""
    scenario, workload, engine = case
    run = engine.start(scenario, workload, scenario.seed)
    assert isinstance(run, _InstanceRun)  # a GPU node pool
    context = make_context(scenario, workload, np.random.default_rng(0))
    loop = ControlLoop(policy, run.actuators(), context)
    loop.reset()
    counted = []
    while (now := run.advance()) is not None:
        counted.append(float(run.out[K.O_ARRIVALS]))
        run.record(now, loop.step(run.read(now)))
    counted.append(float(run.out[K.O_ARRIVALS]))  # the last interval (no decision)
    bounds = np.asarray(run.bounds, dtype=np.int64)
    cumulative = np.concatenate([[0.0], np.cumsum(run.inputs.arrivals)])
    realised = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    assert len(counted) == len(realised)
    return np.asarray(counted), realised, bounds[:-1]


def _in_gap(starts: np.ndarray) -> np.ndarray:
    return (starts % (ON_S + OFF_S)) >= ON_S


@pytest.mark.parametrize("replicas", [30, 40], ids=["overloaded", "near-saturation"])
def test_a_fixed_pool_counts_each_intervals_own_arrivals(gap_case: GapCase, replicas: int) -> None:
    counted, realised, starts = _counted_and_realised(gap_case, FixedPolicy(replicas))
    assert realised.sum() > 250_000  # the case carries traffic
    np.testing.assert_allclose(counted, realised, rtol=1e-9, atol=1e-6)
    assert counted[_in_gap(starts)].sum() == 0.0  # no request in a gap


def test_a_pool_scaled_to_its_minimum_over_the_gaps_meets_no_phantom_requests(
    gap_case: GapCase,
) -> None:
    """The plan that closed the trap: the window's rate said saturated, the queue took
    the window's mean (a 12 h mean of 60 req/s) through 20 minutes without traffic."""
    scenario = gap_case[0]
    ticks = int(2 * 3600 / INTERVAL_S)
    at = np.arange(ticks) * INTERVAL_S
    desired = np.where(_in_gap(at), scenario.pool.min_replicas, 40).astype(np.int64)
    counted, realised, starts = _counted_and_realised(gap_case, SchedulePolicy(desired))
    np.testing.assert_allclose(counted, realised, rtol=1e-9, atol=1e-6)
    assert counted[_in_gap(starts)].sum() == 0.0
    assert counted.sum() == pytest.approx(realised.sum(), rel=1e-12)
