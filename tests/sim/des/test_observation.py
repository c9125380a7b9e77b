"""What the policy sees, and how its decisions are applied (clamps, spillover)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sim.capacity.distributions import fixed
from sim.capacity.pools import GpuNodePool, ServerlessEndpoint
from sim.capacity.service import TokenService
from sim.contract import SPILLOVER, Decision, Observation, PolicyContext
from sim.des import DesEngine
from sim.workload.model import RequestTrace

FIVE_SECONDS = TokenService(  # 500 output tokens x 0.01 s
    prefill_s_per_1k_tokens=0.0, decode_s_per_token=0.01, max_batch=1, batch_slowdown=0.0
)


class Recorder:
    """A test policy: records every observation and answers with a fixed plan."""

    name = "recorder"

    def __init__(self, answers: list[Decision]) -> None:
        self.answers = answers
        self.seen: list[Observation] = []
        self.context: PolicyContext | None = None

    def reset(self, context: PolicyContext) -> None:
        self.context = context

    def decide(self, observation: Observation) -> Decision:
        self.seen.append(observation)
        return self.answers[min(len(self.seen), len(self.answers)) - 1]


def _pool(**overrides: object) -> GpuNodePool:
    values: dict[str, object] = {
        "instance_type": "g5.xlarge",
        "min_replicas": 1,
        "max_replicas": 3,
        "service": FIVE_SECONDS,
        "node_boot_s": fixed(100),
        "image_pull_s": fixed(0),
        "model_load_s": fixed(0),
        "spot_interruption_per_h": 0.0,
    }
    values.update(overrides)
    return GpuNodePool.model_validate(values)


def test_observation_reports_the_interval(make_scenario: Callable, make_trace: Callable) -> None:
    trace = make_trace([0.0, 1.0, 2.0, 20.0], 45.0, tokens=500)
    policy = Recorder([Decision(1, "hold")])
    DesEngine().run(make_scenario(_pool(), interval_s=15.0), trace, policy, seed=0)
    first, second = policy.seen[0], policy.seen[1]
    assert policy.context is not None and policy.context.history is None
    # 0-15 s: three 5 s requests back to back on one replica (0-5, 5-10, 10-15). The
    # tick at 15 s was scheduled before the last completion, so it comes first.
    assert first.demand_rps == pytest.approx(3 / 15)
    assert first.utilisation == pytest.approx(1.0)
    assert first.queue_len == 0  # req 2 started at 10 s; nothing else waits
    assert (first.ready, first.pending, first.desired) == (1, 0, 1)
    assert first.p95_latency_s == pytest.approx(5.0 + 0.95 * (9.0 - 5.0))  # latencies 5, 9
    assert len(first.history) == 0 and list(first.history) == []
    # 15-30 s: one arrival at 20 s, served 20-25: busy 5 of 15 s.
    assert second.demand_rps == pytest.approx(1 / 15)
    assert second.utilisation == pytest.approx(5.0 / 15.0)
    assert second.p95_latency_s == pytest.approx(5.0 + 0.95 * (13.0 - 5.0))  # 13, 5
    assert len(second.history) == 1 and second.history[0].time_s == 15.0


def test_out_of_bounds_decisions_are_clamped_with_the_reason(
    make_scenario: Callable, make_trace: Callable
) -> None:
    trace = make_trace([0.0], 60.0, tokens=500)
    policy = Recorder([Decision(9, "too many", targets={SPILLOVER: 2}), Decision(0, "none")])
    run = DesEngine(record_log=True).simulate(
        make_scenario(_pool(), interval_s=15.0), trace, policy, seed=0
    )
    desired = [(e.time_s, e.detail) for e in run.log if e.kind == "desired"]
    assert desired == [
        (15.0, "1->3 too many; clamped 9->3 (TooManyReplicas)"),
        (30.0, "3->1 none; clamped 0->1 (TooFewReplicas)"),
    ]
    assert run.result.scaling_actions == 2
    assert "3 decisions were out of bounds and clamped" in run.result.notes
    assert any("'spillover', which this scenario does not have" in n for n in run.result.notes)


def test_spillover_provisioned_concurrency_is_billed_while_configured(
    make_scenario: Callable, make_trace: Callable
) -> None:
    spill = ServerlessEndpoint(name="spill", max_replicas=10, cold_start_s=fixed(1.0))
    trace = make_trace([1.0], 75.0, tokens=500)
    policy = Recorder([Decision(1, "hold", targets={SPILLOVER: 4})])
    result = DesEngine().run(
        make_scenario(_pool(), spillover=spill, interval_s=15.0), trace, policy, seed=0
    )
    # Four provisioned instances from 15 s to 75 s, 6 GB each, at the PC price.
    assert result.cost_by_pool["spill"] == pytest.approx(4 * 60.0 * 6 * 0.0000048)
    assert result.cost_usd == pytest.approx(sum(result.cost_by_pool.values()))


def test_collection_gaps_are_no_metric_not_zero_load(make_scenario: Callable) -> None:
    trace = RequestTrace(
        arrival_s=np.array([1.0, 2.0, 40.0]),
        duration_s=60.0,
        input_tokens=np.array([1, 1, 1]),
        output_tokens=np.array([500, 500, 500]),
        missing=((15.0, 30.0), (40.0, 50.0)),
    )
    policy = Recorder([Decision(1, "hold")])
    result = DesEngine().run(make_scenario(_pool(), interval_s=15.0), trace, policy, seed=0)
    demand = [o.demand_rps for o in policy.seen]
    # 30-45 s: 40-45 s is a gap, so one arrival over 10 observed seconds.
    assert demand == [pytest.approx(2 / 15), None, pytest.approx(1 / 10)]
    assert np.isnan(result.series.demand_rps[1])
