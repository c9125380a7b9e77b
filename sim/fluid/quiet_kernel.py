"""The fluid kernel over a quiet span (numba): intervals in which the policy has
nothing to decide, advanced in one call (`sim.control`'s quiet spans and bands).

`advance_quiet` calls `sim.fluid.kernel.advance` interval after interval at the
capacity in force and ends the span at the first reading that leaves the policy's
band (`sim.control.Band`, packed into a float array laid out by the B_* indices);
`window_demand` is the windowed demand a band watches, the same float the control
loop's history gives.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from sim.detector import ANOMALOUS, UNFOLLOWED
from sim.fluid.detector_kernel import commit_reading, score_reading
from sim.fluid.kernel import advance
from sim.workload.model import FloatArray

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
