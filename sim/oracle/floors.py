"""Capacity floors learned from replays: where the engine lost what the model kept.

The model plans each interval from its own arrivals. An engine can lose an interval
for reasons the model does not see: in the fluid engine a pool that runs few slots
near saturation takes its arrivals from a centred window of up to 12 h each side
(`sim.fluid.kernel.RATE_*`), so a plan that drops to the pool's minimum over a gap
in the traffic, or runs a busy hour at the edge of its slots, meets a queue fed by
the window's mean and drops it (ServeGen m-small, 24 h at 60 req/s: 240,000 requests
in an hour the trace has none). Raising the model's target does not help there: the
model believes those intervals are already served, so it buys capacity elsewhere.

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
from sim.workload.model import FloatArray, IntArray

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
    floor = np.minimum(
        np.maximum(np.maximum(wanted, path + 1), _held(path, short, problem.counts)), top
    )
    lower = problem.lower.copy()
    lower[short] = np.maximum(lower[short], floor[short])
    return problem.with_lower(lower)


def _held(path: Levels, short: NDArray[np.bool_], counts: FloatArray) -> IntArray:
    """Per interval of a run of shortfalls in a lull (its traffic under half of what as
    many intervals before it carried), the highest level of the plan over those
    intervals before; 0 elsewhere. A gap in the traffic is held at the capacity
    before it, as a reactive pool would be: it is what keeps the fluid engine's long
    rate window out of the queue (`sim.oracle.floors` module docstring)."""
    held = np.zeros(len(path), dtype=np.int64)
    starts = np.flatnonzero(short & ~np.concatenate([[False], short[:-1]]))
    for first in starts:
        last = first
        while last < len(short) and short[last]:
            last += 1
        lookback = slice(max(0, 2 * first - last), first)
        before = path[lookback]
        if len(before) and counts[first:last].mean() < 0.5 * counts[lookback].mean():
            held[first:last] = before.max()
    return held


def forced_intervals(problem: Problem) -> int:
    """Leading planning intervals no decision can change (the initial capacity)."""
    free = np.flatnonzero(problem.upper > problem.start)
    return int(free[0]) if len(free) else len(problem.upper)
