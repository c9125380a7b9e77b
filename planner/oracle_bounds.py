"""Bounds the oracle reports and prunes with, from the scenario alone.

`work_lower_bound`: a cost no schedule meeting the SLO can go below in either engine
(reported with the oracle and its gap); `requests_bill_floor`: the least a replay of
given requests can bill (a plan whose floor already reaches the best verified bill
is not replayed); `best_share_without_queueing`: the share of requests whose service
alone fits the latency objective (none above it is reachable at any size);
`provisioning_quantile_s`: how far ahead the oracle asks for capacity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.scenario import Scenario

if TYPE_CHECKING:
    from sim.capacity.pools import InstancePool
    from sim.oracle.problem import Problem


def best_share_without_queueing(problem: Problem) -> float:
    """Share of requests whose service alone (a batch of one, no wait) fits the objective."""
    counts_by_block = np.bincount(
        problem.block_of, weights=problem.counts, minlength=len(problem.weights)
    )
    total = float(counts_by_block.sum())
    if total <= 0:
        return 1.0
    slo_s = problem.budgets + problem.service_full_s  # the latency objective, per cell
    met = (problem.weights * (problem.service_one_s <= slo_s)).sum(axis=1)
    return float((met * counts_by_block).sum() / total)


def work_lower_bound(scenario: Scenario, problem: Problem) -> float:
    """A cost no schedule meeting the SLO can go below, in either engine.

    Every attained request holds a slot for at least its service time, and a replica
    completes at most `max_batch / service time at a full batch` requests per second
    (throughput grows with the batch). Attaining the target share therefore takes at
    least the replica-seconds of the cheapest requests that make up that share, and
    the pool never runs fewer than its minimum. This ignores burstiness and
    provisioning, so it is loose on bursty traffic; the gap says how loose.
    """
    pool = scenario.pool
    per_replica_s = replica_usd_per_s(scenario)
    counts_by_block = np.bincount(
        problem.block_of, weights=problem.counts, minlength=len(problem.weights)
    )
    step_s = problem.service_full_s / float(pool.service.max_batch)  # replica-s per request
    work = (problem.weights * counts_by_block[:, None]).ravel()
    cost = step_s.ravel()
    order = np.argsort(cost)
    need = scenario.slo.target_attainment * float(problem.counts.sum())
    taken = np.minimum(np.cumsum(work[order]), need)
    parts = np.diff(np.concatenate([[0.0], taken]))
    replica_s = float((parts * cost[order]).sum())
    floor_s = float(pool.min_replicas * problem.lengths.sum())
    return per_replica_s * max(replica_s, floor_s)


def provisioning_quantile_s(scenario: Scenario, quantile: float) -> float:
    """The `quantile` of the time from a scale-out request to a serving replica, from
    the pool's own delay distributions (sampled with a fixed seed)."""
    from sim.capacity.distributions import Delay

    pool = scenario.pool
    steps = [d for name, d in vars(pool).items() if isinstance(d, Delay) and name in _LEAD_STEPS]
    if not steps:
        return scenario.pool.provisioning_mean_s()
    rng = np.random.default_rng(0)
    total = np.zeros(4000)
    for step in steps:
        total += [step.sample(rng) for _ in range(len(total))]
    return float(np.quantile(total, quantile))


#: The delay fields that add up to a new replica's provisioning time, per pool kind.
_LEAD_STEPS = frozenset({"node_boot_s", "image_pull_s", "instance_boot_s", "model_load_s"})


def requests_bill_floor(
    scenario: Scenario, requests: np.ndarray, tick_s: float, duration_s: float
) -> float:
    """The least a replay of `requests` (replicas asked for at each decision tick) can
    bill in the fluid or SimPy engine: from the first decision on, every replica asked
    for sits on a node billed from its launch to its termination (drains, the billing
    minimum, replaced nodes and a spillover pool only add), each node at no less than
    the cheaper of its prices. The first interval, before any decision, is left out.
    The 8-week oracle's replays (`benchmarks/volatile_8w.py`) bill 0.7-1.1 % above it."""
    pool = instance_pool(scenario)
    node_usd_per_s = pool.on_demand_usd_per_h / 3600.0
    if pool.spot_share > 0.0:
        node_usd_per_s = min(node_usd_per_s, pool.spot_usd_per_h / 3600.0)
    starts_s = np.arange(1, len(requests), dtype=np.float64) * tick_s
    lengths_s = np.clip(duration_s - starts_s, 0.0, tick_s)
    nodes = np.ceil(np.asarray(requests[1:], dtype=np.float64) / max(pool.replicas_per_node, 1))
    return float(np.sum(nodes * lengths_s)) * node_usd_per_s


def instance_pool(scenario: Scenario) -> InstancePool:
    """The scenario's pool, which the oracle plans only as an instance pool."""
    from sim.capacity.pools import ServerlessEndpoint

    pool = scenario.pool
    assert not isinstance(pool, ServerlessEndpoint), "the oracle plans instance pools"
    return pool


def replica_usd_per_s(scenario: Scenario) -> float:
    """Price of one replica-second of the scenario's instance pool."""
    pool = instance_pool(scenario)
    return pool.node_usd_per_h / 3600.0 / max(pool.replicas_per_node, 1)
