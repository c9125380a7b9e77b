"""The compiled per-second dynamics of the fluid engine (numba).

One call advances the serving pool over the seconds of one decision interval:

1. Ready replicas per second follow from each replica's ready time and its node's
   death time (a difference array over the interval).
2. Occupancy (busy batch slots, the utilisation the policy observes, defined as
   the SimPy engine defines it) is exact for the fluid: requests start uniformly
   within their second and hold a slot for their service time at the batch they
   start into (mean occupancy per replica plus half a slot); each start schedules
   its completion in a ring (`occupy`), so a slot frees when its request ends, not
   at an exponential rate. With a trace's tokens the service times are the
   requests' own (`sim.fluid.work`), else the block's strata.
3. A FIFO backlog of per-second cohorts: each second's arrivals join the queue,
   the free slots plus this second's completions take them oldest first, cohorts
   older than the queue timeout are dropped. A cohort served `g` seconds after it
   arrived waited `g` seconds.
4. Without per-request work and without a backlog, a request also waits the
   stationary M/M/c wait (Erlang C with c = ready replicas x max_batch slots, at
   the smoothed arrival rate), scaled by the Allen-Cunneen factor (ca^2 + cs^2) / 2.
   A small pool near saturation takes that rate from a long window; the queue
   never does (see RATE_RELAXATIONS): arrivals are each second's own.
5. Each served request's latency is wait + service: its own service time, or the
   mixture over service strata (and over the exponential wait, by four quantile
   points), added to a log-spaced histogram; SLO attainment is computed exactly
   from the same mixture.

Arrays are preallocated by the engine; this module holds no state of its own. The
per-cohort pieces (Erlang C, slot occupancy) are in `sim.fluid.slots`; the span of
intervals a policy has nothing to decide in, one call, in `sim.fluid.quiet_kernel`.
numba's on-disk cache checks only the source file of the function it compiled: after
editing a module `advance` calls into (`slots`, `latency`, `serverless_kernel`),
remove `sim/fluid/__pycache__/*.nb*` (or touch this file and quiet_kernel.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from sim.fluid.latency import (
    EXP_QUANTILES,
    HIST_BINS,
    hist_quantile,
    record_mixture,
    record_requests,
)
from sim.fluid.serverless_kernel import sv_second
from sim.fluid.slots import erlang_c_fast, occupy, strata_means
from sim.workload.model import FloatArray

# params indices
P_MAX_BATCH = 0
P_SLOWDOWN_PER_SLOT = 1
P_SLO_S = 2
P_TIMEOUT_S = 3
P_AC_FACTOR = 4
P_RHO_MAX = 5
P_BLOCK_S = 6
P_GLOBAL_BATCH1_S = 7
P_QUEUE_SMOOTHED = 8  # 1: the queue takes the smoothed rate, 0: the raw per-second counts
P_COHORT_WORK = 9  # 1: the seconds' own requests are known (`offsets`, `base_s`, `slope_s`)
P_SPILL_THRESHOLD = 10  # primary queue length from which requests spill (`spill_queue_threshold`)
P_NO_LATENCIES = 11  # 1: no latency histogram (the run's latencies are NaN; bills, attainment kept)
N_PARAMS = 12

# state indices (persist across calls)
S_BACKLOG = 0
S_OLDEST = 1
S_IN_SERVICE = 2  # requests holding a batch slot at the start of the current second
S_WIN_LO = 3  # the long rate window [lo, hi) of a small pool near saturation (strata only)
S_WIN_HI = 4
S_WIN_SUM = 5  # arrivals inside it
S_RATE = 6  # the last second's rate (of the M/M/c wait) and mean service time
S_SERVICE = 7
N_STATE = 8

# out indices (overwritten each call)
O_ARRIVALS = 0
O_SERVED = 1
O_DROPPED = 2
O_ATTAINED = 3
O_BUSY_SLOT_S = 4
O_READY_SLOT_S = 5
O_READY_REPLICA_S = 6
O_QUEUE_END = 7
O_P95_S = 8
O_READY_END = 9
O_SERVED_LAT_S = 10
O_READY_AT_T1 = 11
O_PENDING_AT_T1 = 12
O_QUEUE_AT_T1 = 13  # the queue the policy reads at t1 (after replicas ready at t1 took some)
N_OUT = 14

# columns of the engine's series rows (one row per interval, written at its end)
R_TIME = 0
R_READY = 1
R_PENDING = 2
R_P95 = 3
N_ROW = 4


# Without per-request work the stationary M/M/c wait needs the rate behind the
# counts. A small pool near saturation relaxes over S / (c (1 - rho)^2) seconds,
# far longer than the centred 31 s window, whose noise then swings rho across 1.
# Its rate is the mean over a centred window of RATE_RELAXATIONS relaxation times
# on each side (at most RATE_HALF_MAX_S): the noise of 1 - rho is then about
# sqrt(rho / (4 x RATE_RELAXATIONS)), 7 %.
# That window only sets the wait: the queue always takes the second's own arrivals
# (it once took the window's mean, which fed a pool scaled in over a traffic gap
# hours of requests that never arrived). While the window's rate keeps the pool
# stable, the second's arrivals start at once with the stationary wait instead of
# queueing behind their own Poisson noise (which that wait already accounts for),
# unless the local 31 s count exceeds the pool's throughput by more than
# LOCAL_OVERLOAD_SDS Poisson deviations: then the window is not the local rate and
# the deterministic queue takes over.
RATE_RELAXATIONS = 50.0
RATE_HALF_MAX_S = 43_200
RATE_HALF_MIN_S = 15  # the centred window's half width (FluidSettings.rate_window_s)
LOCAL_OVERLOAD_SDS = 5.0


@numba.njit(cache=True, error_model="numpy")
def advance(
    t0: int,
    t1: int,
    row: int,
    desired: int,
    arrivals: FloatArray,
    arrivals_before: FloatArray,
    lam: FloatArray,
    ready_at: FloatArray,
    until: FloatArray,
    drain_end: FloatArray,
    drain_replicas: FloatArray,
    blocks: FloatArray,
    offsets: NDArray[np.int64],
    base_s: FloatArray,
    slope_s: FloatArray,
    params: FloatArray,
    state: FloatArray,
    ring: FloatArray,
    done_ring: FloatArray,
    done_busy_ring: FloatArray,
    hist: FloatArray,
    ihist: FloatArray,
    out: FloatArray,
    totals: FloatArray,
    series: FloatArray,
    shares: FloatArray,
    spill: bool,
    spill_service_s: float,
    spill_strata: FloatArray,
    vp: FloatArray,
    vs: FloatArray,
    dq_t: FloatArray,
    dq_v: FloatArray,
    cw: FloatArray,
) -> tuple[float, int, int, int, float]:
    """Advance seconds [t0, t1) of one interval; results in `out` (added to `totals`),
    `hist` and `state`.

    The interval's series row (`series[row]`, columns R_*: t1, ready and pending
    replicas at t1, p95 latency) and its share of requests within the SLO
    (`shares[row]`, left as it is when none finished) are written here, and the
    reading a policy observes at t1 is returned: (utilisation, NaN without ready
    slots; queue length; ready; pending; p95 latency, NaN when none finished), so
    the engine's per-interval Python only passes it on.

    With `spill`, arrivals that find no free slot go to the serverless spillover
    endpoint (state `vp`/`vs`/`dq_*`/`cw`, see `serverless_kernel`) while it admits them.
    Replicas drained by a scale-in at or before t0 (`drain_replicas` until
    `drain_end`, see `Fleet.drain_end`) keep their slots in O_READY_SLOT_S, as the
    SimPy engine counts a draining replica's slots until its last request ends.
    """
    max_batch = int(params[P_MAX_BATCH])
    per_slot = params[P_SLOWDOWN_PER_SLOT]
    slo_s = params[P_SLO_S]
    timeout = math.ceil(params[P_TIMEOUT_S])
    ac = params[P_AC_FACTOR]
    rho_max = params[P_RHO_MAX]
    smoothed = params[P_QUEUE_SMOOTHED] > 0.0
    spill_threshold = params[P_SPILL_THRESHOLD]
    own_work = params[P_COHORT_WORK] > 0.0
    histogram = params[P_NO_LATENCIES] == 0.0
    q_len = ring.shape[0]
    exp_q = EXP_QUANTILES
    block_s = int(params[P_BLOCK_S])
    global_batch1_s = params[P_GLOBAL_BATCH1_S]
    n_strata = blocks.shape[2]
    blk = -1
    strata = blocks[0]
    mean_base = 0.0
    mean_slope = 0.0

    n = t1 - t0
    events = np.zeros(n + 1)
    ready = 0
    ready_t1 = 0
    fresh_t1 = 0  # ready by t1 but not serving in any second of [t0, t1): a in (t1 - 1, t1]
    pending_t1 = 0
    for j in range(desired):
        a = ready_at[j]
        e = until[j]
        if a <= t1 and e > t1:
            ready_t1 += 1
            if a > t1 - 1:
                fresh_t1 += 1
        elif a > t1:
            pending_t1 += 1
        if a >= t1 or e <= t0:
            continue
        lo = t0 if a <= t0 else math.ceil(a)
        hi = t1 if e >= t1 else math.ceil(e)
        if lo < hi:
            if lo == t0:
                ready += 1
            else:
                events[lo - t0] += 1.0
            events[hi - t0] -= 1.0
    # replicas still draining, per second of the interval (the share of it they drain)
    draining = np.zeros(n)
    for j in range(drain_end.shape[0]):
        e = drain_end[j]
        if e <= t0:
            continue
        hi = e if e < t1 else float(t1)
        for s in range(t0, math.ceil(hi)):
            draining[s - t0] += drain_replicas[j] * (min(hi, s + 1.0) - s)
    for i in range(out.shape[0]):
        out[i] = 0.0
    out[O_READY_AT_T1] = ready_t1
    out[O_PENDING_AT_T1] = pending_t1
    for i in range(HIST_BINS):
        ihist[i] = 0.0

    backlog = state[S_BACKLOG]
    oldest = int(state[S_OLDEST])
    in_service = state[S_IN_SERVICE]
    win_lo = int(state[S_WIN_LO])
    win_hi = int(state[S_WIN_HI])
    win_sum = state[S_WIN_SUM]
    n_all = arrivals.shape[0]
    exact_window = arrivals_before.shape[0] == n_all + 1
    rate_prev = state[S_RATE]
    service_prev = state[S_SERVICE]
    d_len = done_ring.shape[0]
    last_lq = 0.0
    for s in range(t0, t1):
        if s > t0:
            ready += int(events[s - t0])
        slots = ready * max_batch
        lam_s = lam[s]
        if s // block_s != blk:
            blk = s // block_s
            strata = blocks[blk]
            mean_base, mean_slope = strata_means(strata)
        s_batch1 = mean_base + mean_slope
        arriving = lam_s if smoothed else arrivals[s]
        stationary = False  # the wait's rate comes from the long window
        if not own_work:
            # the rate of a small pool near saturation: a long centred window, slid
            # incrementally (its half width moves with the pool's relaxation time)
            half = 0
            if slots > 0 and service_prev > 0.0:
                rho_hat = min(rate_prev * service_prev / slots, 0.99)
                h = RATE_RELAXATIONS * service_prev / (slots * (1.0 - rho_hat) ** 2)
                if h > RATE_HALF_MIN_S:
                    half = int(min(h, RATE_HALF_MAX_S))
            if half > 0:
                want_lo = s - half if s > half else 0
                want_hi = s + half + 1 if s + half + 1 < n_all else n_all
                if exact_window:  # the same sum in O(1) (`prepared.window_sums`)
                    win_lo = want_lo
                    win_hi = want_hi
                    win_sum = arrivals_before[win_hi] - arrivals_before[win_lo]
                while win_hi < want_hi:
                    win_sum += arrivals[win_hi]
                    win_hi += 1
                while win_hi > want_hi:
                    win_hi -= 1
                    win_sum -= arrivals[win_hi]
                while win_lo < want_lo:
                    win_sum -= arrivals[win_lo]
                    win_lo += 1
                while win_lo > want_lo:
                    win_lo -= 1
                    win_sum += arrivals[win_lo]
                lam_s = max(win_sum, 0.0) / (win_hi - win_lo)
                stationary = True
            rate_prev = lam_s
        backlogged = backlog > 1e-9
        # A request's service time is set by the batch it starts into (as in the DES):
        # the occupancy of the least-loaded replica plus itself, on average the mean
        # occupancy plus about half a slot (measured against the DES; docs/engines.md).
        if ready > 0:
            batch = in_service / ready + 0.5
            batch = min(max(batch, 1.0), float(max_batch))
        else:
            batch = 1.0
        step = 1.0 + per_slot * (batch - 1.0)
        service_s = mean_base + mean_slope * step  # of the requests starting now
        service_prev = service_s
        # slots free now plus those freed by this second's completions (known exactly:
        # each started cohort scheduled its own), so a burst fills idle slots at once;
        # a slot whose request ends within the second it started serves again
        di = s % d_len
        done = done_ring[di]
        done_busy = done_busy_ring[di]
        done_ring[di] = 0.0
        done_busy_ring[di] = 0.0
        avail = slots - in_service + done
        if avail < 0.0:
            avail = 0.0
        same = 0.0
        for k in range(n_strata):
            d_k = strata[1, k] + strata[2, k] * step
            if d_k < 1.0:
                same += strata[0, k] * (1.0 - d_k)
        if same > 0.0:
            avail /= 1.0 - min(same, 0.9)
        # cohorts that waited past the timeout leave unserved
        while oldest < s - timeout:
            idx = oldest % q_len
            out[O_DROPPED] += ring[idx]
            backlog -= ring[idx]
            ring[idx] = 0.0
            oldest += 1
        if backlog <= 1e-9:
            backlog = 0.0
            oldest = s
        ring[s % q_len] += arriving
        backlog += arriving
        out[O_ARRIVALS] += arriving
        # stationary M/M/c wait (only while no deterministic backlog exists), at the
        # utilisation the smoothed arrival rate would bring with the new requests' size
        c_wait = 0.0
        theta = 1.0
        rho = 0.0
        last_lq = 0.0
        if not own_work and not backlogged and slots > 0 and lam_s > 0.0:
            rho = min(lam_s * service_s / slots, rho_max)
            c_wait = erlang_c_fast(slots, rho * slots)
            theta = slots / service_s * (1.0 - rho) / ac
            last_lq = c_wait * rho / (1.0 - rho)
            if c_wait < 1e-7:
                c_wait = 0.0
        served = 0.0
        started_busy = 0.0
        started_joined = 0.0
        # older cohorts first (FIFO): they waited s - arrival second
        while oldest < s and avail > 1e-12:
            idx = oldest % q_len
            m = ring[idx]
            if m > 0.0:
                x = m if m < avail else avail
                lo, hi = offsets[oldest], offsets[oldest + 1]
                if hi > lo:
                    att, lat = record_requests(
                        x, float(s - oldest), 0.0, 1.0, step, base_s, slope_s, lo, hi,
                        slo_s, ihist, exp_q, histogram,
                    )  # fmt: skip
                else:
                    att, lat = record_mixture(
                        x, float(s - oldest), 0.0, 1.0, step, strata, slo_s, ihist, exp_q,
                        histogram,
                    )  # fmt: skip
                out[O_ATTAINED] += att
                out[O_SERVED_LAT_S] += lat
                held, kept_on = occupy(
                    x, oldest, s, step, strata, offsets, base_s, slope_s, done_ring, done_busy_ring
                )
                started_busy += held
                started_joined += kept_on
                ring[idx] = m - x
                avail -= x
                served += x
                backlog -= x
            if ring[idx] <= 1e-12:
                ring[idx] = 0.0
                oldest += 1
            else:
                break
        # this second's arrivals: served now (with the M/M/c wait), spilled, or queued
        idx = s % q_len
        m = ring[idx]
        x = m if m < avail else avail
        if stationary and c_wait > 0.0 and x < m and lam_s * service_s < slots:
            # the stationary wait covers this second's noise (see RATE_RELAXATIONS)
            # while the local count stays within Poisson noise of the throughput
            window_s = 2.0 * RATE_HALF_MIN_S + 1.0
            capacity = slots / service_s * window_s
            if lam[s] * window_s <= capacity + LOCAL_OVERLOAD_SDS * math.sqrt(capacity):
                x = m
        if x < 0.0:
            x = 0.0
        leftover = m - x
        if spill:
            # the SimPy router's rule (`sim.des.router`): a request that finds no free
            # slot spills while the primary queue holds at least `threshold`; the
            # first `threshold - queued` of this second's leftover join the queue
            queued = backlog - m  # older cohorts still waiting
            keep = spill_threshold - queued
            spillable = leftover - keep if keep > 0.0 else leftover
            if spillable < 0.0:
                spillable = 0.0
            # the Erlang waiting share only while the pool is stable; an overloaded
            # pool's excess is the deterministic leftover, and what it starts found
            # a free slot (no wait). Of the requests that would wait, those that find
            # at least `threshold` queued spill: P(Q >= T | wait) = rho^T in M/M/c
            if lam_s * service_s >= slots:
                c_wait = 0.0
            waiting = c_wait * x * rho**spill_threshold
            admitted = sv_second(
                s,
                spillable + waiting,
                spill_service_s * s_batch1 / global_batch1_s,
                spill_strata,
                vp,
                vs,
                dq_t,
                dq_v,
                cw,
                ihist,
            )
            from_left = admitted if admitted < spillable else spillable
            from_wait = admitted - from_left
            leftover -= from_left
            backlog -= from_left
            if from_wait > 0.0:
                # the spilled waiters leave; the others still wait (the exponential wait
                # of M/M/c stands in for those that found fewer than T queued)
                still = c_wait * x - from_wait
                x -= from_wait
                backlog -= from_wait
                c_wait = max(still, 0.0) / x if x > 1e-12 else 0.0
        if x > 0.0:
            lo, hi = offsets[s], offsets[s + 1]
            if hi > lo:
                att, lat = record_requests(
                    x, 0.0, c_wait, theta, step, base_s, slope_s, lo, hi, slo_s, ihist, exp_q,
                    histogram,
                )  # fmt: skip
            else:
                att, lat = record_mixture(
                    x, 0.0, c_wait, theta, step, strata, slo_s, ihist, exp_q, histogram
                )
            out[O_ATTAINED] += att
            out[O_SERVED_LAT_S] += lat
            held, kept_on = occupy(
                x, s, s, step, strata, offsets, base_s, slope_s, done_ring, done_busy_ring
            )
            started_busy += held
            started_joined += kept_on
            served += x
            backlog -= x
        ring[idx] = leftover if leftover > 1e-12 else 0.0
        if oldest == s and ring[idx] == 0.0:
            oldest = s + 1
        out[O_SERVED] += served
        busy = in_service - done + done_busy + started_busy
        joined = started_joined
        in_service = in_service - done + joined
        if in_service < 0.0:
            in_service = 0.0
        # the slots of the serving replicas and of those still draining (whose
        # requests `in_service` still holds)
        all_slots = slots + draining[s - t0] * max_batch
        if backlogged and backlog > 1e-9:
            # requests waited through the whole second: every slot that freed was
            # taken at once, so all serving slots were busy (the SimPy engine's reading)
            busy = max(busy, float(slots))
        busy_slots = busy if busy < all_slots else all_slots
        out[O_BUSY_SLOT_S] += busy_slots
        out[O_READY_SLOT_S] += all_slots
        out[O_READY_REPLICA_S] += ready
    state[S_BACKLOG] = max(backlog, 0.0)
    state[S_OLDEST] = oldest
    state[S_IN_SERVICE] = in_service
    state[S_WIN_LO] = win_lo
    state[S_WIN_HI] = win_hi
    state[S_WIN_SUM] = win_sum
    state[S_RATE] = rate_prev
    state[S_SERVICE] = service_prev
    out[O_QUEUE_END] = max(backlog, 0.0) + last_lq
    # The SimPy engine handles a replica's readiness before the decision tick at the
    # same time, so the queue it reports at t1 is what is left once the replicas that
    # became ready within the last second (counted in O_READY_AT_T1) filled their free
    # slots; they serve in the next interval's first second here (the state is not moved).
    out[O_QUEUE_AT_T1] = max(out[O_QUEUE_END] - fresh_t1 * max_batch, 0.0)
    out[O_READY_END] = ready
    p95 = hist_quantile(ihist, 0.95)
    out[O_P95_S] = p95
    for i in range(HIST_BINS):
        hist[i] += ihist[i]
    for i in range(out.shape[0]):
        totals[i] += out[i]
    finished = out[O_SERVED] + out[O_DROPPED]
    if finished > 0.0:
        shares[row] = out[O_ATTAINED] / finished
    series[row, R_TIME] = t1
    series[row, R_READY] = ready_t1
    series[row, R_PENDING] = pending_t1
    series[row, R_P95] = p95
    slot_s = out[O_READY_SLOT_S]
    utilisation = out[O_BUSY_SLOT_S] / slot_s if slot_s > 0.0 else math.nan
    queue_len = int(out[O_QUEUE_AT_T1] + 0.5)
    return utilisation, queue_len, ready_t1, pending_t1, p95
