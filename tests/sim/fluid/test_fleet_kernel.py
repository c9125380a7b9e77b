"""The fleet's compiled scans equal their numpy definitions, and its delay samplers
draw what `Delay.sample` draws (the fleet's results depend on both bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.capacity.distributions import Delay
from sim.fluid import fleet_kernel as FK
from sim.fluid.fleet import DRAIN_RECORDS, sampler

CASES = range(40)


def _replicas(seed: int, per_node: int) -> tuple[dict[str, np.ndarray], int, float]:
    """Random replica and node arrays with many ties in the times (whole seconds)."""
    rng = np.random.default_rng(seed)
    max_replicas = int(rng.integers(1, 60))
    nodes = -(-max_replicas // per_node)

    def seconds(count: int, share_inf: float) -> np.ndarray:
        return np.where(rng.random(count) < share_inf, np.inf, rng.integers(0, 20, count) * 1.0)

    arrays = {
        "loaded": rng.random(max_replicas) < 0.6,
        "ready_at": seconds(max_replicas, 0.1),
        "until": seconds(max_replicas, 0.7),
        "node_up_s": seconds(nodes, 0.0),
        "node_seq": rng.permutation(nodes * 3)[:nodes].astype(np.int64),
    }
    return arrays, int(rng.integers(0, max_replicas + 1)), float(rng.integers(0, 20))


@pytest.mark.parametrize("per_node", [1, 4])
@pytest.mark.parametrize("case", CASES)
def test_waiting_order_is_the_lexsort_by_up_time_launch_and_index(per_node: int, case: int) -> None:
    a, desired, up_by = _replicas(case, per_node)
    for bound in (up_by, np.inf):
        waiting = np.flatnonzero(~a["loaded"][:desired])
        nodes = waiting // per_node
        up = a["node_up_s"][nodes]
        keep = up <= bound
        waiting, nodes, up = waiting[keep], nodes[keep], up[keep]
        expected = waiting[np.lexsort((waiting, a["node_seq"][nodes], up))]
        out = np.zeros(len(a["loaded"]), dtype=np.int64)
        n = FK.waiting_order(
            a["loaded"], a["node_up_s"], a["node_seq"], desired, per_node, bound, out
        )
        assert out[:n].tolist() == expected.tolist()


@pytest.mark.parametrize("case", CASES)
def test_removal_order_is_booting_then_loading_then_serving_newest_first(case: int) -> None:
    a, desired, now = _replicas(case, 1)
    seq = a["node_seq"][:desired]
    up, ready_at = a["node_up_s"][:desired], a["ready_at"][:desired]
    stage = np.where(up > now, 0, np.where(ready_at > now, 1, 2))
    expected = np.lexsort((-seq, stage)).tolist()
    out = np.full(len(a["loaded"]), -1, dtype=np.int64)
    for count in sorted({0, min(1, desired), desired // 2, desired}):
        FK.removal_order(a["node_up_s"], a["ready_at"], a["node_seq"], desired, now, count, out)
        assert out[:count].tolist() == expected[:count]


@pytest.mark.parametrize("case", CASES)
def test_ready_pending_counts_live_ready_and_not_yet_ready(case: int) -> None:
    a, desired, now = _replicas(case, 1)
    ready_at, until = a["ready_at"][:desired], a["until"][:desired]
    expected = (
        int(np.count_nonzero((ready_at <= now) & (until > now))),
        int(np.count_nonzero(ready_at > now)),
    )
    assert FK.ready_pending(a["ready_at"], a["until"], desired, now) == expected


def test_a_drain_takes_the_first_ended_record_or_folds_into_the_last_ending() -> None:
    ready_at = np.array([0.0, 0.0, 50.0, 0.0])  # replica 2 is still loading at t = 10
    until = np.array([np.inf, np.inf, np.inf, 5.0])  # replica 3's node died at t = 5
    drain_end = np.full(DRAIN_RECORDS, -np.inf)
    drain_end[0] = 30.0  # still draining at t = 10
    replicas = np.zeros(DRAIN_RECORDS)
    FK.record_drain(ready_at, until, 0, 4, 10.0, 12.0, drain_end, replicas)
    # replicas 0 and 1 serve: the first ended record (slot 1) takes them until 22 s
    assert (drain_end[1], replicas[1], drain_end[0], replicas[0]) == (22.0, 2.0, 30.0, 0.0)
    FK.record_drain(ready_at, until, 2, 4, 10.0, 12.0, drain_end, replicas)  # none serving
    assert np.count_nonzero(np.isfinite(drain_end)) == 2
    drain_end[:] = np.arange(DRAIN_RECORDS) + 100.0  # every record still drains
    replicas[:] = 1.0
    FK.record_drain(ready_at, until, 0, 1, 10.0, 500.0, drain_end, replicas)
    # folded into the record ending last, which now ends with the new drain
    assert (drain_end[-1], replicas[-1], replicas[:-1].sum()) == (510.0, 2.0, DRAIN_RECORDS - 1)


@pytest.mark.parametrize(
    "delay",
    [
        Delay(kind="fixed", mean_s=30.0),
        Delay(kind="exponential", mean_s=2.0),
        Delay(kind="lognormal", mean_s=90.0, cv=0.3),
        Delay(kind="lognormal", mean_s=60.0, cv=0.0),
        Delay(kind="exponential", mean_s=0.0),
    ],
    ids=["fixed", "exponential", "lognormal", "lognormal-cv0", "zero-mean"],
)
def test_a_sampler_draws_what_delay_sample_draws(delay: Delay) -> None:
    by_sample, by_sampler = np.random.default_rng(7), np.random.default_rng(7)
    draw = sampler(delay)
    assert [delay.sample(by_sample) for _ in range(50)] == [draw(by_sampler) for _ in range(50)]
    assert by_sample.bit_generator.state == by_sampler.bit_generator.state
