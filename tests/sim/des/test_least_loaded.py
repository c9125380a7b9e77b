"""`LeastLoaded` picks what a scan of every serving replica would pick.

The scan is the routing rule as the pool first wrote it: among serving replicas
in ready order, the first one with the fewest requests in flight and a free slot.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.capacity.pools import GpuNodePool, ServerlessEndpoint
from sim.capacity.service import TokenService
from sim.contract import SPILLOVER, Decision, Observation, PolicyContext
from sim.des import DesEngine, instance_pool
from sim.des.least_loaded import LeastLoaded
from sim.des.nodes import Node, Replica

#: Submits and completions are what a pool does most; adds and removes reshape it.
KINDS = ("submit", "submit", "submit", "complete", "complete", "add", "remove")
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 2**16)), min_size=50, max_size=400
)


def _scan(serving: list[Replica], max_batch: int) -> Replica | None:
    best: Replica | None = None
    for replica in serving:
        if replica.busy < max_batch and (best is None or replica.busy < best.busy):
            best = replica
    return best


@settings(max_examples=300, deadline=None)
@given(
    max_batch=st.integers(1, 5),
    slack=st.sampled_from([0, 3, 64]),
    initial=st.integers(0, 6),
    operations=OPERATIONS,
)
def test_pick_is_the_first_least_loaded_replica_with_a_free_slot(
    max_batch: int, slack: int, initial: int, operations: list[tuple[str, int]]
) -> None:
    node = Node(1, spot=False)
    free = LeastLoaded(max_batch, slack=slack)
    serving: list[Replica] = []  # ready order, as the pool keeps it
    gone: list[Replica] = []  # removed while busy: they still finish their requests
    ids = 0

    def add() -> None:
        nonlocal ids
        ids += 1
        replica = Replica(ids, node)
        serving.append(replica)
        free.add(replica)

    for _ in range(initial):
        add()
    for operation, choice in operations:
        expected = _scan(serving, max_batch)
        assert free.pick() is expected
        assert len(free) == len(serving)
        if operation == "submit" and expected is not None:
            expected.busy += 1
            free.took(expected)
        elif operation == "complete":
            busy = [r for r in serving + gone if r.busy > 0]
            if busy:
                replica = busy[choice % len(busy)]
                replica.busy -= 1
                if replica in serving:
                    free.released(replica)
        elif operation == "add":
            add()
        elif operation == "remove" and serving:
            replica = serving.pop(choice % len(serving))
            free.discard(replica)
            if replica.busy:
                gone.append(replica)
    assert free.pick() is _scan(serving, max_batch)


def _start(free: LeastLoaded) -> Replica:
    """Start one request where the pool would: on the replica `pick` chooses."""
    replica = free.pick()
    assert replica is not None
    replica.busy += 1
    free.took(replica)
    return replica


def test_ties_go_to_the_replica_that_became_ready_first() -> None:
    node = Node(1, spot=False)
    first, second, third = (Replica(i, node) for i in (3, 1, 2))  # ids are not ready order
    free = LeastLoaded(max_batch=2)
    for replica in (first, second, third):
        free.add(replica)
    assert [_start(free).id for _ in range(6)] == [3, 1, 2, 3, 1, 2]
    assert free.pick() is None
    second.busy -= 1
    free.released(second)
    assert free.pick() is second


def test_a_key_left_behind_by_an_earlier_load_is_not_taken_for_the_current_one() -> None:
    node = Node(1, spot=False)
    a, b = Replica(1, node), Replica(2, node)
    free = LeastLoaded(max_batch=4)
    free.add(a)
    free.add(b)
    assert [_start(free), _start(free)] == [a, b]  # a: 1, b: 1
    a.busy -= 1
    free.released(a)  # a: 0; its key for load 1 stays behind in the heap
    assert _start(free) is a  # a: 1 again, a second key for load 1
    assert _start(free) is a  # a: 2 (a wins the tie at 1); one key for load 1 is now stale
    assert free.pick() is b  # b at 1, not a through the stale key


class ScanPicker:
    """`LeastLoaded`'s interface over a plain scan: the routing rule as first written."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self.serving: list[Replica] = []

    def add(self, replica: Replica) -> None:
        self.serving.append(replica)

    def discard(self, replica: Replica) -> None:
        self.serving.remove(replica)

    def pick(self) -> Replica | None:
        return _scan(self.serving, self.max_batch)

    def took(self, replica: Replica) -> None:
        del replica

    def released(self, replica: Replica) -> None:
        del replica


class Churn:
    """Moves capacity at random every interval, so replicas are added, drained and removed."""

    name = "churn"

    def reset(self, context: PolicyContext) -> None:
        self.rng = context.rng

    def decide(self, observation: Observation) -> Decision:
        desired = observation.desired + int(self.rng.integers(-3, 4))
        desired = min(max(desired, observation.min_replicas), observation.max_replicas)
        return Decision(desired, "churn", targets={SPILLOVER: int(self.rng.integers(0, 3))})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_run_is_bit_for_bit_the_run_with_a_scan(
    seed: int, make_scenario: Callable, make_poisson: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = GpuNodePool(
        instance_type="g5.12xlarge",  # 4 GPUs: replicas share nodes, lost together
        min_replicas=1,
        max_replicas=16,
        initial_replicas=6,
        service=TokenService(max_batch=4, decode_s_per_token=0.02),
        spot_share=0.5,
        spot_interruption_per_h=30.0,
        node_failure_per_h=5.0,
        queue_timeout_s=20.0,
    )
    scenario = make_scenario(
        pool, spillover=ServerlessEndpoint(name="spill", spill_queue_threshold=2), interval_s=15.0
    )
    trace = make_poisson(12.0, 1800.0, seed=seed, tokens=200)
    runs = []
    for picker in (LeastLoaded, ScanPicker):
        monkeypatch.setattr(instance_pool, "LeastLoaded", picker)
        runs.append(DesEngine(record_log=True).simulate(scenario, trace, Churn(), seed=seed))
    fast, scan = runs
    assert fast.log == scan.log
    assert pickle.dumps(fast.result) == pickle.dumps(scan.result)
    kinds = {entry.kind for entry in fast.log}
    assert {"replica_drain", "queue", "spill", "retry"} <= kinds, "every routing path exercised"
    assert np.array_equal(fast.requests.start_s, scan.requests.start_s, equal_nan=True)
