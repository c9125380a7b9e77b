"""Compiled scans over the fleet's replica arrays (`sim.fluid.fleet.Fleet`).

A fleet change touches a few replicas, but finding them means a pass over all the
desired ones: the replicas still waiting for a model load, the order in which the
DES removes replicas, the ready and pending counts. In numpy each of these is half
a dozen array operations of about a microsecond each, paid at every change (a
14-day predictive run makes 5,431); here each is one call. Random draws stay in
Python, in the order the DES makes them (`Fleet`'s docstring).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.workload.model import FloatArray

#: node_seq below this bound keeps (stage, -seq) apart in one int64 key
_SEQ_SPAN = np.int64(1) << np.int64(40)


@numba.njit(cache=True, error_model="numpy")
def waiting_order(
    loaded: np.ndarray,
    node_up_s: FloatArray,
    node_seq: np.ndarray,
    desired: int,
    per_node: int,
    up_by: float,
    out: np.ndarray,
) -> int:
    """Replicas [0, desired) without a model load drawn for good whose node is up by
    `up_by`, into `out` in the order the DES draws their loads: by node up time,
    then node launch order, then index. Returns how many."""
    n = 0
    for r in range(desired):
        if loaded[r]:
            continue
        node = r // per_node
        up = node_up_s[node]
        if up > up_by:
            continue
        # insertion by (up, seq, r): few replicas wait at once
        seq = node_seq[node]
        j = n
        while j > 0:
            prev = out[j - 1]
            prev_node = prev // per_node
            prev_up = node_up_s[prev_node]
            if prev_up < up or (prev_up == up and node_seq[prev_node] <= seq):
                break
            out[j] = prev
            j -= 1
        out[j] = r
        n += 1
    return n


@numba.njit(cache=True, error_model="numpy")
def removal_order(
    node_up_s: FloatArray,
    ready_at: FloatArray,
    node_seq: np.ndarray,
    desired: int,
    now: float,
    count: int,
    out: np.ndarray,
) -> None:
    """Into `out[:count]`, the first `count` replicas of [0, desired) in the order the
    DES removes replicas with one replica per node: pending on a node still booting,
    then pending while loading, then serving; newest node (highest `node_seq`) first
    within each. Each replica's rank key is distinct (node_seq is), so the order is
    one; a scale-in removes a few replicas, so they are picked one by one."""
    keys = np.empty(desired, dtype=np.int64)
    for r in range(desired):
        stage = 0 if node_up_s[r] > now else (1 if ready_at[r] > now else 2)
        keys[r] = stage * _SEQ_SPAN - node_seq[r]
    taken = np.zeros(desired, dtype=np.bool_)
    for i in range(count):
        best = -1
        for r in range(desired):
            if not taken[r] and (best < 0 or keys[r] < keys[best]):
                best = r
        taken[best] = True
        out[i] = best


@numba.njit(cache=True, error_model="numpy")
def ready_pending(
    ready_at: FloatArray, until: FloatArray, desired: int, now: float
) -> tuple[int, int]:
    """(serving, pending) among replicas [0, desired) at `now`: serving are ready and
    on a live node, pending not yet ready."""
    ready = 0
    pending = 0
    for r in range(desired):
        at = ready_at[r]
        if at > now:
            pending += 1
        elif until[r] > now:
            ready += 1
    return ready, pending


@numba.njit(cache=True, error_model="numpy")
def record_drain(
    ready_at: FloatArray,
    until: FloatArray,
    first: int,
    last: int,
    now: float,
    drain_s: float,
    drain_end: FloatArray,
    drain_replicas: FloatArray,
) -> None:
    """Record the serving replicas among [first, last), removed at `now`, as draining
    until `now + drain_s`: in the first free record (one whose drain has ended), or,
    when every record still drains, folded into the one ending last, so no drained
    replica is lost."""
    count = 0
    for r in range(first, last):
        if ready_at[r] <= now and until[r] > now:
            count += 1
    if count == 0:
        return
    end = now + drain_s
    for slot in range(drain_end.shape[0]):
        if drain_end[slot] <= now:
            drain_end[slot] = end
            drain_replicas[slot] = count
            return
    slot = int(np.argmax(drain_end))
    drain_end[slot] = max(drain_end[slot], end)
    drain_replicas[slot] += count


@numba.njit(cache=True, error_model="numpy")
def drain_s(in_service: float, ready: int, done_ring: FloatArray, now: int) -> float:
    """Expected time a replica drained now keeps serving (its node stays billed).

    The SimPy engine removes idle replicas first, then the least busy ones, which
    finish their requests. With least-loaded routing the replicas hold about
    `in_service / ready` requests each; the least busy holds the floor of it (none:
    idle, no drain). Its requests' remaining times follow the pool's scheduled
    completions (`done_ring`), so the drain is the median of the largest of them:
    the first second by which a share 0.5^(1 / b) of the pool's requests is done.
    Compiled: a scale-in reads it, and it walks the ring a second at a time.
    """
    if ready <= 0 or in_service <= 0.0:
        return 0.0
    held = math.floor(in_service / ready)
    if held <= 0:
        return 0.0
    target = in_service * 0.5 ** (1.0 / held)
    d_len = done_ring.shape[0]
    done = 0.0
    for ahead in range(d_len):
        done += done_ring[(now + ahead) % d_len]
        if done >= target:
            return float(ahead) + 0.5
    return float(d_len)
