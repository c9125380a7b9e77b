"""Dynamic programming over capacity levels (Lin, Wierman, Andrew and Thereska).

Levels are node counts. A schedule x_0..x_{N-1} costs

    sum_t price_per_interval * x_t  +  switch_cost * sum_t (x_t - x_{t-1})^+

(running cost plus the cost of starting a node: its provisioning time and any
billing minimum it cannot use, see `sim.oracle.solve`). With a Lagrange multiplier
`mu` on attained requests, one backward-free forward pass finds the schedule that
minimises cost - mu x attained, exactly, in O(N x L): the transition minimum over
the previous level splits into a prefix minimum (scale-out, linear cost) and a
suffix minimum (scale-in, free).
"""

from __future__ import annotations

import numba
import numpy as np

from sim.workload.model import FloatArray

INF = 1e300


@numba.njit(cache=True)
def dp_pass(
    price_per_interval: float,
    switch_cost: float,
    level_nodes: np.ndarray,
    table: np.ndarray,
    counts: FloatArray,
    mu: float,
    lower: np.ndarray,
    upper: np.ndarray,
    start: int,
    choice: np.ndarray,
    path: np.ndarray,
) -> tuple[float, float]:
    """Minimise cost - mu x attained; write the level path; return (cost, attained).

    Args:
        price_per_interval: Running cost of one node for one interval (USD).
        switch_cost: Cost of starting one node (USD).
        level_nodes: Node count of each level (ascending).
        table: (intervals, levels) share of requests within the SLO.
        counts: Arrivals per interval.
        mu: Value of one attained request (USD).
        lower, upper: Allowed level range per interval (inclusive).
        start: The level in force at t = 0 (interval 0 is pinned to it).
        choice: (intervals, levels) int16 scratch: best predecessor level.
        path: (intervals,) int32 output: the chosen level per interval.
    """
    n_int, n_lvl = table.shape
    value = np.full(n_lvl, INF)
    nxt = np.empty(n_lvl)
    value[start] = price_per_interval * level_nodes[start] - mu * counts[0] * table[0, start]
    for t in range(1, n_int):
        # scale-out: min over i <= j of value[i] - beta * nodes_i, plus beta * nodes_j
        best_v = INF
        best_i = -1
        for j in range(n_lvl):
            cand = value[j] - switch_cost * level_nodes[j]
            if cand < best_v:
                best_v = cand
                best_i = j
            nxt[j] = best_v + switch_cost * level_nodes[j] if best_i >= 0 else INF
            choice[t, j] = best_i
        # scale-in (free): min over i >= j of value[i]
        best_v = INF
        best_i = -1
        for j in range(n_lvl - 1, -1, -1):
            if value[j] < best_v:
                best_v = value[j]
                best_i = j
            if best_v < nxt[j]:
                nxt[j] = best_v
                choice[t, j] = best_i
        lo = lower[t]
        hi = upper[t]
        for j in range(n_lvl):
            if j < lo or j > hi or nxt[j] >= INF:
                value[j] = INF
            else:
                value[j] = (
                    nxt[j] + price_per_interval * level_nodes[j] - mu * counts[t] * table[t, j]
                )
    best_v = INF
    last = 0
    for j in range(n_lvl):
        if value[j] < best_v:
            best_v = value[j]
            last = j
    path[n_int - 1] = last
    for t in range(n_int - 1, 0, -1):
        path[t - 1] = choice[t, path[t]]
    return schedule_cost(price_per_interval, switch_cost, level_nodes, path), attained(
        table, counts, path
    )


@numba.njit(cache=True)
def schedule_cost(
    price_per_interval: float, switch_cost: float, level_nodes: np.ndarray, path: np.ndarray
) -> float:
    """Cost of a level path under the DP's cost model."""
    total = 0.0
    for t in range(path.shape[0]):
        nodes = level_nodes[path[t]]
        total += price_per_interval * nodes
        if t > 0:
            up = nodes - level_nodes[path[t - 1]]
            if up > 0:
                total += switch_cost * up
    return total


@numba.njit(cache=True)
def attained(table: np.ndarray, counts: FloatArray, path: np.ndarray) -> float:
    """Requests within the SLO along a level path."""
    total = 0.0
    for t in range(path.shape[0]):
        total += counts[t] * table[t, path[t]]
    return total
