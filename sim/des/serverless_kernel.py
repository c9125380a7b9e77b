"""The serverless endpoint's per-request hot path, compiled (numba).

`SimServerlessPool` keeps its whole state in flat arrays (described below) so that
catching up to an arrival and admitting it, about a microsecond of interpreted
Python a request, runs as machine code; the rules are the pool's (see
`sim.des.serverless`) and the results are the ones the interpreted loop gave,
bit for bit (same operations on the same float64 values, in the same order).

State, all owned by the pool:

* `counts` (int64, indices `N_*`): instances, busy, starting, the event sequence
  number, the last instance id, provisioned concurrency owed, sizes and heads of
  the queues below, the cold-start draws used and available, and what one call
  produced (served, dropped, latencies, log events, why it stopped).
* `areas` (float64, `F_*`): the time the areas were last brought up to, the
  instance-, busy-, provisioned- and billed busy-seconds, and the earliest
  pending transition.
* `heap` (float64 rows `time, seq, kind, instance, request`): completions, cold
  starts and provisioned instances becoming ready, a binary heap on (time, seq);
  seq is unique, so it pops in the order Python's `heapq` popped the tuples.
* `expiries` (float64 rows `time, instance, generation`): a FIFO ring of keep-alive
  expiries (keep-alive is one constant, so they come due in the order pushed).
* `per_id` (int64, rows `ROW_*`, indexed by instance id; column 0 unused): the
  idle generation of on-demand instances (-1: none), provisioned and
  still-initialising flags, and two stacks stored by position: idle on-demand
  instances in ascending id (newest last) and idle provisioned instances.

A call stops early, with `counts[N_STOP]` saying why, when a buffer is full or the
cold-start draws run out; the pool grows or refills it and calls again from the
request it returns. Stopping happens between two complete steps, and a step
already applied is never repeated (catching up to a time and bringing the areas
up to it are idempotent), so a resumed call continues exactly where it stopped.
"""

from __future__ import annotations

import numba
import numpy as np

# counts
N_INSTANCES, N_BUSY, N_STARTING, N_SEQ, N_IDS, N_OWED = 0, 1, 2, 3, 4, 5
N_HEAP, N_EXP_HEAD, N_EXP, N_IDLE, N_IDLE_PC = 6, 7, 8, 9, 10
N_COLD_USED, N_COLD_DRAWN, N_COLD_STARTS, N_THROTTLED = 11, 12, 13, 14
N_SERVED, N_DROPPED, N_LATENCIES, N_EVENTS, N_STOP = 15, 16, 17, 18, 19
N_FIELDS = 20
# areas
F_AREA_T, F_INSTANCE_S, F_BUSY_S, F_PROVISIONED_S, F_BILLED_BUSY_S, F_NEXT_S = 0, 1, 2, 3, 4, 5
F_FIELDS = 6
# per_id rows
ROW_GEN, ROW_PC, ROW_PC_INIT, ROW_IDLE, ROW_IDLE_PC = 0, 1, 2, 3, 4
ID_ROWS = 5
# heap entry kinds
DONE, WARM, PC_READY = 0, 1, 2
# log event codes (`SimServerlessPool` formats them)
EV_EXPIRE, EV_FINISH, EV_WARM_START, EV_COLD_START, EV_DROP = 0, 1, 2, 3, 4
# why a call stopped
STOP_DONE, STOP_ROOM, STOP_COLD = 0, 1, 2
# request outcomes (`sim.des.requests`)
_SERVED, _DROPPED = 1, 2


@numba.njit(cache=True, error_model="numpy")
def _before(heap: np.ndarray, i: int, j: int) -> bool:
    """Whether heap row i orders before row j: by time, then sequence number."""
    return heap[i, 0] < heap[j, 0] or (heap[i, 0] == heap[j, 0] and heap[i, 1] < heap[j, 1])


@numba.njit(cache=True, error_model="numpy")
def _swap(heap: np.ndarray, i: int, j: int) -> None:
    for c in range(5):
        heap[i, c], heap[j, c] = heap[j, c], heap[i, c]


@numba.njit(cache=True, error_model="numpy")
def heap_push(
    heap: np.ndarray, size: int, time_s: float, seq: int, kind: int, instance: int, request: int
) -> int:
    """Push one entry (room for it is the caller's check); return the new size."""
    heap[size, 0] = time_s
    heap[size, 1] = seq
    heap[size, 2] = kind
    heap[size, 3] = instance
    heap[size, 4] = request
    child = size
    while child > 0:
        parent = (child - 1) >> 1
        if not _before(heap, child, parent):
            break
        _swap(heap, child, parent)
        child = parent
    return size + 1


@numba.njit(cache=True, error_model="numpy")
def heap_pop(heap: np.ndarray, size: int) -> int:
    """Remove the first entry (read it before); return the new size."""
    size -= 1
    if size == 0:
        return 0
    for c in range(5):
        heap[0, c] = heap[size, c]
    parent = 0
    while True:
        child = 2 * parent + 1
        if child >= size:
            break
        if child + 1 < size and _before(heap, child + 1, child):
            child += 1
        if not _before(heap, child, parent):
            break
        _swap(heap, child, parent)
        parent = child
    return size


@numba.njit(cache=True, error_model="numpy")
def admit(
    first: int,
    stop: int,
    at_s: float,
    at_arrival: bool,
    desired: int,
    limit: int,
    keep_alive_s: float,
    arrival: np.ndarray,
    start_at: np.ndarray,
    latency_at: np.ndarray,
    outcome: np.ndarray,
    service: np.ndarray,
    billed: np.ndarray,
    cold: np.ndarray,
    counts: np.ndarray,
    areas: np.ndarray,
    heap: np.ndarray,
    expiries: np.ndarray,
    per_id: np.ndarray,
    latencies: np.ndarray,
    events: np.ndarray,
    log_on: bool,
) -> int:
    """Catch up to each arrival and start (or throttle) requests `first`..`stop - 1`.

    Each request arrives at its arrival time when `at_arrival`, else at `at_s`;
    with no request (`first == stop`) the pool only catches up to `at_s` (areas
    not brought up to it). A catch-up step is a completion, a cold start or a
    provisioned instance becoming ready, or a keep-alive expiry, applied in time
    order (an expiry first at a tie) with the time-weighted areas brought up to
    it; then the arrival takes an idle provisioned instance, else the newest idle
    on-demand one, else a new instance (cold start) under max concurrency (`limit`),
    else it is throttled. Completed requests' latencies go to `latencies`, log
    events (when `log_on`) to `events` rows `time, code, instance, request`, both
    from position 0 (their counts in `counts`).

    Returns:
        The first request not yet admitted (`stop` when all were; see `N_STOP`).
    """
    inf = np.inf
    gen, is_pc, is_pc_init = per_id[ROW_GEN], per_id[ROW_PC], per_id[ROW_PC_INIT]
    idle, idle_pc = per_id[ROW_IDLE], per_id[ROW_IDLE_PC]
    id_room = per_id.shape[1] - 1  # the highest id the arrays hold
    exp_cap = expiries.shape[0]
    heap_cap = heap.shape[0]
    lat_cap = latencies.shape[0]
    ev_cap = events.shape[0] if log_on else 1 << 62

    instances, busy, starting = counts[N_INSTANCES], counts[N_BUSY], counts[N_STARTING]
    seq, ids, owed = counts[N_SEQ], counts[N_IDS], counts[N_OWED]
    heap_n, exp_head, exp_n = counts[N_HEAP], counts[N_EXP_HEAD], counts[N_EXP]
    idle_n, idle_pc_n = counts[N_IDLE], counts[N_IDLE_PC]
    cold_used, cold_drawn = counts[N_COLD_USED], counts[N_COLD_DRAWN]
    cold_starts, throttled = counts[N_COLD_STARTS], counts[N_THROTTLED]
    area_t, instance_s, busy_s = areas[F_AREA_T], areas[F_INSTANCE_S], areas[F_BUSY_S]
    provisioned_s, billed_busy_s = areas[F_PROVISIONED_S], areas[F_BILLED_BUSY_S]
    served = dropped = lat_n = ev_n = 0
    why = STOP_DONE

    heap_s = heap[0, 0] if heap_n else inf  # the earliest time in each queue
    expiry_s = expiries[exp_head, 0] if exp_n else inf
    request = first
    while True:
        now_s = arrival[request] if (at_arrival and request < stop) else at_s
        while True:  # catch up to now_s
            if expiry_s <= heap_s:
                if expiry_s > now_s:
                    break
                if ev_n >= ev_cap:
                    why = STOP_ROOM
                    break
                expire_s = expiries[exp_head, 0]
                instance = int(expiries[exp_head, 1])
                generation = int(expiries[exp_head, 2])
                exp_head = exp_head + 1 if exp_head + 1 < exp_cap else 0
                exp_n -= 1
                expiry_s = expiries[exp_head, 0] if exp_n else inf
                if gen[instance] == generation:  # idle ever since
                    elapsed = expire_s - area_t
                    if elapsed > 0.0:
                        instance_s += instances * elapsed
                        busy_s += busy * elapsed
                        provisioned_s += desired * elapsed
                        area_t = expire_s
                    at = np.searchsorted(idle[:idle_n], instance)
                    idle_n -= 1
                    for k in range(at, idle_n):
                        idle[k] = idle[k + 1]
                    gen[instance] = -1
                    instances -= 1
                    if log_on:
                        events[ev_n, 0] = expire_s
                        events[ev_n, 1] = EV_EXPIRE
                        events[ev_n, 2] = instance
                        events[ev_n, 3] = -1
                        ev_n += 1
                continue
            if heap_s > now_s:
                break
            if exp_n >= exp_cap or lat_n >= lat_cap or ev_n >= ev_cap:
                why = STOP_ROOM
                break
            time_s, kind = heap[0, 0], int(heap[0, 2])
            instance, done = int(heap[0, 3]), int(heap[0, 4])
            heap_n = heap_pop(heap, heap_n)
            heap_s = heap[0, 0] if heap_n else inf
            elapsed = time_s - area_t
            if elapsed > 0.0:
                instance_s += instances * elapsed
                busy_s += busy * elapsed
                provisioned_s += desired * elapsed
                area_t = time_s
            if kind == DONE:
                busy -= 1
                billed_busy_s += billed[done]
                latency = time_s - arrival[done]
                latency_at[done] = latency
                outcome[done] = _SERVED
                served += 1
                latencies[lat_n] = latency
                lat_n += 1
                if log_on:
                    events[ev_n, 0] = time_s
                    events[ev_n, 1] = EV_FINISH
                    events[ev_n, 2] = instance
                    events[ev_n, 3] = done
                    ev_n += 1
                if is_pc[instance]:
                    idle_pc[idle_pc_n] = instance
                    idle_pc_n += 1
                    continue
                if owed:  # provisioned concurrency waiting for room under max
                    owed -= 1
                    gen[instance] += 1  # no expiry of its may match
                    is_pc[instance] = 1
                    idle_pc[idle_pc_n] = instance
                    idle_pc_n += 1
                    continue
                generation = gen[instance] + 1
                gen[instance] = generation
                at = np.searchsorted(idle[:idle_n], instance, side="right")
                for k in range(idle_n, at, -1):
                    idle[k] = idle[k - 1]
                idle[at] = instance
                idle_n += 1
                expire_s = time_s + keep_alive_s
                if exp_n == 0:
                    expiry_s = expire_s
                tail = exp_head + exp_n
                if tail >= exp_cap:
                    tail -= exp_cap
                expiries[tail, 0] = expire_s
                expiries[tail, 1] = instance
                expiries[tail, 2] = generation
                exp_n += 1
            elif kind == WARM:
                starting -= 1
            elif is_pc_init[instance]:  # PC_READY, not cancelled meanwhile
                is_pc_init[instance] = 0
                starting -= 1
                idle_pc[idle_pc_n] = instance
                idle_pc_n += 1
        if why != STOP_DONE or request >= stop:
            break
        if heap_n + 2 > heap_cap or ids + 1 > id_room or ev_n >= ev_cap:
            why = STOP_ROOM
            break
        if not idle_pc_n and not idle_n and instances < limit and cold_used >= cold_drawn:
            why = STOP_COLD
            break
        elapsed = now_s - area_t
        if elapsed > 0.0:
            instance_s += instances * elapsed
            busy_s += busy * elapsed
            provisioned_s += desired * elapsed
            area_t = now_s
        code, start_s = EV_WARM_START, now_s
        if idle_pc_n:
            idle_pc_n -= 1
            instance = idle_pc[idle_pc_n]
            start_s = now_s + 0.0  # as a cold start adds its delay (-0.0 + 0.0 is 0.0)
        elif idle_n:
            idle_n -= 1
            instance = idle[idle_n]
            gen[instance] += 1  # cancels its pending expiry
            start_s = now_s + 0.0
        elif instances < limit:
            ids += 1
            instances += 1
            instance = ids
            gen[instance] = 0
            start_s = now_s + cold[cold_used]
            cold_used += 1
            cold_starts += 1
            starting += 1
            seq += 1
            heap_n = heap_push(heap, heap_n, start_s, seq, WARM, instance, -1)
            if start_s < heap_s:
                heap_s = start_s
            code = EV_COLD_START
        else:
            throttled += 1
            outcome[request] = _DROPPED
            dropped += 1
            instance = -1
            code = EV_DROP
        if log_on:
            events[ev_n, 0] = now_s
            events[ev_n, 1] = code
            events[ev_n, 2] = instance
            events[ev_n, 3] = request
            ev_n += 1
        if code != EV_DROP:
            busy += 1
            start_at[request] = start_s
            seq += 1
            done_s = start_s + service[request]
            heap_n = heap_push(heap, heap_n, done_s, seq, DONE, instance, request)
            if done_s < heap_s:
                heap_s = done_s
        request += 1
        if request >= stop:
            break

    counts[N_INSTANCES], counts[N_BUSY], counts[N_STARTING] = instances, busy, starting
    counts[N_SEQ], counts[N_IDS], counts[N_OWED] = seq, ids, owed
    counts[N_HEAP], counts[N_EXP_HEAD], counts[N_EXP] = heap_n, exp_head, exp_n
    counts[N_IDLE], counts[N_IDLE_PC] = idle_n, idle_pc_n
    counts[N_COLD_USED], counts[N_COLD_DRAWN] = cold_used, cold_drawn
    counts[N_COLD_STARTS], counts[N_THROTTLED] = cold_starts, throttled
    counts[N_SERVED], counts[N_DROPPED] = served, dropped
    counts[N_LATENCIES], counts[N_EVENTS], counts[N_STOP] = lat_n, ev_n, why
    areas[F_AREA_T], areas[F_INSTANCE_S], areas[F_BUSY_S] = area_t, instance_s, busy_s
    areas[F_PROVISIONED_S], areas[F_BILLED_BUSY_S] = provisioned_s, billed_busy_s
    areas[F_NEXT_S] = min(heap_s, expiry_s)
    return request
