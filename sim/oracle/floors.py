"""Capacity floors learned from replays: where the engine lost what the model kept.

The model plans each interval from its own arrivals. An engine can lose an interval
for reasons the model does not see: traffic that returns before the capacity a plan
dropped has booted, a queue left behind at a scale-in. Raising the model's target
does not help there: the model believes those intervals are already served, so it
buys capacity elsewhere. (Until the fluid engine conserved arrivals, December 2026,
a pool with few slots near saturation also took its queue's input from a window of
up to 12 h each side, phantom requests in gaps of the traffic; a lull was then held
at the capacity before it. That hold is gone: on the 48 random scenarios of
`tests/planner/test_oracle_properties.py`'s generator, seeds 0-47, it fired in 10
and changed no oracle's cost.)

What does help is the replay's own measurement. An interval whose share of requests
within the SLO in the replay falls more than `SHORTFALL` below the model's share for
the same level gets a floor: a level at least one above the replayed one, growing by
`GROWTH` each time the same interval falls short again. The DP then plans above the
floors (they only raise `Problem.lower`), and the replay checks again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sim.oracle.dp import interval_attainment
from sim.oracle.problem import Problem
from sim.workload.model import FloatArray

#: A level per planning interval (the DP's paths are int32, `Problem.lower` int64).
Levels = NDArray[np.signedinteger[Any]]

#: How far (share of the interval's requests) the replay may fall below the model
#: before the interval is floored: losses this large are the model's blind spots,
#: not the noise of its stationary queue.
SHORTFALL = 0.10
#: Factor on the replayed capacity per repeated shortfall of the same interval.
GROWTH = 1.25


def shortfalls(problem: Problem, path: Levels, tick_shares: FloatArray) -> NDArray[np.bool_]:
    """Planning intervals (after the forced start) whose replay fell short of the model.

    Args:
        problem: The problem the path was planned in.
        path: The plan's level per planning interval.
        tick_shares: The replay's share of finished requests within the SLO per
            decision interval (1 where nothing finished).
    """
    n = len(problem.counts)
    stride = max(1, round(problem.interval_s / problem.tick_s))
    shares = np.ones(n * stride)
    shares[: min(len(tick_shares), n * stride)] = tick_shares[: n * stride]
    replayed = shares.reshape(n, stride).min(axis=1)
    counts = problem.counts
    modelled = np.ones(n)
    busy = counts > 0
    modelled[busy] = interval_attainment(path, problem.model)[busy] / counts[busy]
    short = replayed < modelled - SHORTFALL
    short[: forced_intervals(problem)] = False  # no decision reaches them
    return short


def raise_floors(problem: Problem, path: Levels, short: NDArray[np.bool_], hits: Levels) -> Problem:
    """`problem` with the levels of the `short` intervals raised above `path`.

    `hits` counts each interval's shortfalls so far (updated in place): the floor is
    the level of `GROWTH ** hits` times the replayed replicas, and at least one level
    above the replayed one.
    """
    hits[short] += 1
    top = len(problem.level_nodes) - 1
    replicas = problem.level_replicas[path].astype(np.float64)
    wanted = np.searchsorted(problem.level_replicas, np.ceil(replicas * GROWTH**hits))
    floor = np.minimum(np.maximum(wanted, path + 1), top)
    lower = problem.lower.copy()
    lower[short] = np.maximum(lower[short], floor[short])
    return problem.with_lower(lower)


def forced_intervals(problem: Problem) -> int:
    """Leading planning intervals no decision can change (the initial capacity)."""
    free = np.flatnonzero(problem.upper > problem.start)
    return int(free[0]) if len(free) else len(problem.upper)
