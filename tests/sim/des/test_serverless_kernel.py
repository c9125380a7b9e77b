"""The compiled serverless hot path: its heap, its cold-start draws, its growing buffers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sim.capacity.distributions import Delay, fixed
from sim.capacity.pools import ServerlessEndpoint
from sim.capacity.service import TokenService
from sim.des import DesEngine
from sim.des.serverless_kernel import heap_pop, heap_push
from sim.replay import FixedPolicy

ONE_SECOND_PER_100_TOKENS = TokenService(
    prefill_s_per_1k_tokens=0.0, decode_s_per_token=0.01, max_batch=1, batch_slowdown=0.0
)


@pytest.mark.parametrize(
    "delay",
    [
        Delay(kind="fixed", mean_s=2.0),
        Delay(kind="exponential", mean_s=0.253),
        Delay(kind="lognormal", mean_s=12.0, cv=0.3),
        Delay(kind="lognormal", mean_s=12.0, cv=0.0),
        Delay(kind="exponential", mean_s=0.0),
    ],
    ids=["fixed", "exponential", "lognormal", "lognormal-cv0", "zero"],
)
def test_sample_many_gives_the_draws_sample_gives(delay: Delay) -> None:
    """The pool draws cold starts in chunks; the values must be those of one draw at a
    time from the same stream (so a run does not depend on the chunk size)."""
    one_by_one = np.random.default_rng(11)
    chunked = np.random.default_rng(11)
    singles = [delay.sample(one_by_one) for _ in range(700)]
    chunks = np.concatenate([delay.sample_many(chunked, 7) for _ in range(100)])
    assert chunks.tolist() == singles


def test_heap_pops_by_time_then_sequence() -> None:
    """Ties in time are frequent (fixed delays): they must pop in sequence order, as
    Python's heapq popped the (time, seq, ...) tuples."""
    rng = np.random.default_rng(3)
    times = rng.integers(0, 20, 500).astype(float)
    seqs = rng.permutation(500)
    heap, size = np.zeros((500, 5)), 0
    for time_s, seq in zip(times.tolist(), seqs.tolist(), strict=True):
        size = heap_push(heap, size, time_s, seq, 0, seq + 1, -1)
    popped = []
    while size:
        popped.append((heap[0, 0], int(heap[0, 1]), int(heap[0, 3])))
        size = heap_pop(heap, size)
    pairs = zip(times.tolist(), seqs.tolist(), strict=True)
    assert popped == sorted((t, s, s + 1) for t, s in pairs)


def test_a_burst_past_every_buffer_and_the_concurrency_limit(
    make_scenario: Callable, make_trace: Callable
) -> None:
    """300 requests at 1 s against max concurrency 200 (the kernel's buffers start at
    64 and grow): 200 cold starts on instances 1..200, 100 throttled, all done at 3 s.
    Ten more at 5 s take the newest idle instances (200 down to 191) warm, finish at
    6 s and so expire at 16 s; the other 190 expire at 13 s, in the order they idled."""
    pool = ServerlessEndpoint(
        service=ONE_SECOND_PER_100_TOKENS, cold_start_s=fixed(1.0), keep_alive_s=10.0,
        max_replicas=200,
    )  # fmt: skip
    trace = make_trace([1.0] * 300 + [5.0] * 10, 60.0, tokens=100)
    run = DesEngine(record_log=True).simulate(make_scenario(pool), trace, FixedPolicy(0), seed=0)
    log = [(round(e.time_s, 6), e.kind, e.detail) for e in run.log if e.pool == pool.name]
    starts = [e for e in log if e[1] in ("cold_start", "warm_start", "drop")]
    assert starts[:200] == [(1.0, "cold_start", f"req={r} instance={r + 1}") for r in range(200)]
    assert starts[200:300] == [(1.0, "drop", f"req={r} throttled") for r in range(200, 300)]
    assert starts[300:] == [
        (5.0, "warm_start", f"req={300 + k} instance={200 - k}") for k in range(10)
    ]
    expiries = [e for e in log if e[1] == "expire"]
    assert expiries == [(13.0, "expire", f"instance={i}") for i in range(1, 191)] + [
        (16.0, "expire", f"instance={200 - k}") for k in range(10)
    ]
    result = run.result
    assert (result.served, result.dropped, result.cold_starts) == (210, 100, 200)
    assert run.pools[pool.name].throttled == 100
    assert sorted(set(run.requests.latency_s[:200].tolist())) == [2.0]
    assert sorted(set(run.requests.latency_s[300:].tolist())) == [1.0]
