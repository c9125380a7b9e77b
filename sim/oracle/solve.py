"""`solve_oracle`: the cheapest capacity schedule that meets the SLO, with the future known.

The offline optimum of Lin, Wierman, Andrew and Thereska ("Dynamic right-sizing
for power-proportional data centers", IEEE/ACM ToN 2013) under scaleplan's
capacity model:

* Levels are node counts; a level hosts min(nodes x replicas_per_node,
  max_replicas) replicas. Interval t's attainment at each level comes from
  `sim.oracle.attainment` at the interval's arrival rate.
* Running a node costs its (spot-share blended) price per second. Starting one
  costs its provisioning lead, billed before it serves: capacity ready at t must be
  requested at t - lead, where lead = the mean provisioning delay rounded up to the
  decision grid (the replay requests exactly that far ahead), plus any part of the
  billing minimum (`billing_min_s`) that one interval of service cannot use.
  A node that serves for one interval therefore costs what EC2 would bill; with a
  longer life the count is exact whenever billing_min_s <= lead + interval_s.
* Interval 0 runs the initial replicas; no capacity decided at the first tick can
  serve before interval 1 + lead / interval_s. Those forced intervals are simulated
  with the fluid engine (a short overload there is absorbed by the queue).
* No interval is planned overloaded (offered load at or above the slots): the
  backlog of an overloaded interval spills into the next ones, which a per-interval
  model cannot see; the stationary model is accurate only for stable intervals.

Two formulations (`mode`):

* "per-interval": every interval meets the SLO target on its own (the smallest
  level whose attainment reaches it, or the largest level if none does). The DP
  is then exact.
* "aggregate" (default): the SLO is an aggregate share, so a few intervals may
  be under-served when that is cheaper, as long as the run's attainment reaches
  the target. Solved by Lagrangian relaxation: bisection on the value `mu` of an
  attained request, one exact DP per `mu`; the result is feasible, and its cost is
  optimal up to the duality gap of the relaxation. The per-interval schedule and
  every feasible constant schedule are kept as candidates and the cheapest
  feasible one is returned, so the oracle is never above either.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim.capacity.pools import ServerlessEndpoint
from sim.engine import provisioning_mean_s, token_profile
from sim.errors import ScenarioError
from sim.fluid.engine import startup_attainment
from sim.fluid.inputs import (
    ServiceStrata,
    block_strata,
    interval_bounds,
    per_second_arrivals,
    service_strata,
)
from sim.oracle.attainment import attainment_table, stable_levels
from sim.oracle.dp import attained, dp_pass, schedule_cost
from sim.replay import SchedulePolicy
from sim.scenario import Scenario
from sim.workload.model import FloatArray, IntArray, RateEnvelope, Workload

OracleMode = Literal["aggregate", "per-interval"]
STRATA_BLOCK_S = 60  # as the fluid engine's default per-block strata
MAX_LEVELS = 256  # capacity levels the DP plans over (memory and time are N x levels)
_BISECTION_STEPS = 40


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule and what the capacity model predicts for it.

    Attributes:
        interval_s: Length of one decision interval.
        replicas: Replicas ready in each interval (the schedule).
        nodes: Nodes serving in each interval.
        lead_s: How far ahead the replay requests capacity (a whole number of intervals).
        cost_usd: Cost of the schedule under the DP's cost model.
        gpu_hours: GPU-hours billed (serving plus provisioning lead).
        predicted_attainment: Share of requests within the SLO under the model.
        mode: The formulation solved.
        multiplier_usd: Lagrange multiplier of the returned solution (0 if none).
        chosen: Which candidate won: "lagrangian", "per-interval" or "constant".
        solve_s: Wall time of the solve (diagnostic only).
    """

    interval_s: float
    replicas: IntArray
    nodes: IntArray
    lead_s: float
    cost_usd: float
    gpu_hours: float
    predicted_attainment: float
    mode: OracleMode
    multiplier_usd: float
    chosen: str
    solve_s: float

    def desired_at_ticks(self) -> IntArray:
        """Desired replicas to request at each interval start so the schedule is ready.

        At tick k the replay asks for the most any interval in [k, k + lead] needs:
        scale-out is requested one lead ahead, scale-in happens when no interval in
        that window needs the capacity any more.
        """
        lead = round(self.lead_s / self.interval_s)
        n = len(self.replicas)
        padded = np.concatenate([self.replicas, np.full(lead, self.replicas[-1])])
        windows = np.lib.stride_tricks.sliding_window_view(padded, lead + 1)
        return np.asarray(windows.max(axis=1)[:n], dtype=np.int64)

    def replay_policy(self, name: str = "oracle") -> SchedulePolicy:
        """A plain schedule-replay policy that requests `desired_at_ticks()`."""
        return SchedulePolicy(self.desired_at_ticks(), name=name, label="oracle schedule")


@dataclass(frozen=True)
class _Problem:
    price_per_interval: float
    switch_cost: float
    level_nodes: IntArray
    level_replicas: IntArray
    table: np.ndarray
    counts: FloatArray
    lower: np.ndarray
    upper: np.ndarray
    start: int
    lead_s: float
    gpus: int
    interval_s: float
    choice: np.ndarray  # (intervals, levels) int16 scratch of the DP, reused by every pass


def _problem(scenario: Scenario, workload: Workload, lead_s: float | None) -> _Problem:
    pool = scenario.pool
    if isinstance(pool, ServerlessEndpoint):
        raise ScenarioError(
            f"scenario {scenario.name!r}: the oracle plans instance pools (gpu-node-pool or "
            "ec2-asg); a serverless endpoint scales itself, so it has no capacity schedule"
        )
    interval_s = scenario.decision_interval_s
    inputs = per_second_arrivals(workload)
    duration = inputs.duration_s
    bounds = interval_bounds(duration, interval_s)
    n_int = len(bounds) - 1
    cumulative = np.concatenate([[0.0], np.cumsum(inputs.arrivals)])
    counts = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    lengths = np.maximum(bounds[1:] - bounds[:-1], 1)
    lam = counts / lengths
    tokens = token_profile(workload)
    strata = service_strata(pool.service, workload, tokens)
    blocks = block_strata(pool.service, workload, tokens, duration, STRATA_BLOCK_S, strata)
    block_of = np.minimum(bounds[:-1] // STRATA_BLOCK_S, len(blocks) - 1).astype(np.int64)
    per_node = pool.replicas_per_node
    low_nodes = pool.nodes_for(pool.min_replicas)
    high_nodes = pool.nodes_for(pool.max_replicas)
    # at most MAX_LEVELS levels: a pool of thousands of nodes is planned in steps of
    # several nodes (the optimum's cost rises by at most one step per interval)
    stride = max(1, math.ceil((high_nodes - low_nodes + 1) / MAX_LEVELS))
    level_nodes = np.arange(low_nodes, high_nodes + stride, stride, dtype=np.int64)
    level_nodes = np.minimum(level_nodes, high_nodes)
    level_nodes = np.unique(np.append(level_nodes, pool.nodes_for(pool.start_replicas)))
    level_replicas = np.minimum(level_nodes * per_node, pool.max_replicas).astype(np.int64)
    ac = np.full(n_int, (1.0 + strata.scv(float(pool.service.max_batch))) / 2.0)
    table, stable_from = _expected_table(
        scenario, workload, lam, lengths, block_of, blocks, level_replicas, strata, ac
    )
    lead = provisioning_mean_s(scenario) if lead_s is None else lead_s
    lead_intervals = math.ceil(lead / interval_s - 1e-9)
    usd_per_s = pool.node_usd_per_h / 3600.0
    lead_paid_s = lead_intervals * interval_s
    switch_cost = usd_per_s * (
        lead_paid_s + max(0.0, pool.billing_min_s - lead_paid_s - interval_s)
    )
    start = int(np.searchsorted(level_nodes, pool.nodes_for(pool.start_replicas)))
    lower = np.zeros(n_int, dtype=np.int64)
    upper = np.full(n_int, len(level_nodes) - 1, dtype=np.int64)
    forced = min(n_int, 1 + lead_intervals)
    upper[:forced] = start  # nothing decided at tick 1 serves earlier
    lower[0] = start
    # The forced start is simulated, not modelled: a short overload there is absorbed
    # by the queue, which the stationary per-interval model would count as all lost.
    table[:forced, start] = startup_attainment(scenario, workload, forced)
    # Never plan an overloaded interval: its backlog spills into the next intervals,
    # which the per-interval model cannot see (where no level is stable, plan the top).
    lower[forced:] = np.minimum(stable_from[forced:], len(level_nodes) - 1)
    return _Problem(
        price_per_interval=usd_per_s * interval_s,
        switch_cost=switch_cost,
        level_nodes=level_nodes,
        level_replicas=level_replicas,
        table=table,
        counts=counts,
        lower=lower,
        upper=upper,
        start=start,
        lead_s=lead_intervals * interval_s,
        gpus=max(pool.gpus, 0),
        interval_s=interval_s,
        choice=np.zeros(table.shape, dtype=np.int16),
    )


def _expected_table(
    scenario: Scenario,
    workload: Workload,
    lam: FloatArray,
    lengths: IntArray,
    block_of: IntArray,
    blocks: FloatArray,
    level_replicas: IntArray,
    strata: ServiceStrata,
    ac: FloatArray,
) -> tuple[np.ndarray, np.ndarray]:
    """Attainment per (interval, level), in expectation over the interval's arrivals.

    A trace's future is known exactly. An envelope's is known in distribution only:
    the engines sample its requests (a ServeGen envelope's clients burstier than
    Poisson), so an interval's rate is random around the envelope's mean. The table
    then averages `_QUANTILES` realisations of the rate, with the interval-scale
    dispersion measured on one sampled realisation, weighted by their arrivals.
    """
    pool = scenario.pool
    args = (pool.service.max_batch, strata.slowdown_per_slot, scenario.slo.latency_s, ac)
    stable_from = stable_levels(
        lam, block_of, blocks, level_replicas, pool.service.max_batch, strata.slowdown_per_slot
    )
    envelope = isinstance(workload, RateEnvelope)
    idc = _interval_dispersion(workload, lam, lengths) if envelope else 0.0  # type: ignore[arg-type]
    if idc <= 1e-3:  # a trace, or Poisson: the M/M/c wait already holds its noise
        return attainment_table(lam, block_of, blocks, level_replicas, *args), stable_from
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
    return weighted, stable_from


_QUANTILES = (0.125, 0.375, 0.625, 0.875)


def _interval_dispersion(workload: RateEnvelope, lam: FloatArray, lengths: IntArray) -> float:
    """Extra dispersion of interval counts (variance over mean, minus Poisson's 1) on a
    sampled realisation."""
    from sim.fluid.engine import FluidEngine  # the engines' own sampler

    rng = np.random.default_rng(0)
    _, inputs = FluidEngine().sample_arrivals(workload, 0, rng)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    bounds = np.minimum(bounds, len(inputs.arrivals))
    cumulative = np.concatenate([[0.0], np.cumsum(inputs.arrivals)])
    counts = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    expected = lam * lengths
    total = float(expected.sum())
    if total <= 0.0:
        return 0.0
    return float(((counts - expected) ** 2).sum() / total) - 1.0


def _dp(p: _Problem, mu: float, lower: np.ndarray) -> tuple[float, float, np.ndarray]:
    choice = p.choice
    path = np.zeros(len(p.counts), dtype=np.int32)
    cost, got = dp_pass(
        p.price_per_interval, p.switch_cost, p.level_nodes, p.table, p.counts, mu,
        lower, p.upper, p.start, choice, path,
    )  # fmt: skip
    return cost, got, path


def _per_interval_lower(p: _Problem, target: float) -> np.ndarray:
    """Smallest level meeting `target` in each interval (the top level where none does)."""
    meets = p.table >= target
    first = np.where(meets.any(axis=1), meets.argmax(axis=1), len(p.level_nodes) - 1)
    return np.minimum(np.maximum(first, p.lower), p.upper)


def solve_oracle(
    scenario: Scenario,
    workload: Workload,
    *,
    mode: OracleMode = "aggregate",
    lead_s: float | None = None,
) -> OracleResult:
    """The cheapest schedule meeting the scenario's SLO under its capacity model.

    Args:
        scenario: Capacity model, prices, SLO and decision interval.
        workload: The traffic, known in full (the oracle is clairvoyant).
        mode: "aggregate" (the run's attainment reaches the target) or
            "per-interval" (every interval does).
        lead_s: How far ahead capacity is requested; default the mean provisioning delay.

    Raises:
        ScenarioError: A serverless main pool, or a target no schedule can reach.
    """
    began = time.perf_counter()
    p = _problem(scenario, workload, lead_s)
    target = scenario.slo.target_attainment
    total = float(p.counts.sum())
    need = target * total
    top = np.asarray(p.upper, dtype=np.int32)
    best_possible = float(attained(p.table, p.counts, top))
    if best_possible < need * (1 - 1e-12):
        raise ScenarioError(
            f"scenario {scenario.name!r}: no capacity schedule reaches the SLO target "
            f"{target:.4f}; even max_replicas ({scenario.pool.max_replicas}) from the first "
            f"possible moment attains {best_possible / max(total, 1):.4f} of requests within "
            f"{scenario.slo.latency_s:g} s. Lower slo.target_attainment, raise "
            "slo.latency_s or pool.max_replicas"
        )
    candidates: list[tuple[float, float, np.ndarray, str, float]] = []
    per_lower = _per_interval_lower(p, target)
    cost, got, path = _dp(p, 0.0, per_lower)
    candidates.append((cost, got, path, "per-interval", 0.0))
    if mode == "aggregate":
        candidates.append(_lagrangian(p, need))
        for level in range(len(p.level_nodes)):
            flat = np.clip(level, p.lower, p.upper).astype(np.int32)
            candidates.append(
                (
                    schedule_cost(p.price_per_interval, p.switch_cost, p.level_nodes, flat),
                    attained(p.table, p.counts, flat),
                    flat,
                    "constant",
                    0.0,
                )
            )
    feasible = [c for c in candidates if c[1] >= need * (1 - 1e-12)]
    pool_ = feasible or candidates[:1]  # per-interval is the fallback only if nothing is
    cost, got, path, chosen, mu = min(pool_, key=lambda c: c[0])
    nodes = p.level_nodes[path]
    up = np.maximum(np.diff(nodes, prepend=nodes[0]), 0)
    node_s = float(nodes.sum() * p.interval_s + up.sum() * p.lead_s)
    return OracleResult(
        interval_s=p.interval_s,
        replicas=p.level_replicas[path].astype(np.int64),
        nodes=nodes.astype(np.int64),
        lead_s=p.lead_s,
        cost_usd=float(cost),
        gpu_hours=node_s * p.gpus / 3600.0,
        predicted_attainment=float(got / total) if total > 0 else 1.0,
        mode=mode,
        multiplier_usd=mu,
        chosen=chosen,
        solve_s=time.perf_counter() - began,
    )


def _lagrangian(p: _Problem, need: float) -> tuple[float, float, np.ndarray, str, float]:
    """Smallest multiplier whose DP schedule attains `need`, by bisection in log space."""
    cost, got, path = _dp(p, 0.0, p.lower)
    if got >= need:
        return cost, got, path, "lagrangian", 0.0
    # one attained request is worth at most a few node-intervals: start there, grow
    hi = p.price_per_interval / max(float(p.counts.max()), 1.0)
    best = None
    for _ in range(80):
        cost, got, path = _dp(p, hi, p.lower)
        if got >= need:
            best = (cost, got, path, "lagrangian", hi)
            break
        hi *= 4.0
    if best is None:
        raise ScenarioError("oracle: the Lagrangian search found no feasible multiplier")
    lo = hi / 4.0
    for _ in range(_BISECTION_STEPS):
        mid = math.sqrt(lo * hi)
        cost, got, path = _dp(p, mid, p.lower)
        if got >= need:
            hi, best = mid, (cost, got, path, "lagrangian", mid)
        else:
            lo = mid
        if hi / lo < 1.0 + 1e-3:  # the cost moves by far less than a node-interval
            break
    return best
