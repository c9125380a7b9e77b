"""Narrative tests in SimPy's style: a tiny scenario, then its time-stamped event log.

Service is token-driven and deterministic (0.01 s per output token, no prefill,
batch of one), delays are fixed, so every time stamp below is exact.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import simpy

from sim.capacity.distributions import fixed
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool, ServerlessEndpoint
from sim.capacity.service import TokenService
from sim.contract import Actuator, Decision, Observation, PolicyContext
from sim.des import DesEngine, LogEntry
from sim.des.instance_pool import SimInstancePool
from sim.des.requests import RequestBook, arrivals_from
from sim.des.serverless import SimServerlessPool

ONE_SECOND_PER_100_TOKENS = TokenService(
    prefill_s_per_1k_tokens=0.0, decode_s_per_token=0.01, max_batch=1, batch_slowdown=0.0
)


class Schedule:
    """A test policy: the desired capacity from a step schedule {from_time_s: desired}."""

    name = "schedule"

    def __init__(self, steps: dict[float, int]) -> None:
        self.steps = steps

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        due = [t for t in self.steps if t <= observation.time_s]
        desired = self.steps[max(due)] if due else observation.desired
        return Decision(desired, f"schedule at {observation.time_s:g}")


def events(log: tuple[LogEntry, ...], *kinds: str) -> list[tuple[float, str, str]]:
    return [(round(e.time_s, 6), e.kind, e.detail) for e in log if e.kind in kinds]


def gpu_pool(**overrides: object) -> GpuNodePool:
    values: dict[str, object] = {
        "instance_type": "g5.xlarge",
        "min_replicas": 0,
        "max_replicas": 4,
        "service": ONE_SECOND_PER_100_TOKENS,
        "node_boot_s": fixed(100),
        "image_pull_s": fixed(20),
        "model_load_s": fixed(30),
        "spot_interruption_per_h": 0.0,
        "queue_timeout_s": 1000.0,
    }
    values.update(overrides)
    return GpuNodePool.model_validate(values)


def test_provisioning_delay_is_boot_plus_pull_plus_load(
    make_scenario: Callable, make_trace: Callable
) -> None:
    scenario = make_scenario(gpu_pool(), interval_s=15.0)
    trace = make_trace([10.0], 400.0, tokens=100)
    run = DesEngine(record_log=True).simulate(scenario, trace, Schedule({15: 1}), seed=0)

    assert events(run.log, "desired", "node_launch", "node_ready", "replica_ready") == [
        (15.0, "desired", "0->1 schedule at 15"),
        (15.0, "node_launch", "node=1 spot=False"),
        (135.0, "node_ready", "node=1"),
        (165.0, "replica_ready", "replica=2"),
    ]
    assert events(run.log, "queue", "start", "finish") == [
        (10.0, "queue", "req=0"),
        (165.0, "start", "req=0 replica=2 batch=1"),
        (166.0, "finish", "req=0 replica=2"),
    ]
    assert run.result.p50_latency_s == pytest.approx(156.0)
    # Billed from the launch request (15 s) to the end (400 s), at the g5.xlarge list price.
    assert run.result.cost_usd == pytest.approx(1.006 * 385.0 / 3600.0)
    assert run.result.gpu_hours == pytest.approx(385.0 / 3600.0)


def test_spot_reclaim_retries_the_request_at_the_front(
    make_scenario: Callable, make_trace: Callable
) -> None:
    # Node 1 is spot (spot share 0.5 rounds the first node to spot), node 2 on demand.
    pool = gpu_pool(
        min_replicas=2, spot_share=0.5, spot_interruption_per_h=3600.0, node_boot_s=fixed(50)
    )
    scenario = make_scenario(pool, interval_s=15.0)
    trace = make_trace([0.1, 0.2, 0.3], 60.0, tokens=1000)  # 10 s each
    run = DesEngine(record_log=True).simulate(scenario, trace, Schedule({}), seed=3)

    reclaims = events(run.log, "spot_reclaim")
    assert reclaims[0][2] == "node=1"
    reclaim_s = reclaims[0][0]
    assert reclaim_s < 10.1, "seed 3 reclaims node 1 while req 0 runs"
    assert events(run.log, "start", "retry", "finish", "queue") == [
        (0.1, "start", "req=0 replica=2 batch=1"),
        (0.2, "start", "req=1 replica=4 batch=1"),
        (0.3, "queue", "req=2"),
        (reclaim_s, "retry", "req=0"),
        # Re-queued at the front: it runs before req 2, which arrived first in the queue.
        (10.2, "finish", "req=1 replica=4"),
        (10.2, "start", "req=0 replica=4 batch=1"),
        (20.2, "finish", "req=0 replica=4"),
        (20.2, "start", "req=2 replica=4 batch=1"),
        (30.2, "finish", "req=2 replica=4"),
    ]
    assert run.result.retried == 1
    assert run.result.served == 3
    # A reclaimed spot node is replaced (and, at this hazard, reclaimed again).
    assert len(events(run.log, "node_launch")) > 2


def test_keep_alive_expiry_forces_a_second_cold_start(
    make_scenario: Callable, make_trace: Callable
) -> None:
    pool = ServerlessEndpoint(
        service=ONE_SECOND_PER_100_TOKENS, cold_start_s=fixed(2.0), keep_alive_s=30.0
    )
    trace = make_trace([0.0, 10.0, 50.0], 100.0, tokens=100)
    run = DesEngine(record_log=True).simulate(make_scenario(pool), trace, Schedule({}), seed=0)
    assert events(run.log, "cold_start", "warm_start", "finish", "expire") == [
        (0.0, "cold_start", "req=0 instance=1"),
        (3.0, "finish", "req=0 instance=1"),
        (10.0, "warm_start", "req=1 instance=1"),
        (11.0, "finish", "req=1 instance=1"),
        (41.0, "expire", "instance=1"),
        (50.0, "cold_start", "req=2 instance=2"),
        (53.0, "finish", "req=2 instance=2"),
        (83.0, "expire", "instance=2"),
    ]
    assert run.result.cold_starts == 2
    assert run.pools[pool.name].mean_instances == pytest.approx((41.0 + 33.0) / 100.0)
    # Billed: three 1 s invocations x 6 GB at the per GB-second price; cold starts free.
    assert run.result.cost_usd == pytest.approx(3 * 1.0 * 6 * 0.00002)


def test_queue_timeout_drops_at_the_deadline(make_scenario: Callable, make_trace: Callable) -> None:
    scenario = make_scenario(gpu_pool(min_replicas=1, queue_timeout_s=5.0))
    trace = make_trace([0.0, 1.0, 2.0], 60.0, tokens=1000)  # 10 s each
    run = DesEngine(record_log=True).simulate(scenario, trace, Schedule({}), seed=0)
    assert events(run.log, "drop") == [
        (6.0, "drop", "req=1 queue timeout"),
        (7.0, "drop", "req=2 queue timeout"),
    ]
    assert (run.result.served, run.result.dropped, run.result.in_flight) == (1, 2, 0)
    # Dropped requests count as SLO misses; the one served took 10 s (> 5 s SLO).
    assert run.result.slo_attainment == 0.0


def test_scale_in_drains_busy_replicas_then_releases_the_node(
    make_scenario: Callable, make_trace: Callable
) -> None:
    scenario = make_scenario(gpu_pool(min_replicas=1, initial_replicas=2), interval_s=15.0)
    trace = make_trace([1.0, 2.0], 120.0, tokens=3000)  # 30 s each
    run = DesEngine(record_log=True).simulate(scenario, trace, Schedule({15: 1}), seed=0)
    assert events(
        run.log, "desired", "replica_drain", "finish", "replica_remove", "node_release"
    ) == [
        (15.0, "desired", "2->1 schedule at 15"),
        (15.0, "replica_drain", "replica=4"),
        (31.0, "finish", "req=0 replica=2"),
        (32.0, "finish", "req=1 replica=4"),
        (32.0, "replica_remove", "replica=4"),
        (32.0, "node_release", "node=3"),
    ]
    assert run.result.scaling_actions == 1


def test_spillover_absorbs_requests_while_the_pool_is_full(
    make_scenario: Callable, make_trace: Callable
) -> None:
    spill = ServerlessEndpoint(
        name="spill", service=ONE_SECOND_PER_100_TOKENS, cold_start_s=fixed(4.0)
    )
    scenario = make_scenario(gpu_pool(min_replicas=1), spillover=spill)
    trace = make_trace([0.0, 1.0], 60.0, tokens=1000)
    run = DesEngine(record_log=True).simulate(scenario, trace, Schedule({}), seed=0)
    assert events(run.log, "spill", "cold_start", "start", "finish") == [
        (0.0, "start", "req=0 replica=2 batch=1"),
        (1.0, "spill", "req=1 to=spill"),
        (1.0, "cold_start", "req=1 instance=1"),
        (10.0, "finish", "req=0 replica=2"),
        (15.0, "finish", "req=1 instance=1"),
    ]
    assert set(run.result.cost_by_pool) == {"gpu", "spill"}
    assert run.result.cost_usd == pytest.approx(sum(run.result.cost_by_pool.values()))


def test_serverless_throttles_at_max_concurrency(
    make_scenario: Callable, make_trace: Callable
) -> None:
    pool = ServerlessEndpoint(
        service=ONE_SECOND_PER_100_TOKENS, cold_start_s=fixed(0.0), max_replicas=1
    )
    trace = make_trace([0.0, 0.5, 2.0], 60.0, tokens=100)
    run = DesEngine(record_log=True).simulate(make_scenario(pool), trace, Schedule({}), seed=0)
    assert events(run.log, "drop") == [(0.5, "drop", "req=1 throttled")]
    assert run.pools[pool.name].throttled == 1
    assert (run.result.served, run.result.dropped) == (2, 1)


def test_asg_warm_pool_starts_faster_than_a_boot(
    make_scenario: Callable, make_trace: Callable
) -> None:
    pool = Ec2AutoScalingGroup(
        instance_type="g5.xlarge",
        min_replicas=0,
        max_replicas=4,
        service=ONE_SECOND_PER_100_TOKENS,
        warm_pool_size=1,
        warm_start_s=fixed(10),
        instance_boot_s=fixed(200),
        model_load_s=fixed(5),
        spot_interruption_per_h=0.0,
    )
    trace = make_trace([1.0], 300.0, tokens=100)
    run = DesEngine(record_log=True).simulate(make_scenario(pool), trace, Schedule({15: 2}), seed=0)
    assert events(run.log, "node_launch", "node_ready", "replica_ready", "start") == [
        (15.0, "node_launch", "node=1 spot=False"),
        (15.0, "node_launch", "node=3 spot=False"),
        (25.0, "node_ready", "node=1"),
        (30.0, "replica_ready", "replica=2"),
        (30.0, "start", "req=0 replica=2 batch=1"),
        (215.0, "node_ready", "node=3"),
        (220.0, "replica_ready", "replica=4"),
    ]


def test_pools_implement_the_actuator_protocol(make_trace: Callable) -> None:
    env = simpy.Environment()
    book = RequestBook(arrivals_from(make_trace([], 10.0), np.random.default_rng(0)))
    gpu = SimInstancePool(env, gpu_pool(min_replicas=1), book, seed=0)
    endpoint = SimServerlessPool(env, ServerlessEndpoint(), book, seed=0)
    for pool in (gpu, endpoint):
        assert isinstance(pool, Actuator)
        low, high = pool.bounds()
        with pytest.raises(ValueError, match="outside bounds"):
            pool.set_desired(high + 1, "too many")
        pool.set_desired(low + 1, "one more")
        assert pool.current() == low + 1


def test_provisioned_concurrency_stays_within_max_concurrency(
    make_scenario: Callable, make_trace: Callable
) -> None:
    """Two on-demand instances fill max concurrency 2; provisioned concurrency 2 asked at
    15 s cannot add instances: it takes the idle one (1) at once and the busy one (2)
    when its request ends at 20.5 s, never exceeding the endpoint's max (SageMaker
    counts provisioned concurrency toward max concurrency)."""
    pool = ServerlessEndpoint(
        service=ONE_SECOND_PER_100_TOKENS, cold_start_s=fixed(1.0), keep_alive_s=600.0,
        max_replicas=2,
    )  # fmt: skip
    # req 0 (0-2 s) leaves instance 1 idle; req 1 (0.5-20.5 s) keeps instance 2 busy
    outputs = [100, 1900, 100, 100]
    trace = make_trace([0.0, 0.5, 40.0, 40.5], 60.0, tokens=100, output_tokens=outputs)
    run = DesEngine(record_log=True).simulate(
        make_scenario(pool), trace, Schedule({15.0: 2}), seed=0
    )
    assert max(run.result.series.ready) <= 2
    assert events(run.log, "cold_start", "warm_start", "expire") == [
        (0.0, "cold_start", "req=0 instance=1"),
        (0.5, "cold_start", "req=1 instance=2"),
        # both provisioned by then, both warm: no cold start, no throttle, no expiry
        (40.0, "warm_start", "req=2 instance=2"),
        (40.5, "warm_start", "req=3 instance=1"),
    ]
    assert run.result.dropped == 0
