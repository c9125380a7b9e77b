"""The oracle where its model is blind: floors learned from replays, the engine's own
arrivals and burstiness.

The scenario: two hours of the bundled ServeGen day (43 bursty clients) at 60 req/s
with the traffic stopped for 20 minutes at a time, replayed in the fluid engine on
its production-scale path (no request drawn one by one, as for any envelope of more
than 3 M requests, e.g. days of ServeGen at 60 req/s). A plan that drops to the
minimum over the gap meets the returning traffic before its capacity is back: the
model cannot see that, the replay can. (A pool with few slots near saturation once
took its arrivals there from a window of up to 12 h each side, so the replay also
met phantom requests in the gaps; the engine now counts each second's own.)
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.oracle_bounds import provisioning_quantile_s
from planner.oracle_replays import Verifier, realised_arrivals
from sim.fluid.engine import FluidEngine
from sim.oracle import build_problem
from sim.oracle.floors import SHORTFALL, forced_intervals, raise_floors, shortfalls
from sim.oracle.problem import arrival_scv
from sim.replay import SchedulePolicy
from tests.gap_case import OFF_S, ON_S, GapCase, make_gap_case

GAP = (ON_S, OFF_S)  # seconds on, seconds off


@pytest.fixture(scope="module")
def gap_case() -> GapCase:
    return make_gap_case()


def test_the_oracle_plans_for_the_arrivals_its_own_engine_realises(gap_case: GapCase) -> None:
    """An engine with its own sampling settings realises other arrivals than the
    default one; the oracle plans for the verifying engine's (it used the default's)."""
    scenario, workload, engine = gap_case
    planned = realised_arrivals(workload, scenario.seed, engine)
    replayed = engine.start(scenario, workload, scenario.seed).inputs.arrivals
    assert planned is not None
    np.testing.assert_array_equal(planned, replayed)
    default = realised_arrivals(workload, scenario.seed, FluidEngine())
    assert default is not None and not np.array_equal(default, planned)


def test_the_stationary_wait_takes_the_engines_burstiness() -> None:
    """The fluid engine queues the raw per-second counts, so its stationary wait uses
    Poisson's ca^2 = 1 however bursty the counts; the model used their dispersion
    (44 on ServeGen m-small at 60 req/s), a wait 20 times too long."""
    rng = np.random.default_rng(0)
    bursty = rng.choice([0.0, 0.0, 0.0, 240.0], size=3600)  # dispersion far above 1
    assert arrival_scv(bursty, exact=True) == 1.0
    assert arrival_scv(bursty, exact=False) == 1.0


def test_a_replay_that_loses_the_gap_floors_it_at_the_capacity_before(gap_case: GapCase) -> None:
    """A plan that scales to the pool's minimum over each gap: the engine loses requests
    the model calls served (the traffic returns before the capacity does, and the
    queue left at the scale-in waits past the SLO); exactly those intervals are
    floored above the replayed level, and the re-planned problem never plans them
    lower. (The engine once fed the gaps the long rate
    window's mean, phantom arrivals; it now counts each second's own.)"""
    scenario, workload, engine = gap_case
    lead = provisioning_quantile_s(scenario, 0.5)
    arrivals = realised_arrivals(workload, scenario.seed, engine)
    assert arrivals is not None
    problem = build_problem(scenario, workload, lead, arrivals=arrivals, backlog=False)
    problem = problem.without_backlog(steady=True)
    ticks = len(problem.counts)
    t = np.arange(ticks) * problem.tick_s
    in_gap = (t % sum(GAP)) >= GAP[0]
    high = int(np.searchsorted(problem.level_replicas, 40))
    path = np.where(in_gap, 0, high).astype(np.int32)
    path[: forced_intervals(problem)] = problem.start
    replicas = problem.level_replicas[path]
    policy = SchedulePolicy(replicas.astype(np.int64))
    result, shares = Verifier(scenario, workload, engine, scenario.seed).replay_shares(policy)
    assert shares is not None  # the fluid engine measures each interval
    assert result.arrivals == arrivals.sum()  # no phantom arrivals (the long window's, once)

    short = shortfalls(problem, path, shares)
    assert short.any()
    assert not short[: forced_intervals(problem)].any()
    phase = t % sum(GAP)
    returning = (t >= sum(GAP)) & ~in_gap & (phase < GAP[0] / 2)
    assert returning[short].mean() > 0.9  # the losses sit where the traffic returns
    # a flagged interval lost more than SHORTFALL of what the model kept
    first = int(np.flatnonzero(short)[0])
    assert shares[first] < 1.0 - SHORTFALL

    hits = np.zeros(ticks, dtype=np.int64)
    floored = raise_floors(problem, path, short, hits)
    assert np.all(floored.lower >= problem.lower)
    assert np.all(floored.lower[short] > path[short])
    assert np.array_equal(floored.lower[~short], problem.lower[~short])
    assert floored.attained_by_multiplier == {}
    again = raise_floors(floored, floored.lower.astype(np.int32), short, hits)
    assert np.all(again.lower[short] > floored.lower[short])  # a repeat grows the floor
