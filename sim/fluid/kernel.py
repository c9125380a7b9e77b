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

Arrays are preallocated by the engine; this module holds no state of its own.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from sim.detector import ANOMALOUS, UNFOLLOWED
from sim.fluid.detector_kernel import commit_reading, score_reading
from sim.fluid.latency import (
    EXP_QUANTILES,
    HIST_BINS,
    hist_quantile,
    record_mixture,
    record_requests,
)
from sim.fluid.serverless_kernel import sv_second
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
HALFIN_WHITT_FROM = 400  # slots above which Erlang C uses its Halfin-Whitt limit


@numba.njit(cache=True, error_model="numpy")
def erlang_c_fast(slots: int, offered: float) -> float:
    """Erlang C, 0 when the Halfin-Whitt margin (c - a) / sqrt(a) exceeds 8 (C < 1e-14).

    Otherwise the series 1/B = sum_j prod_{i<j} (c - i) / a, stopped once it settles:
    O(c - a + a few sqrt(c)) terms, cheap enough to evaluate every simulated second.
    The terms are taken four at a time from one running product (their ratios and
    partial products do not wait on it): summed one by one, each term waited on the
    multiply before it, and this series was 30 % of a long replay's compiled time.
    """
    if slots <= 0 or offered >= slots:
        return 1.0
    if offered <= 0.0:
        return 0.0
    if slots - offered > 8.0 * math.sqrt(offered) + 8.0:
        return 0.0
    if slots > HALFIN_WHITT_FROM:
        # Halfin-Whitt: C = 1 / (1 + beta Phi(beta) / phi(beta)), beta = (c - a) / sqrt(c);
        # within about 1 % of Erlang C at these sizes, and O(1)
        beta = (slots - offered) / math.sqrt(slots)
        cdf = 0.5 * (1.0 + math.erf(beta / math.sqrt(2.0)))
        pdf = math.exp(-0.5 * beta * beta) / math.sqrt(2.0 * math.pi)
        return 1.0 / (1.0 + beta * cdf / pdf)
    per_offered = 1.0 / offered
    total = 1.0
    term = 1.0
    left = float(slots)  # c - j for the next term j + 1
    settled = False
    while left >= 4.0:
        r0 = left * per_offered
        r1 = (left - 1.0) * per_offered
        r2 = (left - 2.0) * per_offered
        r3 = (left - 3.0) * per_offered
        r01 = r0 * r1
        t0 = term * r0
        t1 = term * r01
        t2 = t1 * r2
        term = term * (r01 * (r2 * r3))
        total += (t0 + t1) + (t2 + term)
        left -= 4.0
        if total > 1e15:
            return 0.0
        if term < 1e-13 * total:  # past the peak the block's last term is its least
            settled = True
            break
    while not settled and left >= 1.0:
        term *= left * per_offered
        total += term
        left -= 1.0
        if total > 1e15:
            return 0.0
        if term < 1e-13 * total:
            break
    blocking = 1.0 / total
    rho = offered / slots
    return blocking / (1.0 - rho * (1.0 - blocking))


@numba.njit(cache=True, error_model="numpy")
def strata_means(strata: FloatArray) -> tuple[float, float]:
    """(base, slope) of the mean service time: sums of weight x base and weight x slope."""
    mean_base = 0.0
    mean_slope = 0.0
    for k in range(strata.shape[1]):
        mean_base += strata[0, k] * strata[1, k]
        mean_slope += strata[0, k] * strata[2, k]
    return mean_base, mean_slope


@numba.njit(cache=True, error_model="numpy")
def _hold(
    m: float, s_at: int, d: float, done_ring: FloatArray, done_busy_ring: FloatArray
) -> tuple[float, float]:
    """Schedule `m` requests that start uniformly within a second and hold a slot
    for `d` seconds: their completions land in `done_ring` (two seconds, the share
    ending in each), the part of those seconds they still hold the slot in
    `done_busy_ring`; `s_at` is the second's index in the rings. Returns (slot-seconds
    held within the second, requests still holding a slot at its end)."""
    d_len = done_ring.shape[0]
    if d > d_len - 3:
        d = d_len - 3.0
    whole = int(d)
    frac = d - whole
    # ring indices by one wrap, not `%`: two integer divisions per stratum were 8 % of
    # a 14-day replay (s_at < d_len and whole + 1 <= d_len - 2)
    i2 = s_at + whole + 1
    if i2 >= d_len:
        i2 -= d_len
    if whole >= 1:
        busy = 0.5 * m
        joined = m
        i1 = i2 - 1 if i2 > 0 else d_len - 1
        done_ring[i1] += m * (1.0 - frac)
        done_busy_ring[i1] += m * (1.0 - frac) * (1.0 + frac) * 0.5
    else:
        # the (1 - d) share ends within this second, the rest in the next
        busy = m * (1.0 - frac) * frac + m * frac * frac * 0.5
        joined = m * frac
    done_ring[i2] += m * frac
    done_busy_ring[i2] += m * frac * frac * 0.5
    return busy, joined


@numba.njit(cache=True, error_model="numpy")
def occupy(
    mass: float,
    cohort: int,
    s: int,
    step: float,
    strata: FloatArray,
    offsets: NDArray[np.int64],
    base_s: FloatArray,
    slope_s: FloatArray,
    done_ring: FloatArray,
    done_busy_ring: FloatArray,
) -> tuple[float, float]:
    """Schedule the slot occupancy of `mass` requests of second `cohort`'s arrivals
    that start in second `s` at decode step factor `step`.

    With the cohort's own requests (`sim.fluid.work`), each holds its slot for its
    own service time (a partly served cohort: the same share of each); otherwise
    the strata stand in. Returns (busy slot-seconds within s, holding at s + 1).
    """
    busy = 0.0
    joined = 0.0
    s_at = s % done_ring.shape[0]
    lo = offsets[cohort]
    hi = offsets[cohort + 1]
    if hi > lo:
        m = mass / (hi - lo)
        for i in range(lo, hi):
            b, j = _hold(m, s_at, base_s[i] + slope_s[i] * step, done_ring, done_busy_ring)
            busy += b
            joined += j
        return busy, joined
    for k in range(strata.shape[1]):
        m = mass * strata[0, k]
        if m > 0.0:
            b, j = _hold(m, s_at, strata[1, k] + strata[2, k] * step, done_ring, done_busy_ring)
            busy += b
            joined += j
    return busy, joined


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


#: `advance_quiet`'s band (a float array, `sim.control.Band` packed by the engine):
#: which reading it watches (BAND_NONE: none, a quiet span of a schedule), the band
#: that keeps the span going and renews the hold, the renewal, the hold band and the
#: time it holds until, the ready plus pending replicas every reading must show, a
#: higher top of the band while B_READY replicas are ready, and the alarm clocks above
#: and below the band (how long a run of such readings stays quiet, when the run the
#: span starts in began: NaN when none), the most demand any reading may show (inf:
#: no limit), over how many seconds that demand is averaged (0: the reading's own),
#: the rate each queued request adds to it (a backlog to drain; 0: none), the demand
#: from which it renews the hold as a metric within the band does (inf: none), and
#: what a missing demand does (MISSING_*: leave the band, pass on to the metric, or
#: pass at once); and whether a `sim.detector.ResidualDetector` scores the demand
#: (1.0: one does, and a demand it finds no anomaly in passes whatever its limit); and
#: the most ready x metric a reading with replicas pending may show within the band;
#: and the most demand an anomaly may imply (`ResidualDetector.implied`) and pass.
B_METRIC, B_LOW, B_HIGH, B_RENEW_S, B_HOLD_LOW, B_HOLD_HIGH, B_HOLD_UNTIL = range(7)
B_REPLICAS, B_READY, B_READY_HIGH = 7, 8, 9
B_ABOVE_FOR, B_ABOVE_SINCE, B_BELOW_FOR, B_BELOW_SINCE = 10, 11, 12, 13
B_DEMAND_HIGH, B_QUEUE_RATE, B_DEMAND_WINDOW, B_DEMAND_RENEW, B_MISSING = 14, 15, 16, 17, 18
B_DETECTOR, B_PENDING_BUSY_HIGH, B_ANOMALY_HIGH = 19, 20, 21
N_BAND = 22
MISSING_LEAVE, MISSING_CHECK, MISSING_HOLD = range(3)
BAND_NONE, BAND_UTILISATION, BAND_DEMAND, BAND_DEMAND_PER_READY, BAND_BUSY = range(5)


@numba.njit(cache=True, error_model="numpy")
def window_demand(
    i: int, bounds: NDArray[np.int64], demand_at: FloatArray, window_s: float
) -> float:
    """The demand a band watches at the end of interval `i`: with `window_s` > 0 the
    mean of the reported (finite) demands of the intervals that end within `window_s`
    before it, its own included, added oldest first as the control loop's history adds
    them (`sim.contract.window_demand_rps`; an empty interval has no sample): the same
    float. NaN when none was reported."""
    if window_s <= 0.0:
        return demand_at[i]
    after = float(bounds[i + 1]) - window_s
    first = i
    while first > 0 and bounds[first] > after:
        first -= 1
    total, count = 0.0, 0
    for j in range(first, i + 1):
        demand = demand_at[j]
        if bounds[j + 1] > bounds[j] and math.isfinite(demand):
            total += demand
            count += 1
    return total / count if count > 0 else math.nan


@numba.njit(cache=True, error_model="numpy")
def advance_quiet(
    first: int,
    last: int,
    bounds: NDArray[np.int64],
    desired: int,
    utilisation_at: FloatArray,
    ready_at_t1: NDArray[np.int64],
    demand_at: FloatArray,
    band: FloatArray,
    window_at: FloatArray,
    queue_at: NDArray[np.int64],
    det_times: FloatArray,
    det_values: FloatArray,
    det_state: FloatArray,
    det_params: FloatArray,
    det_scratch: FloatArray,
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
) -> tuple[float, int, int, int, float, int, bool]:
    """`advance` over intervals [first, last) (interval i is [bounds[i], bounds[i + 1])),
    one call after another, at a constant `desired`: a span in which the policy has
    nothing to decide (`sim.control.drive`'s quiet spans).

    Each interval writes its series row and share as `advance` does; its reading's
    utilisation and ready replicas (what the control loop's history keeps) go to
    `utilisation_at[i]` and `ready_at_t1[i]`, its queue to `queue_at[i]`, and when the
    band watches demand (a window, a finite B_DEMAND_HIGH or a detector) the demand it
    watched (`window_demand`, before the queue) to `window_at[i]`. With a `band`
    watching a reading
    (`B_METRIC`; the demand is `demand_at[i]`, NaN where none was observed), the span
    ends at the first interval whose reading leaves it: outside [B_LOW, B_HIGH] (or
    [B_LOW, B_READY_HIGH] with B_READY replicas ready, or with ready x metric at
    most B_PENDING_BUSY_HIGH while replicas are pending), not above it within
    B_ABOVE_FOR of the start of its run of readings above (B_ABOVE_SINCE for a run
    the span starts in), nor below it within B_BELOW_FOR of its run's start, and
    outside the hold band [B_HOLD_LOW, B_HOLD_HIGH] or at or after B_HOLD_UNTIL (a
    reading within the band at t moves B_HOLD_UNTIL to t + B_RENEW_S when that is
    later); or the metric NaN, or ready and pending replicas that do not add up to
    B_REPLICAS, or a demand not at most a finite B_DEMAND_HIGH (`window_demand`: its
    mean over B_DEMAND_WINDOW, plus the queue at B_QUEUE_RATE; one at least
    B_DEMAND_RENEW renews the hold as a metric within the band does; a missing one as
    B_MISSING says; with B_DETECTOR, the detector `det_*` scores it: one it finds no
    anomaly in passes whatever its limit and is kept in the window, an anomaly passes
    only within the band proper and implying at most B_ANOMALY_HIGH). The busy
    metric is ready x utilisation. That interval is advanced too but not recorded: the
    policy decides at its end. Returns the last advanced interval's reading, how many
    intervals stayed within the band, and whether one left it.
    """
    reading = (math.nan, 0, 0, 0, math.nan)
    kind = int(band[B_METRIC])
    hold_until = band[B_HOLD_UNTIL]
    above_since, below_since = band[B_ABOVE_SINCE], band[B_BELOW_SINCE]
    detector = band[B_DETECTOR] > 0.0
    for i in range(first, last):
        reading = advance(
            bounds[i], bounds[i + 1], i, desired, arrivals, arrivals_before, lam, ready_at,
            until, drain_end, drain_replicas, blocks, offsets, base_s, slope_s, params, state,
            ring, done_ring, done_busy_ring, hist, ihist, out, totals, series, shares, spill,
            spill_service_s, spill_strata, vp, vs, dq_t, dq_v, cw,
        )  # fmt: skip
        if kind != BAND_NONE:
            utilisation, queue_len, ready, pending, p95 = reading
            if ready + pending != band[B_REPLICAS]:
                return utilisation, queue_len, ready, pending, p95, i - first, True
            t1 = float(bounds[i + 1])
            checked = True  # whether the metric decides
            scored = False  # whether the detector follows the reading
            anomalous = False
            if detector or band[B_DEMAND_WINDOW] > 0.0 or band[B_DEMAND_HIGH] < math.inf:
                demand = window_demand(i, bounds, demand_at, band[B_DEMAND_WINDOW])
                window_at[i] = demand
                if demand != demand:
                    if band[B_MISSING] == MISSING_LEAVE:
                        return utilisation, queue_len, ready, pending, p95, i - first, True
                    checked = band[B_MISSING] == MISSING_CHECK
                elif detector:
                    verdict = score_reading(
                        det_times, det_values, det_state, det_params, t1, demand, det_scratch
                    )
                    anomalous = verdict == ANOMALOUS
                    if verdict == UNFOLLOWED or (
                        anomalous and not det_scratch[7] <= band[B_ANOMALY_HIGH]
                    ):
                        return utilisation, queue_len, ready, pending, p95, i - first, True
                    scored = True
                else:
                    demand += queue_len * band[B_QUEUE_RATE]
                    if not demand <= band[B_DEMAND_HIGH]:
                        return utilisation, queue_len, ready, pending, p95, i - first, True
                    if demand >= band[B_DEMAND_RENEW] and t1 + band[B_RENEW_S] > hold_until:
                        hold_until = t1 + band[B_RENEW_S]
            if checked:
                if kind == BAND_UTILISATION:
                    value = utilisation
                elif kind == BAND_DEMAND:
                    value = demand_at[i]
                elif kind == BAND_DEMAND_PER_READY:
                    value = demand_at[i] / ready if ready > 0 else math.nan
                else:
                    value = ready * utilisation
                top = band[B_READY_HIGH] if ready == band[B_READY] else band[B_HIGH]
                if band[B_LOW] <= value <= top or (  # (False for NaN)
                    pending > 0 and ready * value <= band[B_PENDING_BUSY_HIGH]
                ):
                    if t1 + band[B_RENEW_S] > hold_until:
                        hold_until = t1 + band[B_RENEW_S]
                    above_since = below_since = math.nan
                elif anomalous:  # (an anomaly passes only within the band proper)
                    return utilisation, reading[1], ready, pending, p95, i - first, True
                elif (
                    value > top
                    and t1 - (t1 if above_since != above_since else above_since)
                    < (band[B_ABOVE_FOR])
                ):
                    above_since = t1 if above_since != above_since else above_since
                    below_since = math.nan
                elif (
                    value < band[B_LOW]
                    and t1 - (t1 if below_since != below_since else below_since) < band[B_BELOW_FOR]
                ):
                    below_since = t1 if below_since != below_since else below_since
                    above_since = math.nan
                elif not (band[B_HOLD_LOW] <= value <= band[B_HOLD_HIGH] and t1 < hold_until):
                    return utilisation, reading[1], ready, pending, p95, i - first, True
            if scored:
                commit_reading(det_times, det_values, det_state, t1, det_scratch)
        utilisation_at[i] = reading[0]
        queue_at[i] = reading[1]
        ready_at_t1[i] = reading[2]
    return reading[0], reading[1], reading[2], reading[3], reading[4], last - first, False
