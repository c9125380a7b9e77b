"""Latency bookkeeping of the fluid engine: a log-spaced histogram and the SLO mixture.

A cohort of `mass` requests served after a deterministic wait has latency
`wait + M/M/c wait + service`. The service time is a mixture over service strata;
the M/M/c wait is 0 with probability 1 - C and exponential with rate `theta`
otherwise (C the Erlang C probability). SLO attainment is computed exactly from
this mixture; the histogram approximates the exponential part by four quantile
points, which is enough for p50/p95/p99 at the histogram's 6 % bin width.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.workload.model import FloatArray

# Latency histogram on a piecewise-linear log2 scale (exact float exponent plus the
# mantissa, no log call: binning is the engine's hottest operation), 2^-10 s (1 ms)
# to 2^14 s, 12 bins per octave (about 6 % wide).
HIST_LOG2_MIN = -10
HIST_BINS_PER_OCTAVE = 12
HIST_BINS = 24 * HIST_BINS_PER_OCTAVE
EXP_POINTS = 4
EXP_QUANTILES = np.array([-math.log(1.0 - (i + 0.5) / EXP_POINTS) for i in range(EXP_POINTS)])


@numba.njit(cache=True, error_model="numpy")
def _scale(latency_s: float) -> float:
    """Monotone piecewise-linear log2: exponent + (mantissa - 1), exact at powers of two."""
    mantissa, exponent = math.frexp(latency_s)  # latency = mantissa x 2^exponent, m in [0.5, 1)
    return exponent - 1 + (2.0 * mantissa - 1.0)


@numba.njit(cache=True, error_model="numpy")
def _unscale(value: float) -> float:
    whole = math.floor(value)
    return 2.0**whole * (1.0 + (value - whole))


def hist_edges_s() -> FloatArray:
    """Edges of the latency histogram bins, in seconds (HIST_BINS + 1 values)."""
    steps = HIST_LOG2_MIN + np.arange(HIST_BINS + 1) / HIST_BINS_PER_OCTAVE
    whole = np.floor(steps)
    return np.asarray(2.0**whole * (1.0 + (steps - whole)), dtype=np.float64)


@numba.njit(cache=True, error_model="numpy")
def _hist_bin(latency_s: float) -> int:
    if latency_s <= 0.0:
        return 0
    idx = int((_scale(latency_s) - HIST_LOG2_MIN) * HIST_BINS_PER_OCTAVE)
    if idx < 0:
        return 0
    if idx >= HIST_BINS:
        return HIST_BINS - 1
    return idx


@numba.njit(cache=True, error_model="numpy")
def hist_quantile(hist: FloatArray, q: float) -> float:
    """The q-quantile of a latency histogram (linear in the bin's scale); NaN if empty."""
    total = 0.0
    for i in range(HIST_BINS):
        total += hist[i]
    if total <= 0.0:
        return math.nan
    target = q * total
    acc = 0.0
    for i in range(HIST_BINS):
        nxt = acc + hist[i]
        if nxt >= target and hist[i] > 0.0:
            frac = (target - acc) / hist[i]
            return _unscale(HIST_LOG2_MIN + (i + frac) / HIST_BINS_PER_OCTAVE)
        acc = nxt
    return _unscale(float(HIST_LOG2_MIN + HIST_BINS // HIST_BINS_PER_OCTAVE))


@numba.njit(cache=True, error_model="numpy")
def record(
    mass: float,
    wait_s: float,
    c_wait: float,
    theta: float,
    step: float,
    strata: FloatArray,
    slo_s: float,
    ihist: FloatArray,
    exp_q: FloatArray,
) -> tuple[float, float]:
    """Add `mass` served requests that waited `wait_s` (+ M/M/c wait); return (attained, lat)."""
    return record_mixture(mass, wait_s, c_wait, theta, step, strata, slo_s, ihist, exp_q, True)


@numba.njit(cache=True, error_model="numpy")
def record_mixture(
    mass: float,
    wait_s: float,
    c_wait: float,
    theta: float,
    step: float,
    strata: FloatArray,
    slo_s: float,
    ihist: FloatArray,
    exp_q: FloatArray,
    histogram: bool,
) -> tuple[float, float]:
    """`record`, adding to the latency histogram only with `histogram` (a run that
    reads only bills and attainment skips its binning, a fifth of a replay's time)."""
    attained = 0.0
    lat_sum = 0.0
    n_strata = strata.shape[1]
    mean_extra = c_wait / theta if c_wait > 0.0 else 0.0
    for k in range(n_strata):
        m = mass * strata[0, k]
        latency = wait_s + strata[1, k] + strata[2, k] * step
        budget = slo_s - latency
        if budget >= 0.0:
            attained += m if c_wait == 0.0 else m * (1.0 - c_wait * math.exp(-theta * budget))
        lat_sum += m * (latency + mean_extra)
        if not histogram:
            continue
        ihist[_hist_bin(latency)] += m * (1.0 - c_wait)
        if c_wait > 0.0:
            share = m * c_wait / exp_q.shape[0]
            for e in range(exp_q.shape[0]):
                ihist[_hist_bin(latency + exp_q[e] / theta)] += share
    return attained, lat_sum


@numba.njit(cache=True, error_model="numpy")
def record_requests(
    mass: float,
    wait_s: float,
    c_wait: float,
    theta: float,
    step: float,
    base_s: FloatArray,
    slope_s: FloatArray,
    lo: int,
    hi: int,
    slo_s: float,
    ihist: FloatArray,
    exp_q: FloatArray,
    histogram: bool,
) -> tuple[float, float]:
    """`record_mixture` for a cohort whose own requests [lo, hi) are known
    (`sim.fluid.work`): each request is a stratum of weight 1 / (hi - lo), so the
    service part of every latency is the request's own, as in the SimPy engine."""
    attained = 0.0
    lat_sum = 0.0
    m = mass / (hi - lo)
    mean_extra = c_wait / theta if c_wait > 0.0 else 0.0
    share = m * c_wait / exp_q.shape[0]
    for i in range(lo, hi):
        latency = wait_s + base_s[i] + slope_s[i] * step
        budget = slo_s - latency
        if budget >= 0.0:
            attained += m if c_wait == 0.0 else m * (1.0 - c_wait * math.exp(-theta * budget))
        lat_sum += m * (latency + mean_extra)
        if not histogram:
            continue
        ihist[_hist_bin(latency)] += m * (1.0 - c_wait)
        if c_wait > 0.0:
            for e in range(exp_q.shape[0]):
                ihist[_hist_bin(latency + exp_q[e] / theta)] += share
    return attained, lat_sum
