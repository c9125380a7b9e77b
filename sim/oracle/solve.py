"""`solve_oracle`: the cheapest capacity schedule that meets the SLO, with the future known.

The offline optimum of Lin, Wierman, Andrew and Thereska ("Dynamic right-sizing
for power-proportional data centers", IEEE/ACM ToN 2013) under scaleplan's
capacity model, with the queue carried between intervals in the state:

* Levels are node counts; a level hosts min(nodes x replicas_per_node,
  max_replicas) replicas. Every count from the pool's minimum up is a level while
  there are at most `MAX_LEVELS`; a larger pool gets every count at the low end and
  geometric steps (a few per cent) above, where a step costs little relative to the
  capacity already running.
* An interval's outcome depends on its level and on the backlog it inherits
  (`sim.oracle.dp`): a burst above the slots queues and is served in the next
  intervals, most of it in time, instead of counting as lost. A stable interval
  with no backlog has the stationary M/M/c attainment of `sim.oracle.attainment`.
* Running a node costs its (spot-share blended) price per second. Starting one
  costs its provisioning lead, billed before it serves: capacity ready at t must be
  requested at t - lead, where lead = the mean provisioning delay rounded up to the
  decision grid (the replay requests exactly that far ahead), plus any part of the
  billing minimum (`billing_min_s`) that one interval of service cannot use.
* Interval 0 runs the initial replicas; no capacity decided at the first tick can
  serve before interval 1 + lead / interval_s.

The SLO is an aggregate share, so a few intervals may be under-served when that is
cheaper, as long as the run's attainment reaches the target. Solved by Lagrangian
relaxation: a search on the value `mu` of an attained request (`_narrow`), one exact
DP per `mu`. Every constant schedule is a candidate too, and the cheapest candidate that
reaches the target under the model (evaluated without the DP's backlog rounding) is
returned.

This is a model of the engines, not an engine: `planner.oracle` replays the schedule
in the engine that reports it, tightens the target until the replay meets the SLO,
and reports the replay's bill (see docs/engines.md, "The oracle").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from sim.oracle.dp import (
    attained_within,
    backward,
    constant_costs,
    evaluate_path,
    extract,
    schedule_cost,
)
from sim.oracle.problem import Problem, build_problem
from sim.replay import SchedulePolicy
from sim.scenario import Scenario
from sim.workload.model import IntArray, Workload

#: Bisection stops when the multiplier's bracket is this tight (relative): the cost
#: then moves by far less than one node-interval.
_MULTIPLIER_TOLERANCE = 1e-2
#: Factor between multipliers tried while looking for one that attains the target.
_GROWTH = 16.0
#: Multiplier raises (x1.25 each) allowed to make up for the DP's interpolation.
_ROUNDING_STEPS = 8


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule and what the capacity model predicts for it.

    Attributes:
        interval_s: Length of one planning interval (a whole number of ticks).
        replicas: Replicas ready in each planning interval (the schedule).
        nodes: Nodes serving in each interval.
        lead_s: How far ahead the replay requests capacity (a whole number of ticks).
        cost_usd: Cost of the schedule under the model's cost model.
        gpu_hours: GPU-hours billed (serving plus provisioning lead).
        predicted_attainment: Share of requests within the SLO under the model.
        target: The attainment the schedule was planned for (the SLO's, or tighter
            when the planner asked for a margin).
        reachable: Whether the model says any schedule within bounds reaches `target`
            (if not, the schedule is the pool's maximum from the first moment).
        multiplier_usd: Lagrange multiplier of the returned solution (0 if none).
        chosen: Which candidate won: "lagrangian", "constant" or "max".
        solve_s: Wall time of the solve (diagnostic only).
        tick_s: Length of one decision interval, the replay's tick (default: the
            planning interval).
        desired: Replicas to request at each tick, when a search on the engine set
            them directly (`sim.oracle.descent`); default derived from `replicas`.
    """

    interval_s: float
    replicas: IntArray
    nodes: IntArray
    lead_s: float
    cost_usd: float
    gpu_hours: float
    predicted_attainment: float
    target: float
    reachable: bool
    multiplier_usd: float
    chosen: str
    solve_s: float
    tick_s: float | None = None
    desired: IntArray | None = None

    def desired_at_ticks(self) -> IntArray:
        """Desired replicas to request at each tick so the schedule is ready.

        At tick k the replay asks for the most any tick in [k, k + lead] needs:
        scale-out is requested one lead ahead, scale-in happens when no tick in
        that window needs the capacity any more. A plan the engine search set
        (`desired`) is requested as it is.
        """
        if self.desired is not None:
            return self.desired
        tick = self.tick_s or self.interval_s
        ready = np.repeat(self.replicas, max(1, round(self.interval_s / tick)))
        lead = round(self.lead_s / tick)
        n = len(ready)
        padded = np.concatenate([ready, np.full(lead, ready[-1])])
        windows = np.lib.stride_tricks.sliding_window_view(padded, lead + 1)
        return np.asarray(windows.max(axis=1)[:n], dtype=np.int64)

    def replay_policy(self, name: str = "oracle") -> SchedulePolicy:
        """A plain schedule-replay policy that requests `desired_at_ticks()`."""
        return SchedulePolicy(self.desired_at_ticks(), name=name, label="oracle schedule")


@dataclass(frozen=True)
class _Candidate:
    cost: float
    attained: float
    path: np.ndarray
    chosen: str
    multiplier: float


def solve_oracle(
    scenario: Scenario,
    workload: Workload,
    *,
    target: float | None = None,
    lead_s: float | None = None,
    problem: Problem | None = None,
) -> OracleResult:
    """The cheapest schedule reaching `target` attainment under the capacity model.

    Args:
        scenario: Capacity model, prices, SLO and decision interval.
        workload: The traffic, known in full (the oracle is clairvoyant).
        target: Attainment to plan for; default the SLO's target.
        lead_s: How far ahead capacity is requested; default the mean provisioning delay.
        problem: A problem already built for this scenario and workload (the planner
            re-solves with tighter targets without rebuilding it).

    Raises:
        ScenarioError: A serverless main pool.
    """
    began = time.perf_counter()
    p = problem if problem is not None else build_problem(scenario, workload, lead_s)
    goal = scenario.slo.target_attainment if target is None else target
    total = float(p.counts.sum())
    need = goal * total
    top = np.asarray(p.upper, dtype=np.int32)
    best_possible = float(evaluate_path(top, p.model))
    if best_possible < need * (1 - 1e-12):
        winner = _candidate(p, top, "max", 0.0)
        return _result(p, winner, goal, total, reachable=False, began=began)
    reach = need * (1 - 1e-12)  # what counts as attaining `need` (summation rounding)
    candidates = [_candidate(p, top, "max", 0.0), _lagrangian(p, need)]
    feasible = [c for c in candidates if c.attained >= reach]
    constant = _cheapest_constant(p, reach, below=min(c.cost for c in feasible))
    if constant is not None:
        feasible.append(constant)
    winner = min(feasible, key=lambda c: c.cost)
    return _result(p, winner, goal, total, reachable=True, began=began)


def _candidate(p: Problem, path: np.ndarray, chosen: str, multiplier: float) -> _Candidate:
    return _Candidate(
        cost=float(schedule_cost(p.price_per_interval, p.switch_cost, p.level_nodes, path)),
        attained=float(evaluate_path(path, p.model)),
        path=path,
        chosen=chosen,
        multiplier=multiplier,
    )


def _cheapest_constant(p: Problem, need: float, *, below: float) -> _Candidate | None:
    """The cheapest constant path (every level held, clipped to the problem's range)
    that attains `need`, if one costs less than `below`; the lowest level among equals.

    Constants are tried cheapest first (a higher level is not always dearer: clipped
    to raised floors it may switch less), each evaluation cut short once the path
    cannot reach `need`, and the first that reaches it is the answer: exactly the
    minimum over every constant, without evaluating the rest.
    """
    costs = constant_costs(p.price_per_interval, p.switch_cost, p.level_nodes, p.lower, p.upper)
    for level in np.argsort(costs, kind="stable"):
        if costs[level] >= below:
            return None
        path = np.clip(level, p.lower, p.upper).astype(np.int32)
        attained = attained_within(path, p.model, need)
        if attained is not None:
            return _Candidate(float(costs[level]), attained, path, "constant", 0.0)
    return None


def _result(
    p: Problem, c: _Candidate, goal: float, total: float, *, reachable: bool, began: float
) -> OracleResult:
    nodes = p.level_nodes[c.path]
    up = np.maximum(np.diff(nodes, prepend=nodes[0]), 0)
    node_s = float(nodes.sum() * p.interval_s + up.sum() * p.lead_s)
    return OracleResult(
        interval_s=p.interval_s,
        replicas=p.level_replicas[c.path].astype(np.int64),
        nodes=nodes.astype(np.int64),
        lead_s=p.lead_s,
        cost_usd=c.cost,
        gpu_hours=node_s * p.gpus / 3600.0,
        predicted_attainment=c.attained / total if total > 0 else 1.0,
        target=goal,
        reachable=reachable,
        multiplier_usd=c.multiplier,
        chosen=c.chosen,
        solve_s=time.perf_counter() - began,
        tick_s=p.tick_s,
    )


def _segments(n_int: int) -> list[tuple[int, int]]:
    """[first, last] intervals of about sqrt(n) each: the DP keeps one segment's values."""
    every = max(1, math.isqrt(n_int))
    return [(k, min(k + every, n_int) - 1) for k in range(0, n_int, every)]


def _end_values(p: Problem) -> np.ndarray:
    return np.zeros((2, len(p.level_nodes), len(p.grid)))


_NOTHING_KEPT = np.empty((0, 2, 1, 1))


def _segment_entries(p: Problem, mu: float) -> list[np.ndarray]:
    """One backward pass at multiplier `mu`, segment by segment: the (value, got) at
    the start of each segment of `_segments`, first segment first (the pass a path
    is rebuilt from; `optimal_path`). Kept per multiplier on the problem."""
    entries = p.entries_by_multiplier.get(mu)
    if entries is None:
        entries = [_end_values(p)]
        for first, last in reversed(_segments(len(p.counts))):
            value, got = backward(
                p.costs, p.model, mu, p.lower, p.upper, first, last, entries[-1], 0,
                _NOTHING_KEPT,
            )  # fmt: skip
            entries.append(np.stack([value, got]))
        entries.reverse()
        p.entries_by_multiplier[mu] = entries
        p.attained_by_multiplier[mu] = float(entries[0][1][p.start, 0])
    return entries


def _attained_at(p: Problem, mu: float) -> float:
    """What the DP's optimum at multiplier `mu` attains, by its own (interpolated)
    estimate: one backward pass (its segment values kept for `optimal_path`)."""
    if mu not in p.attained_by_multiplier:
        _segment_entries(p, mu)
    return p.attained_by_multiplier[mu]


def optimal_path(p: Problem, mu: float) -> np.ndarray:
    """The DP's optimal level path at multiplier `mu`, followed with the true backlog.

    From the values at each segment's start (`_segment_entries`: one backward pass,
    shared with `_attained_at`), each segment is run backward again with its values
    kept and followed forward, first segment first, so memory stays at one segment's
    values.
    """
    n_int = len(p.counts)
    entries = _segment_entries(p, mu)
    path = np.zeros(n_int, dtype=np.int32)
    previous, backlog = p.start, 0.0
    for (first, last), entry in zip(_segments(n_int), entries[1:], strict=True):
        kept = np.empty((last - first + 1, 2, len(p.level_nodes), len(p.grid)))
        backward(p.costs, p.model, mu, p.lower, p.upper, first, last, entry, 1, kept)
        previous, backlog = extract(
            first, last, kept, previous, backlog, p.costs, p.model, mu, p.lower, p.upper, path
        )
    return path


def _lagrangian(p: Problem, need: float) -> _Candidate:
    """Smallest multiplier whose DP schedule attains `need`, to `_MULTIPLIER_TOLERANCE`.

    The DP's attainment grows with the multiplier. The bracket starts from what
    earlier solves of the problem evaluated (the planner re-solves it for other
    targets) and is narrowed in log space by `_narrow`.
    """
    if _attained_at(p, 0.0) >= need:
        return _candidate(p, optimal_path(p, 0.0), "lagrangian", 0.0)
    known = sorted(p.attained_by_multiplier.items())
    lo = max(mu for mu, got in known if got < need)  # mu = 0 at least
    above = [mu for mu, got in known if got >= need and mu > lo]
    # below `floor` an attained request is worth less than one node-interval over the
    # busiest interval's arrivals: nothing is planned for attainment there
    floor = p.price_per_interval / max(float(p.counts.max()), 1.0)
    if above:
        hi = min(above)
    else:
        hi = max(_first_multiplier(p), floor, lo * _GROWTH)
        while _attained_at(p, hi) < need:
            lo, hi = hi, hi * _GROWTH
            if hi > 1e12:  # cannot happen when the top schedule reaches `need`
                raise RuntimeError("oracle: no multiplier reaches the target")
    while lo == 0.0 and hi / _GROWTH >= floor:  # the first guess may be past the target
        if _attained_at(p, hi / _GROWTH) >= need:
            hi /= _GROWTH
        else:
            lo = hi / _GROWTH
    hi = _narrow(p, need, lo if lo > 0.0 else hi / _GROWTH, hi)
    # The DP interpolates its values between backlog points; the path is judged on the
    # true backlog. Where the estimate flattered it, raise the multiplier until it reaches.
    best = _candidate(p, optimal_path(p, hi), "lagrangian", hi)
    for _ in range(_ROUNDING_STEPS):
        if best.attained >= need:
            break
        hi *= 1.25
        best = _candidate(p, optimal_path(p, hi), "lagrangian", hi)
    return best


def _first_multiplier(p: Problem) -> float:
    """A first guess at the multiplier: the price of one node-interval over the
    requests a node completes in an interval at saturation. Below it, a node added
    for attainment alone costs more than the requests it can serve are worth (with a
    queue it can be worth more: the guess is where the search starts, not a bound)."""
    replicas_per_node = float(p.level_replicas[-1]) / max(float(p.level_nodes[-1]), 1.0)
    per_node = replicas_per_node * float(p.slot_rate.max()) * p.interval_s
    return p.price_per_interval / max(per_node, 1e-9)


def _narrow(p: Problem, need: float, lo: float, hi: float) -> float:
    """The multiplier at the top of a bracket [lo, hi] narrowed to
    `_MULTIPLIER_TOLERANCE`, where the DP at `hi` attains `need` and at `lo` does not
    (or `lo` was not evaluated).

    Each probe interpolates the attainment linearly in log multiplier (regula falsi)
    and lands just past the estimate, half a tolerance above it or below it in turn,
    so that two probes close the bracket when the interpolation is good; when the
    bracket has not halved in two probes, or an end was not evaluated, the probe
    bisects. Same stopping rule as bisection; on `benchmarks/volatile_8w.py` the
    oracle's solves took 11 backward passes instead of bisection's 25.
    """
    tolerance = math.log1p(_MULTIPLIER_TOLERANCE)
    a, b = math.log(lo), math.log(hi)
    fb = _attained_at(p, hi) - need
    known_lo = p.attained_by_multiplier.get(lo)
    fa = None if known_lo is None else known_lo - need
    widths = [b - a]
    # the end the last probes left in place ("a" or "b"; doubled: twice running, its
    # value then counts half); the next probe aims past the estimate towards it
    kept_end = ""
    while b - a > tolerance:
        width = b - a
        stalled = len(widths) >= 3 and width > widths[-3] / 2.0
        if fa is None or stalled or fb <= fa:
            x = (a + b) / 2.0
        else:
            # Illinois: an end kept by two probes in a row counts half (its value
            # otherwise keeps the estimate on the other end's side)
            wa = fa / 2.0 if kept_end == "a2" else fa
            wb = fb / 2.0 if kept_end == "b2" else fb
            estimate = a + width * (-wa) / (wb - wa)
            aim_high = not kept_end.startswith("a")  # the last probe moved `a` (or none yet)
            x = estimate + (tolerance / 2.0 if aim_high else -tolerance / 2.0)
            x = min(max(x, a + tolerance / 4.0), b - tolerance / 4.0)
        got = _attained_at(p, math.exp(x)) - need
        if got >= 0.0:
            b, fb = x, got
            kept_end = "a2" if kept_end.startswith("a") else "a"
        else:
            a, fa = x, got
            kept_end = "b2" if kept_end.startswith("b") else "b"
        widths.append(b - a)
    return math.exp(b)
