"""Dynamic programming over capacity level and carried backlog.

The state at the start of interval t is (level, backlog): the level's nodes are what
serves during t, the backlog the requests still queued from earlier intervals. One
interval of level j with backlog b serves at most `mu[t, j]` requests per second (the
saturated throughput of its slots at a full batch); what it cannot serve is carried:

    b' = max(0, b + arrivals_t - mu[t, j] x length_t)

A request arriving at time tau into the interval waits Q(tau) / mu for the queue ahead
of it (fluid FIFO, Q linear in tau) and meets the SLO when that wait fits its service
stratum's budget (latency objective minus its service time at a full batch). While no
backlog exists and the load is below the slots, the stationary M/M/c attainment of
`sim.oracle.attainment` applies instead (the same split the fluid engine makes).

Backlog is kept on a grid (0 plus geometric points); a carried backlog is rounded to the
nearest grid point in log space. As in `sim.oracle.dp`, with a Lagrange multiplier `mu`
on attained requests one forward pass minimises cost - mu x attained; the transition's
minimum over the previous level splits into a prefix minimum (scale-out, linear cost)
and a suffix minimum (scale-in, free), per backlog point: O(intervals x levels x points).
The forward pass keeps only values (plus checkpoints); the path is rebuilt segment by
segment from the checkpoints, so memory stays O(levels x points x sqrt(intervals)).
"""

from __future__ import annotations

import math

import numba
import numpy as np

INF = 1e300


@numba.njit(cache=True, error_model="numpy")
def interval_outcome(
    count: float,
    length_s: float,
    backlog: float,
    throughput: float,
    stationary: float,
    weights: np.ndarray,
    budgets: np.ndarray,
    budget_range: np.ndarray,
    blk: int,
) -> tuple[float, float]:
    """(requests attained, backlog carried out) of one interval at one level.

    Args:
        count: Arrivals in the interval.
        length_s: Its length.
        backlog: Requests queued at its start.
        throughput: Saturated completions per second of the level's slots.
        stationary: Stationary attainment at this level (no backlog, stable load).
        weights, budgets: (blocks, strata) service strata: share of requests and the
            wait each can afford (latency objective minus its service time at a full
            batch); row `blk` applies.
        budget_range: Per block (largest budget, smallest non-negative budget, share of
            requests with a non-negative budget): shortcuts for a queue every stratum
            or no stratum can wait behind.
    """
    if length_s <= 0.0:
        return count, backlog
    lam = count / length_s
    if throughput <= 0.0:
        return 0.0, backlog + count
    if backlog <= 0.0 and lam < throughput:
        return count * stationary, 0.0
    drift = lam - throughput
    carried = max(0.0, backlog + drift * length_s)
    # a growing queue never empties in this interval; a draining one empties at b / -drift
    queued_s = length_s if drift >= 0.0 else min(length_s, backlog / -drift)
    if queued_s <= 0.0:
        return count * stationary, carried
    in_queue = queued_s / length_s
    end = backlog + drift * queued_s
    if throughput * budget_range[blk, 0] <= min(backlog, end):  # nobody can wait that long
        return count * (1.0 - in_queue) * stationary, carried
    if throughput * budget_range[blk, 1] >= max(backlog, end):  # everyone who can, does
        share = budget_range[blk, 2]
        return count * (in_queue * share + (1.0 - in_queue) * stationary), carried
    met = 0.0
    for k in range(weights.shape[1]):
        room = throughput * budgets[blk, k]  # queue length this stratum can wait behind
        if room < 0.0:
            continue
        if drift > 0.0:
            share = (room - backlog) / (drift * queued_s)
        elif drift < 0.0:
            share = 1.0 - (backlog - room) / (-drift * queued_s)
        else:
            share = 1.0 if backlog <= room else 0.0
        met += weights[blk, k] * min(1.0, max(0.0, share))
    return count * (in_queue * met + (1.0 - in_queue) * stationary), carried


# Asked once per interval and level in every DP pass, before `interval_outcome`: a
# stable interval with no queue (nearly every cell) is then one multiply, where the
# call (three arrays passed, reference counts each way) took 80-90 % of a pass. The
# three callers write the test out: one inlined helper doing both (the arrays still
# passed) made the 8-week solve 1.55x slower (2.86 -> 4.4 s).
@numba.njit(cache=True, inline="always", error_model="numpy")
def _no_queue(count: float, length_s: float, backlog: float, throughput: float) -> bool:
    """Whether `interval_outcome` is `count x stationary` with nothing carried (its
    first case, the same tests and arithmetic)."""
    return backlog <= 0.0 and length_s > 0.0 and throughput > 0.0 and count / length_s < throughput


@numba.njit(cache=True, error_model="numpy")
def interpolate(values: np.ndarray, row: int, grid: np.ndarray, backlog: float) -> float:
    """values[row] (one value per backlog point) at `backlog`, linear between grid
    points (the grid is 0, then geometric from grid[1]); held flat beyond the last."""
    n = grid.shape[0]
    if n == 1 or backlog >= grid[n - 1]:  # one point: a plan that carries no backlog
        return values[row, n - 1]
    if backlog <= grid[1]:
        k = 0
    else:
        k = int(math.log(backlog / grid[1]) / math.log(grid[2] / grid[1])) + 1
        k = min(max(k, 1), n - 2)
        if grid[k] > backlog:  # guard the float floor
            k -= 1
    left, right = values[row, k], values[row, k + 1]
    if left >= INF or right >= INF:
        return INF
    w = (backlog - grid[k]) / (grid[k + 1] - grid[k])
    return left + w * (right - left)


@numba.njit(cache=True, error_model="numpy")
def follow_path(path: np.ndarray, model: tuple, out: np.ndarray, need: float) -> tuple[float, bool]:
    """Requests attained along a level path under the backlog model (no grid rounding).

    model = (table, level_replicas, slot_rate, counts, lengths, block_of, weights,
    budgets, grid, budget_range); see `sim.oracle.problem.Problem` for each array.
    Each interval's attainment goes to `out` when it has one entry per interval. With
    `need` > 0 the walk stops once even every remaining request attained could not
    bring the total to `need`. Returns (requests attained, whether the walk reached
    the end).
    """
    table, replicas, slot_rate, counts, lengths, block_of, weights, budgets, _, ranges = model
    n = path.shape[0]
    keep = out.shape[0] == n
    remaining = 0.0
    if need > 0.0:
        for t in range(n):
            remaining += counts[t]
    # the running remainder drifts from the exact suffix sum by rounding: stop only
    # when the shortfall is well beyond it
    slack = 1e-9 * remaining
    backlog = 0.0
    total = 0.0
    for t in range(n):
        blk = block_of[t]
        j = path[t]
        count, length_s, throughput = counts[t], lengths[t], replicas[j] * slot_rate[blk]
        if _no_queue(count, length_s, backlog, throughput):
            att, backlog = count * table[t, j], 0.0
        else:
            att, backlog = interval_outcome(
                count, length_s, backlog, throughput, table[t, j], weights, budgets, ranges, blk
            )
        total += att
        if keep:
            out[t] = att
        if need > 0.0:
            remaining -= counts[t]
            if total + remaining < need - slack:
                return total, False
    return total, True


_NO_OUT = np.empty(0)


def evaluate_path(path: np.ndarray, model: tuple) -> float:
    """Requests attained along a level path under the backlog model (no grid rounding)."""
    return float(follow_path(path, model, _NO_OUT, 0.0)[0])


def attained_within(path: np.ndarray, model: tuple, need: float) -> float | None:
    """Requests attained along a level path if they reach `need`, else None: the walk
    stops as soon as the rest of the path cannot make up the shortfall."""
    attained, complete = follow_path(path, model, _NO_OUT, need)
    return float(attained) if complete and attained >= need else None


def interval_attainment(path: np.ndarray, model: tuple) -> np.ndarray:
    """Requests attained in each interval along a level path (backlog model, unrounded)."""
    out = np.empty(path.shape[0])
    follow_path(path, model, out, 0.0)
    return out


@numba.njit(cache=True, error_model="numpy")
def _stage(
    t: int,
    value_next: np.ndarray,
    got_next: np.ndarray,
    value: np.ndarray,
    got: np.ndarray,
    costs: tuple,
    model: tuple,
    mu: float,
    lo: int,
    hi: int,
    stage: np.ndarray,
    stage_got: np.ndarray,
) -> None:
    """Value-to-go at interval t from that at t + 1 (`stage`, `stage_got`: scratch of
    one value per level).

    value[i, b]: the least cost - mu x attained from interval t to the end, when the
    level before t is i and b requests are queued at its start; got[i, b]: what that
    optimum attains. The level j chosen for t pays its running cost and, above i, the
    start-up of the nodes it adds; scale-in is free.
    """
    price_per_interval, switch_cost, level_nodes = costs
    table, replicas, slot_rate, counts, lengths, block_of, weights, budgets, grid, ranges = model
    blk = block_of[t]
    count, length_s, rate = counts[t], lengths[t], slot_rate[blk]
    n_lvl, n_pts = value.shape
    flat = n_pts == 1  # no backlog state: the value does not depend on the queue
    for b in range(n_pts):
        for j in range(lo):
            stage[j] = INF
            stage_got[j] = 0.0
        for j in range(hi + 1, n_lvl):
            stage[j] = INF
            stage_got[j] = 0.0
        queued = grid[b]
        for j in range(lo, hi + 1):
            throughput = replicas[j] * rate
            if _no_queue(count, length_s, queued, throughput):
                att, carried = count * table[t, j], 0.0
            else:
                att, carried = interval_outcome(
                    count, length_s, queued, throughput, table[t, j], weights, budgets,
                    ranges, blk,
                )  # fmt: skip
            after = value_next[j, 0] if flat else interpolate(value_next, j, grid, carried)
            if after >= INF:
                stage[j] = INF
                stage_got[j] = 0.0
                continue
            stage[j] = price_per_interval * level_nodes[j] - mu * att + after
            stage_got[j] = att + (
                got_next[j, 0] if flat else interpolate(got_next, j, grid, carried)
            )
        # scale-out from i: min over j >= i of stage[j] + beta x (nodes_j - nodes_i)
        run_v = INF
        run_j = -1
        for i in range(n_lvl - 1, -1, -1):
            cand = stage[i] + switch_cost * level_nodes[i]
            if cand < run_v:
                run_v = cand
                run_j = i
            value[i, b] = run_v - switch_cost * level_nodes[i] if run_j >= 0 else INF
            got[i, b] = stage_got[run_j] if run_j >= 0 else 0.0
        # scale-in from i (free): min over j <= i of stage[j]
        run_v = INF
        run_j = -1
        for i in range(n_lvl):
            if stage[i] < run_v:
                run_v = stage[i]
                run_j = i
            if run_v < value[i, b]:
                value[i, b] = run_v
                got[i, b] = stage_got[run_j]


@numba.njit(cache=True, error_model="numpy")
def backward(
    costs: tuple,
    model: tuple,
    mu: float,
    lower: np.ndarray,
    upper: np.ndarray,
    first: int,
    last: int,
    entry: np.ndarray,
    keep_every: int,
    kept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run `_stage` from interval `last` down to `first`.

    `entry` is (value, got) at last + 1 (zeros past the end). When `keep_every` > 0,
    kept[t - first] receives the values at t + 1 for every t in [first, last] (what
    `extract` needs); otherwise nothing is kept. Returns (value, got) at `first`.
    """
    n_lvl, n_pts = entry.shape[1], entry.shape[2]
    value_next = entry[0].copy()
    got_next = entry[1].copy()
    value = np.empty((n_lvl, n_pts))
    got = np.empty((n_lvl, n_pts))
    stage = np.empty(n_lvl)
    stage_got = np.empty(n_lvl)
    for t in range(last, first - 1, -1):
        if keep_every > 0:
            kept[t - first, 0] = value_next
            kept[t - first, 1] = got_next
        _stage(
            t, value_next, got_next, value, got, costs, model, mu, lower[t], upper[t], stage,
            stage_got,
        )  # fmt: skip
        value, value_next = value_next, value
        got, got_next = got_next, got
    return value_next, got_next


@numba.njit(cache=True, error_model="numpy")
def extract(
    first: int,
    last: int,
    kept: np.ndarray,
    previous: int,
    backlog: float,
    costs: tuple,
    model: tuple,
    mu: float,
    lower: np.ndarray,
    upper: np.ndarray,
    path: np.ndarray,
) -> tuple[int, float]:
    """Follow the optimal decisions over [first, last] with the true (unrounded)
    backlog, given the values at t + 1 in kept[t - first]; write the levels into
    `path`; return (last level, backlog after `last`)."""
    price_per_interval, switch_cost, level_nodes = costs
    # unpacked once: `outcome_at` per level re-slices the model tuple (a reference
    # count per array per call), which made following a path dearer than a pass
    table, replicas, slot_rate, counts, lengths, block_of, weights, budgets, grid, ranges = model
    for t in range(first, last + 1):
        best = INF
        best_j = lower[t]
        best_carried = backlog
        values = kept[t - first, 0]
        blk = block_of[t]
        count, length_s, rate = counts[t], lengths[t], slot_rate[blk]
        for j in range(lower[t], upper[t] + 1):
            throughput = replicas[j] * rate
            if _no_queue(count, length_s, backlog, throughput):
                att, carried = count * table[t, j], 0.0
            else:
                att, carried = interval_outcome(
                    count, length_s, backlog, throughput, table[t, j], weights, budgets,
                    ranges, blk,
                )  # fmt: skip
            after = interpolate(values, j, grid, carried)
            if after >= INF:
                continue
            up = level_nodes[j] - level_nodes[previous]
            cand = price_per_interval * level_nodes[j] - mu * att + after
            if up > 0:
                cand += switch_cost * up
            if cand < best:
                best = cand
                best_j = j
                best_carried = carried
        path[t] = best_j
        previous = best_j
        backlog = best_carried
    return previous, backlog


@numba.njit(cache=True, error_model="numpy")
def schedule_cost(
    price_per_interval: float, switch_cost: float, level_nodes: np.ndarray, path: np.ndarray
) -> float:
    """Cost of a level path: running cost plus the start-up cost of every node added."""
    total = 0.0
    for t in range(path.shape[0]):
        nodes = level_nodes[path[t]]
        total += price_per_interval * nodes
        if t > 0:
            up = nodes - level_nodes[path[t - 1]]
            if up > 0:
                total += switch_cost * up
    return total


@numba.njit(cache=True, error_model="numpy")
def constant_costs(
    price_per_interval: float,
    switch_cost: float,
    level_nodes: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """`schedule_cost` of every constant path: level k held, clipped to [lower, upper]."""
    n_lvl = level_nodes.shape[0]
    out = np.empty(n_lvl)
    path = np.empty(lower.shape[0], dtype=np.int64)
    for k in range(n_lvl):
        for t in range(lower.shape[0]):
            path[t] = min(max(k, lower[t]), upper[t])
        out[k] = schedule_cost(price_per_interval, switch_cost, level_nodes, path)
    return out
