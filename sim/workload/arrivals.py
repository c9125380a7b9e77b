"""Request-level arrivals drawn from a rate envelope (`to_requests`).

Without client fits, each bin is a Poisson process at the bin's rate. With ServeGen
client fits, each client in each window is a stationary renewal process whose
inter-arrival gaps follow the fitted distribution (Gamma or Weibull with the fitted
shape; exponential where nothing is fitted), rescaled so the mean gap is 1 / rate
and hence the expected count in the window is rate x 600 s (ServeGen, Xiang et al.,
arXiv:2505.09999, section 4). The first arrival of each window is drawn from the
equilibrium (length-biased) gap, so the process is stationary and the expected count
is exact, not just asymptotic. Missing bins get no arrivals and are carried as
missing intervals. Everything is vectorised over (client, window) cells.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import gammaln

from sim.workload.model import (
    ArrivalPattern,
    BoolArray,
    FloatArray,
    RequestTrace,
    TokenProfile,
    Workload,
)

_BATCH_SIGMAS = 6.0  # gaps drawn per round: expected count + 6 sd, so a redraw is rare


def missing_intervals(missing: BoolArray, bin_s: float) -> tuple[tuple[float, float], ...]:
    """Runs of missing bins as (start_s, end_s) intervals."""
    flags = np.concatenate(([False], missing, [False])).astype(np.int8)
    change = np.flatnonzero(np.diff(flags))
    return tuple(
        (float(a * bin_s), float(b * bin_s)) for a, b in zip(change[::2], change[1::2], strict=True)
    )


def _gap_cv(pattern: np.ndarray, shape: FloatArray) -> FloatArray:
    """Coefficient of variation of the gap distribution (exponential: 1)."""
    k = np.where(pattern >= ArrivalPattern.GAMMA, shape, 1.0)
    gamma_cv = 1.0 / np.sqrt(k)
    with np.errstate(over="ignore"):
        ratio = np.exp(gammaln(1 + 2 / k) - 2 * gammaln(1 + 1 / k))
    weibull_cv = np.sqrt(np.maximum(ratio - 1.0, 0.0))
    return np.where(pattern == ArrivalPattern.WEIBULL, weibull_cv, gamma_cv)


def _draw_gaps(
    rng: np.random.Generator,
    pattern: np.ndarray,
    shape: FloatArray,
    mean_gap_s: FloatArray,
    *,
    first: bool,
) -> FloatArray:
    """One gap per entry with the given mean; `first` draws the equilibrium first gap.

    Gamma(k, mean/k); Weibull(k) with scale mean / Gamma(1 + 1/k); exponential is
    Gamma with k = 1. The stationary first arrival is U x L where L is length-biased:
    Gamma(k + 1) for Gamma, and lambda x Gamma(1 + 1/k)^(1/k) for Weibull.
    """
    out = np.empty(len(pattern))
    weibull = pattern == ArrivalPattern.WEIBULL
    k = np.where(pattern >= ArrivalPattern.GAMMA, shape, 1.0)
    g = ~weibull
    if g.any():
        kg = k[g]
        theta = mean_gap_s[g] / kg
        out[g] = rng.gamma(kg + 1.0 if first else kg, theta)
    if weibull.any():
        kw = k[weibull]
        with np.errstate(over="ignore", under="ignore"):
            lam = np.exp(np.log(mean_gap_s[weibull]) - gammaln(1.0 + 1.0 / kw))
            if first:
                out[weibull] = lam * rng.gamma(1.0 + 1.0 / kw) ** (1.0 / kw)
            else:
                out[weibull] = lam * rng.weibull(kw)
    if first:
        out *= rng.random(len(out))
    return out


def renewal_arrivals(
    rng: np.random.Generator,
    rate_rps: FloatArray,
    pattern: np.ndarray,
    shape: FloatArray,
    start_s: FloatArray,
    window_s: float,
) -> FloatArray:
    """Arrival times of independent stationary renewal processes, one per cell.

    Args:
        rng: Randomness.
        rate_rps: Mean rate of each cell (> 0).
        pattern: `ArrivalPattern` of each cell (POISSON, GAMMA or WEIBULL).
        shape: Fitted shape of each cell (ignored for POISSON).
        start_s: Start time of each cell's window.
        window_s: Window length shared by all cells.

    Returns:
        All arrival times, unsorted.
    """
    mean_gap_s = 1.0 / rate_rps
    expected = rate_rps * window_s
    sd = np.sqrt(expected) * np.minimum(_gap_cv(pattern, shape), 1e3)
    per_round = np.ceil(expected + _BATCH_SIGMAS * sd + 8.0).astype(np.int64)
    clock_s = _draw_gaps(rng, pattern, shape, mean_gap_s, first=True)
    chunks: list[FloatArray] = []
    active = np.flatnonzero(clock_s < window_s)
    chunks.append(start_s + np.where(clock_s < window_s, clock_s, np.inf))
    while active.size:
        counts = per_round[active]
        cell = np.repeat(active, counts)
        gaps = _draw_gaps(rng, pattern[cell], shape[cell], mean_gap_s[cell], first=False)
        ends = np.cumsum(counts)
        running = np.cumsum(gaps)
        base = np.repeat(running[ends - counts] - gaps[ends - counts], counts)
        times = clock_s[cell] + (running - base)
        chunks.append(np.where(times < window_s, times + start_s[cell], np.inf))
        clock_s[active] = times[ends - 1]
        active = active[clock_s[active] < window_s]
    arrivals = np.concatenate(chunks)
    return arrivals[np.isfinite(arrivals)]


def to_requests(
    w: Workload, rng: np.random.Generator, tokens: TokenProfile | None = None
) -> RequestTrace:
    """Seeded request-level arrivals for any workload.

    An envelope yields arrivals as described in the module docstring, with tokens
    drawn lognormal from `tokens` (default: the envelope's own profile). A request
    trace is returned as is when it has tokens; a missing token column is drawn
    from `tokens` (default `TokenProfile()`).

    Args:
        w: The workload.
        rng: Seeded generator; the same seed gives the same trace.
        tokens: Request-size profile to draw from.
    """
    if isinstance(w, RequestTrace):
        if w.input_tokens is not None and w.output_tokens is not None:
            return w
        inputs, outputs = (tokens or TokenProfile()).sample(rng, w.n_requests)
        return replace(
            w,
            input_tokens=inputs if w.input_tokens is None else w.input_tokens,
            output_tokens=outputs if w.output_tokens is None else w.output_tokens,
        )
    n_bins = len(w.rate_rps)
    starts = np.arange(n_bins, dtype=np.float64) * w.bin_s
    if w.clients is None:
        rate = np.where(w.missing, 0.0, w.rate_rps)
        counts = rng.poisson(rate * w.bin_s)
        arrival_s = np.repeat(starts, counts) + rng.random(int(counts.sum())) * w.bin_s
    else:
        fits = w.clients
        live = (fits.rate_rps > 0) & (fits.pattern != ArrivalPattern.IDLE) & ~w.missing[None, :]
        _, col = np.nonzero(live)
        arrival_s = renewal_arrivals(
            rng,
            fits.rate_rps[live],
            fits.pattern[live],
            fits.shape[live],
            starts[col],
            w.bin_s,
        )
    arrival_s = np.sort(arrival_s)
    inputs, outputs = (tokens or w.tokens).sample(rng, len(arrival_s))
    return RequestTrace(
        arrival_s=arrival_s,
        duration_s=w.duration_s,
        input_tokens=inputs,
        output_tokens=outputs,
        missing=missing_intervals(w.missing, w.bin_s),
        epoch_s=w.epoch_s,
        source=f"{w.source} (sampled)",
    )
