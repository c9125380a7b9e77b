"""The compiled step of `sim.detector.ResidualDetector`, for the fluid kernel's bands.

`score_reading` is `ResidualDetector.follow` and, against the baseline, `score` of one
reading, with the same floats in the same order (tests/sim/test_detector.py holds the
two to each other); `commit_reading` makes a reading it kept part of the state.
"""

from __future__ import annotations

import math

import numba

from sim.detector import (
    ANOMALOUS,
    KEPT,
    P_HEADROOM,
    P_MIN_SAMPLES,
    P_MIN_STD,
    P_THRESHOLD,
    P_WEIGHT,
    P_WINDOW_S,
    S_BASELINE,
    S_COUNT,
    S_HEAD,
    S_SHIFT,
    S_SUM,
    S_SUM_SQ,
    UNFOLLOWED,
    FloatArray,
)


@numba.njit(cache=True, error_model="numpy")
def score_reading(
    times: FloatArray,
    values: FloatArray,
    state: FloatArray,
    params: FloatArray,
    time_s: float,
    observed: float,
    scratch: FloatArray,
) -> int:
    """`ResidualDetector.follow` and, against the baseline, `score` of one reading, as
    compiled code: KEPT in the window, ANOMALOUS (kept out; the demand it implies,
    `ResidualDetector.implied` against the baseline, goes to `scratch[7]`), or
    UNFOLLOWED (it would overflow the window). The new scalars go to `scratch`
    (`commit_reading` makes them the state), so a reading not committed changes
    nothing."""
    head, count = int(state[S_HEAD]), int(state[S_COUNT])
    shift, total, total_sq = state[S_SHIFT], state[S_SUM], state[S_SUM_SQ]
    baseline = state[S_BASELINE]
    previous = observed if baseline != baseline else baseline
    baseline = previous + params[P_WEIGHT] * (observed - previous)
    capacity = times.shape[0]
    anomalous = append = False
    residual = 0.0
    if previous > 0.0:
        residual = observed / previous - 1.0
        while count > 0 and times[head] <= time_s - params[P_WINDOW_S]:
            shifted = values[head] - shift
            total -= shifted
            total_sq -= shifted * shifted
            head = (head + 1) % capacity
            count -= 1
        if count >= params[P_MIN_SAMPLES] and residual > 0.0:
            mean_shifted = total / count
            variance = max(total_sq / count - mean_shifted * mean_shifted, 0.0)
            spread = max(math.sqrt(variance), params[P_MIN_STD])
            anomalous = (residual - (shift + mean_shifted)) / spread >= params[P_THRESHOLD]
        if not anomalous:
            if count == capacity:
                return UNFOLLOWED  # (the window would grow: left to the policy)
            if count == 0:
                shift, total, total_sq = residual, 0.0, 0.0
            append = True
            shifted = residual - shift
            total += shifted
            total_sq += shifted * shifted
    scratch[S_HEAD], scratch[S_COUNT] = head, count
    scratch[S_SHIFT], scratch[S_SUM], scratch[S_SUM_SQ] = shift, total, total_sq
    scratch[S_BASELINE] = baseline
    scratch[6] = residual if append else math.nan
    if anomalous:
        implied = max(observed, previous * (1.0 + residual))
        scratch[7] = implied * (1.0 + params[P_HEADROOM])
        return ANOMALOUS
    return KEPT


@numba.njit(cache=True, error_model="numpy")
def commit_reading(
    times: FloatArray, values: FloatArray, state: FloatArray, time_s: float, scratch: FloatArray
) -> None:
    """Make the reading `score_reading` kept part of the detector's state."""
    state[:6] = scratch[:6]
    residual = scratch[6]
    if residual == residual:
        capacity = times.shape[0]
        count = int(state[S_COUNT])
        slot = (int(state[S_HEAD]) + count) % capacity
        times[slot], values[slot] = time_s, residual
        state[S_COUNT] = count + 1
