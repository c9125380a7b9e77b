"""The oracle's planning problem: capacity levels, costs and the backlog model's inputs.

`build_problem` turns a scenario and its workload into the arrays `sim.oracle.dp`
plans over: per interval the arrivals, per level the nodes and replicas, per (interval,
level) the stationary attainment, per strata block the saturated completion rate of
one replica and the wait each service stratum can afford.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from sim.capacity.pools import ServerlessEndpoint
from sim.engine import provisioning_mean_s, token_profile
from sim.errors import ScenarioError
from sim.fluid.engine import FluidSettings
from sim.fluid.inputs import (
    ServiceStrata,
    block_strata,
    dispersion,
    interval_bounds,
    per_second_arrivals,
    service_strata,
    smoothed_rate,
)
from sim.oracle.attainment import attainment_table, stable_levels
from sim.scenario import Scenario
from sim.workload.model import FloatArray, IntArray, RateEnvelope, Workload

STRATA_BLOCK_S = 60  # as the fluid engine's default per-block strata
RATE_WINDOW_S = 31  # as the fluid engine's default moving-average window
BURST_WINDOW_S = 10  # the no-overload plan keeps the slots above the busiest 10 s
MAX_LEVELS = 256  # capacity levels the DP plans over (int16 choices; time is N x levels)
#: Work one DP pass may do (intervals x levels x backlog points): sets the backlog grid.
CELL_BUDGET = 3_000_000
MIN_POINTS, MAX_POINTS = 12, 24


@dataclass(frozen=True)
class Problem:
    """What the DP plans over (see `sim.oracle.dp` for how each array is used).

    Attributes:
        price_per_interval: Running cost of one node for one interval (USD).
        switch_cost: Cost of starting one node: its provisioning lead plus any billing
            minimum one interval of service cannot use (USD).
        level_nodes, level_replicas: Nodes and replicas of each level (ascending).
        counts, lengths: Arrivals and length (s) of each interval.
        table: (intervals, levels) stationary attainment (no backlog, stable load).
        slot_rate: Per strata block, saturated completions per second of one replica.
        block_of: Strata block of each interval.
        weights, budgets: Per block and stratum: share of requests, and the wait the
            stratum affords (latency objective minus its service time at a full batch).
        service_full_s, service_one_s: Per block and stratum: service time at a full
            batch and alone (a batch of one).
        grid: Backlog points (requests), 0 first.
        lower, upper: Allowed level range per interval (inclusive).
        stable_lower: Per interval, the lowest level whose slots exceed the offered
            load of its busiest `BURST_WINDOW_S` (after the forced start); the problem
            without backlog plans above it.
        steady_lower: The same for the interval's mean load: the floor of the
            problem without backlog that lets the engine's queue take the bursts.
        start: The level in force at t = 0.
        lead_s: How far ahead the replay requests capacity.
        gpus: GPUs per node.
        interval_s: Length of one planning interval: the decision interval, or a whole
            multiple of it on long horizons (`plan_stride`).
        tick_s: Length of one decision interval (the replay's tick).
    """

    price_per_interval: float
    switch_cost: float
    level_nodes: IntArray
    level_replicas: IntArray
    counts: FloatArray
    lengths: FloatArray
    table: np.ndarray
    slot_rate: FloatArray
    block_of: IntArray
    weights: FloatArray
    budgets: FloatArray
    service_full_s: FloatArray
    service_one_s: FloatArray
    grid: FloatArray
    lower: IntArray
    upper: IntArray
    stable_lower: IntArray
    steady_lower: IntArray
    start: int
    lead_s: float
    gpus: int
    interval_s: float
    tick_s: float
    #: Attainment of the DP's optimum per multiplier, shared by the solves of this problem.
    attained_by_multiplier: dict[float, float] = field(default_factory=dict, compare=False)
    #: The backward pass's values at each segment's start per multiplier (what a path
    #: is rebuilt from, `sim.oracle.solve.optimal_path`), kept with the attainment.
    entries_by_multiplier: dict[float, list[np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def without_backlog(self, *, steady: bool = False) -> Problem:
        """The same problem with no backlog state and no interval planned overloaded
        (what `build_problem(..., backlog=False)` builds at one tick per interval):
        above its busiest seconds' load, or with `steady` above its mean load."""
        lower = self.steady_lower if steady else self.stable_lower
        return replace(
            self, lower=lower, grid=np.zeros(1), attained_by_multiplier={}, entries_by_multiplier={}
        )

    def with_lower(self, lower: IntArray) -> Problem:
        """The same problem planned above `lower` (floors learned from replays)."""
        return replace(self, lower=lower, attained_by_multiplier={}, entries_by_multiplier={})

    @property
    def costs(self) -> tuple[float, float, IntArray]:
        return self.price_per_interval, self.switch_cost, self.level_nodes

    @cached_property
    def model(self) -> tuple[np.ndarray, ...]:
        """The arrays the DP kernels read (`sim.oracle.dp.follow_path`), built once."""
        return (
            self.table, self.level_replicas.astype(np.float64), self.slot_rate, self.counts,
            self.lengths, self.block_of, self.weights, self.budgets, self.grid,
            self.budget_range,
        )  # fmt: skip

    @cached_property
    def budget_range(self) -> FloatArray:
        """Per block: largest budget, smallest non-negative one, share with one >= 0."""
        usable = (self.budgets >= 0.0) & (self.weights > 0.0)
        largest = np.where(usable, self.budgets, -np.inf).max(axis=1)
        smallest = np.where(usable, self.budgets, np.inf).min(axis=1)
        share = (self.weights * usable).sum(axis=1)
        return np.ascontiguousarray(np.stack([largest, smallest, share], axis=1))


def level_grid(low: int, high: int, keep: int, limit: int = MAX_LEVELS) -> IntArray:
    """Node counts to plan over: every count from `low` while at most `limit` fit, else
    every count at the low end and steps of a constant ratio above (plus `keep`)."""
    if high - low + 1 <= limit:
        return np.unique(np.append(np.arange(low, high + 1), keep)).astype(np.int64)

    def grid(ratio: float) -> list[int]:
        out = [low]
        while out[-1] < high:
            out.append(min(high, max(out[-1] + 1, math.ceil(out[-1] * ratio))))
        return out

    lo_r, hi_r = 1.0, 2.0
    while len(grid(hi_r)) > limit - 1:
        hi_r *= 2.0
    for _ in range(40):  # the smallest ratio whose grid fits
        mid = (lo_r + hi_r) / 2.0
        if len(grid(mid)) > limit - 1:
            lo_r = mid
        else:
            hi_r = mid
    return np.unique(np.append(grid(hi_r), keep)).astype(np.int64)


def backlog_grid(counts: FloatArray, levels: int, forced_backlog: float = 0.0) -> FloatArray:
    """0 plus geometric points from one request to four times the busiest interval,
    as many as the cell budget allows for this horizon and level count.

    The top is at least half again `forced_backlog`, the queue the initial capacity
    leaves while the first requested capacity provisions: the DP holds values flat
    beyond the top, so a queue past it looks free to grow, and a start that queued
    past it was never planned out of (the path kept the initial capacity to the end:
    `tests/sim/test_oracle_solve.py`).
    """
    n_int = max(len(counts), 1)
    points = int(np.clip(CELL_BUDGET // (n_int * max(levels, 1)), MIN_POINTS, MAX_POINTS))
    top = max(4.0 * float(counts.max(initial=0.0)), 1.5 * forced_backlog, 2.0)
    return np.concatenate([[0.0], np.geomspace(1.0, top, points - 1)])


def forced_queue(counts: FloatArray, lengths: FloatArray, rates: FloatArray) -> float:
    """The longest queue the forced start builds: intervals served at saturated
    completion `rates` (one per forced interval), arrivals `counts` over `lengths`."""
    queue = longest = 0.0
    for count, length_s, rate in zip(counts, lengths, rates, strict=True):
        queue = max(0.0, queue + float(count) - float(rate) * float(length_s))
        longest = max(longest, queue)
    return longest


def plan_stride(decision_intervals: int, levels: int) -> int:
    """Decision intervals per planning interval: 1 unless even `MIN_POINTS` backlog
    points over every interval would exceed the cell budget (long horizons are then
    planned per minute or coarser; the replay still acts every decision interval)."""
    return max(1, math.ceil(decision_intervals * levels * MIN_POINTS / CELL_BUDGET))


def build_problem(
    scenario: Scenario,
    workload: Workload,
    lead_s: float | None,
    *,
    arrivals: FloatArray | None = None,
    backlog: bool = True,
) -> Problem:
    """The planning problem of `scenario` on `workload` (see the module docstring).

    Args:
        scenario: Pool, prices, SLO and decision interval.
        workload: The traffic (its requests' sizes give the service strata).
        lead_s: How far ahead capacity is requested; default the mean provisioning delay.
        arrivals: The run's realised per-second arrivals, when the oracle should plan
            for exactly what the engine will replay (an envelope sampled with the run's
            seed); default the workload's expected arrivals.
        backlog: Whether the state carries backlog. Without it the grid is the single
            point 0, no interval after the forced start is planned overloaded
            (`lower` is `stable_lower`) and the problem is planned every decision
            interval however long the horizon: O(intervals x levels) per pass.
    """
    pool = scenario.pool
    if isinstance(pool, ServerlessEndpoint):
        raise ScenarioError(
            f"scenario {scenario.name!r}: the oracle plans instance pools (gpu-node-pool or "
            "ec2-asg); a serverless endpoint scales itself, so it has no capacity schedule"
        )
    tick_s = scenario.decision_interval_s
    per_second = per_second_arrivals(workload).arrivals if arrivals is None else arrivals
    duration = len(per_second)
    start_nodes = pool.nodes_for(pool.start_replicas)
    level_nodes = level_grid(
        pool.nodes_for(pool.min_replicas), pool.nodes_for(pool.max_replicas), start_nodes
    )
    ticks = len(interval_bounds(duration, tick_s)) - 1
    interval_s = tick_s * (plan_stride(ticks, len(level_nodes)) if backlog else 1)
    bounds = interval_bounds(duration, interval_s)
    n_int = len(bounds) - 1
    cumulative = np.concatenate([[0.0], np.cumsum(per_second)])
    counts = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    lengths = np.maximum(bounds[1:] - bounds[:-1], 1).astype(np.float64)
    lam = counts / lengths
    tokens = token_profile(workload)
    strata = service_strata(pool.service, workload, tokens)
    blocks = block_strata(pool.service, workload, tokens, duration, STRATA_BLOCK_S, strata)
    block_of = np.minimum(bounds[:-1] // STRATA_BLOCK_S, len(blocks) - 1).astype(np.int64)
    level_replicas = np.minimum(level_nodes * pool.replicas_per_node, pool.max_replicas)
    burst = arrival_scv(
        per_second, exact=arrivals is not None or not isinstance(workload, RateEnvelope)
    )
    ac = np.full(n_int, (burst + strata.scv(float(pool.service.max_batch))) / 2.0)
    table = expected_table(
        scenario, workload, lam, lengths, block_of, blocks, level_replicas,
        strata.slowdown_per_slot, ac, realised=arrivals is not None,
    )  # fmt: skip
    slot_rate, weights, service_full_s = saturated_service(blocks, pool.service.max_batch, strata)
    lead = provisioning_mean_s(scenario) if lead_s is None else lead_s
    lead_intervals = math.ceil(lead / interval_s - 1e-9)
    usd_per_s = pool.node_usd_per_h / 3600.0
    lead_paid_s = math.ceil(lead / tick_s - 1e-9) * tick_s  # the replay asks this far ahead
    switch_cost = usd_per_s * (
        lead_paid_s + max(0.0, pool.billing_min_s - lead_paid_s - interval_s)
    )
    start = int(np.searchsorted(level_nodes, start_nodes))
    lower = np.zeros(n_int, dtype=np.int64)
    upper = np.full(n_int, len(level_nodes) - 1, dtype=np.int64)
    forced = min(n_int, 1 + lead_intervals)
    start_rate = level_replicas[start] * slot_rate[block_of[:forced]]
    forced_backlog = forced_queue(counts[:forced], lengths[:forced], start_rate)
    upper[:forced] = start  # nothing decided at tick 1 serves earlier
    lower[0] = start
    # stable against the interval's busiest BURST_WINDOW_S, not only its mean: the
    # engine's queue sees bursts within seconds that an interval's mean averages away
    stable = stable_levels(
        burst_rates(per_second, bounds), block_of, blocks, level_replicas,
        pool.service.max_batch, strata.slowdown_per_slot,
    )  # fmt: skip
    stable_lower = lower.copy()
    stable_lower[forced:] = np.minimum(stable[forced:], len(level_nodes) - 1)
    steady = stable_levels(
        lam, block_of, blocks, level_replicas, pool.service.max_batch, strata.slowdown_per_slot
    )
    steady_lower = lower.copy()
    steady_lower[forced:] = np.minimum(steady[forced:], len(level_nodes) - 1)
    return Problem(
        price_per_interval=usd_per_s * interval_s,
        switch_cost=switch_cost,
        level_nodes=level_nodes,
        level_replicas=level_replicas.astype(np.int64),
        counts=counts,
        lengths=lengths,
        table=table,
        slot_rate=slot_rate,
        block_of=block_of,
        weights=weights,
        budgets=np.ascontiguousarray(scenario.slo.latency_s - service_full_s),
        service_full_s=service_full_s,
        service_one_s=blocks[:, 1, :] + blocks[:, 2, :],
        grid=backlog_grid(counts, len(level_nodes), forced_backlog) if backlog else np.zeros(1),
        lower=lower if backlog else stable_lower,
        upper=upper,
        stable_lower=stable_lower,
        steady_lower=steady_lower,
        start=start,
        lead_s=lead_paid_s,
        gpus=max(pool.gpus, 0),
        interval_s=interval_s,
        tick_s=tick_s,
    )


def arrival_scv(per_second: FloatArray, *, exact: bool) -> float:
    """The ca^2 of Allen-Cunneen as the fluid engine applies it (`FluidSettings`): its
    own setting if it has one; 1 where the queue takes the raw counts (its default:
    the counts carry their bursts into the queue, not into the stationary wait); else
    the arrivals' dispersion about their 31 s moving rate (exact counts) or Poisson's 1
    (an envelope's expected counts). Planning with the dispersion under the raw queue
    made the stationary wait 20 times too long on ServeGen traffic (dispersion 44)."""
    settings = FluidSettings()
    if settings.arrival_scv is not None:
        return settings.arrival_scv
    if settings.queue_input == "raw" or not exact:
        return 1.0
    return dispersion(per_second, smoothed_rate(per_second, settings.rate_window_s))


def burst_rates(per_second: FloatArray, bounds: IntArray) -> FloatArray:
    """Each interval's busiest `BURST_WINDOW_S` moving-average rate (req/s)."""
    window = min(BURST_WINDOW_S, max(len(per_second), 1))
    moving = np.convolve(per_second, np.ones(window) / window, mode="same")
    starts, ends = bounds[:-1], np.maximum(bounds[1:], bounds[:-1] + 1)
    return np.maximum.reduceat(moving, np.minimum(starts, len(moving) - 1))[: len(ends)]


def saturated_service(
    blocks: FloatArray, max_batch: int, strata: ServiceStrata
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per block: completions per second of one replica at a full batch, and each
    stratum's weight and service time at that batch."""
    step = 1.0 + strata.slowdown_per_slot * (max_batch - 1.0)
    weights = np.ascontiguousarray(blocks[:, 0, :])
    service_s = blocks[:, 1, :] + blocks[:, 2, :] * step
    mean_s = (weights * service_s).sum(axis=1)
    slot_rate = max_batch / np.maximum(mean_s, 1e-9)
    return slot_rate, weights, np.ascontiguousarray(service_s)


def expected_table(
    scenario: Scenario,
    workload: Workload,
    lam: FloatArray,
    lengths: FloatArray,
    block_of: IntArray,
    blocks: FloatArray,
    level_replicas: IntArray,
    slowdown_per_slot: float,
    ac: FloatArray,
    *,
    realised: bool = False,
) -> np.ndarray:
    """Attainment per (interval, level), in expectation over the interval's arrivals.

    A trace's future is known exactly, and so are an envelope's arrivals once
    realised with the run's seed (`realised`). An envelope's expected arrivals are
    known in distribution only:
    the engines sample its requests (a ServeGen envelope's clients burstier than
    Poisson), so an interval's rate is random around the envelope's mean. The table
    then averages `_QUANTILES` realisations of the rate, with the interval-scale
    dispersion measured on one sampled realisation, weighted by their arrivals.
    """
    pool = scenario.pool
    args = (pool.service.max_batch, slowdown_per_slot, scenario.slo.latency_s, ac)
    envelope = isinstance(workload, RateEnvelope) and not realised
    idc = _interval_dispersion(workload, lam, lengths) if envelope else 0.0  # type: ignore[arg-type]
    if idc <= 1e-3:  # a trace, or Poisson: the M/M/c wait already holds its noise
        return attainment_table(lam, block_of, blocks, level_replicas, *args)
    from scipy.stats import gamma  # lazy: only envelopes need it

    # rate ~ Gamma(mean lam, variance lam x extra / length): shape = lam x length / extra
    shape = np.maximum(lam * lengths / idc, 1e-9)
    weighted = np.zeros((len(lam), len(level_replicas)), dtype=np.float32)
    positive = lam > 0
    for q in _QUANTILES:
        rate = np.zeros_like(lam)
        rate[positive] = gamma.ppf(q, shape[positive], scale=lam[positive] / shape[positive])
        part = attainment_table(rate, block_of, blocks, level_replicas, *args)
        part *= rate[:, None].astype(np.float32)
        weighted += part
    weighted /= np.maximum(lam * len(_QUANTILES), 1e-30)[:, None].astype(np.float32)
    weighted[~positive] = 1.0
    return weighted


_QUANTILES = (0.125, 0.375, 0.625, 0.875)


def _interval_dispersion(workload: RateEnvelope, lam: FloatArray, lengths: FloatArray) -> float:
    """Extra dispersion of interval counts (variance over mean, minus Poisson's 1) on a
    sampled realisation."""
    from sim.fluid.engine import FluidEngine  # the engines' own sampler

    rng = np.random.default_rng(0)
    _, inputs = FluidEngine().sample_arrivals(workload, 0, rng)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bounds = np.minimum(bounds, len(inputs.arrivals))
    cumulative = np.concatenate([[0.0], np.cumsum(inputs.arrivals)])
    counts = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    expected = lam * lengths
    total = float(expected.sum())
    if total <= 0.0:
        return 0.0
    return float(((counts - expected) ** 2).sum() / total) - 1.0
