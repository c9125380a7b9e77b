"""The fluid kernel's per-cohort pieces (numba): the M/M/c wait a request meets and
the batch slots a cohort of requests holds.

`sim.fluid.kernel.advance` calls them every simulated second: Erlang C for the
stationary wait (an exact series up to `HALFIN_WHITT_FROM` slots, the Halfin-Whitt
limit above), the strata's mean service time, and `occupy`, which schedules each
started cohort's completions in the completion ring. The oracle's model
(`sim.oracle.attainment`) takes the same Erlang C and strata means.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from sim.workload.model import FloatArray

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
