"""What the fluid engine reads from a workload: arrivals per second and service strata.

Arrivals are counts per whole second (a `RequestTrace`) or the mean rate of the
second (a `RateEnvelope`); seconds inside a collection gap carry no arrivals and
are flagged `missing`, so a policy sees "no metric" there rather than zero load.

Service times are summarised by a few *strata* of the request-size distribution:
stratum k has probability `weight[k]` and a service time
`base_s[k] + slope_s[k] * step_factor(batch)`, where `step_factor` is the decode
slowdown of a fuller batch (`TokenService`). Strata are finer in the tail so
p99 and SLO attainment see the long requests that dominate them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim.capacity.service import ExponentialService, ServiceModel, TokenService
from sim.workload.model import (
    ArrivalPattern,
    FloatArray,
    RateEnvelope,
    RequestTrace,
    TokenProfile,
    Workload,
)

# Probability edges of the strata: ten-percent steps in the body, then finer steps
# in the tail, where latency percentiles and SLO misses live.
STRATA_EDGES = np.array(
    [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.85,
        0.9,
        0.93,
        0.95,
        0.97,
        0.98,
        0.99,
        0.995,
        0.998,
        0.999,
        1.0,
    ]
)
_GRID_POINTS = 64  # per-dimension quantile grid for token profiles without data


@dataclass(frozen=True)
class ServiceStrata:
    """Service-time strata of one workload on one service model.

    Attributes:
        weight: Probability of each stratum (sums to 1).
        base_s: Batch-independent part of the service time (prefill) per stratum.
        slope_s: Decode time per stratum at batch 1; multiplied by the step factor.
        slowdown_per_slot: Fractional decode slowdown per extra busy slot,
            `batch_slowdown / (max_batch - 1)` (0 for a single-slot replica).
    """

    weight: FloatArray
    base_s: FloatArray
    slope_s: FloatArray
    slowdown_per_slot: float

    def mean_s(self, batch: float) -> float:
        """Mean service time when `batch` slots of a replica are busy."""
        step = 1.0 + self.slowdown_per_slot * (max(batch, 1.0) - 1.0)
        return float(self.weight @ (self.base_s + self.slope_s * step))

    def scv(self, batch: float) -> float:
        """Squared coefficient of variation of the service time at `batch`."""
        step = 1.0 + self.slowdown_per_slot * (max(batch, 1.0) - 1.0)
        times = self.base_s + self.slope_s * step
        mean = float(self.weight @ times)
        var = float(self.weight @ (times - mean) ** 2)
        return var / max(mean * mean, 1e-12)

    def packed(self) -> FloatArray:
        """(3, K) array (weight, base, slope) for the compiled kernel."""
        return np.ascontiguousarray(np.vstack([self.weight, self.base_s, self.slope_s]))


@dataclass(frozen=True)
class SecondInputs:
    """Per-second inputs of one run.

    Attributes:
        arrivals: Requests arriving in each second (float: envelopes give means).
        missing: True for seconds inside a collection gap.
        duration_s: Number of simulated seconds.
    """

    arrivals: FloatArray
    missing: np.ndarray
    duration_s: int


def per_second_arrivals(workload: Workload, rng: np.random.Generator | None = None) -> SecondInputs:
    """Arrivals per whole second and the missing-data mask.

    A request trace gives its counts. An envelope gives its mean rate when `rng` is
    None; with `rng` the counts are sampled (`sampled_envelope_counts`).
    """
    duration = max(1, math.ceil(workload.duration_s - 1e-9))
    missing = np.zeros(duration, dtype=np.bool_)
    if isinstance(workload, RequestTrace):
        seconds = np.floor(workload.arrival_s).astype(np.int64)
        seconds = seconds[(seconds >= 0) & (seconds < duration)]
        arrivals = np.bincount(seconds, minlength=duration).astype(np.float64)
        for start_s, end_s in workload.missing:
            lo = max(0, math.floor(start_s))
            hi = min(duration, math.ceil(end_s))
            missing[lo:hi] = True
        return SecondInputs(arrivals, missing, duration)
    means = _envelope_seconds(workload, duration, missing)
    if rng is None:
        return means
    counts = sampled_envelope_counts(workload, means.arrivals, rng)
    return SecondInputs(counts, means.missing, duration)


def client_idc(env: RateEnvelope) -> FloatArray:
    """Per-bin index of dispersion of the aggregate arrival count (1 for Poisson).

    A renewal process with gap coefficient of variation `cv` has an asymptotic
    index of dispersion cv^2; independent clients add variances, so the aggregate's
    is the rate-weighted mean of cv^2 (ServeGen Gamma: cv^2 = 1 / shape; Weibull:
    Gamma(1 + 2/k) / Gamma(1 + 1/k)^2 - 1).
    """
    from scipy.special import gammaln  # lazy: only envelopes with client fits need it

    n_bins = len(env.rate_rps)
    if env.clients is None:
        return np.ones(n_bins)
    fits = env.clients
    k = np.where(fits.pattern >= ArrivalPattern.GAMMA, np.maximum(fits.shape, 1e-3), 1.0)
    gamma_cv2 = 1.0 / k
    with np.errstate(over="ignore"):
        weibull_cv2 = np.exp(gammaln(1 + 2 / k) - 2 * gammaln(1 + 1 / k)) - 1.0
    cv2 = np.where(fits.pattern == ArrivalPattern.WEIBULL, weibull_cv2, gamma_cv2)
    cv2 = np.where(fits.pattern == ArrivalPattern.POISSON, 1.0, np.clip(cv2, 0.0, 1e3))
    rate = np.where(fits.pattern == ArrivalPattern.IDLE, 0.0, fits.rate_rps)
    total = rate.sum(axis=0)
    idc = np.where(total > 0, (rate * cv2).sum(axis=0) / np.maximum(total, 1e-12), 1.0)
    return np.asarray(idc, dtype=np.float64)


def sampled_envelope_counts(
    env: RateEnvelope, mean_counts: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """Per-second counts with the envelope's mean and its clients' dispersion.

    Gamma-Poisson (negative binomial) counts with variance `mean x idc` per second,
    Poisson where idc <= 1. The dispersion is the renewal processes' asymptotic one,
    exact when each client sends many requests per second (ServeGen at production
    scale); the fluid engine samples exact request-level arrivals instead when the
    run is small enough (`FluidSettings.exact_sampling_max_requests`).
    """
    idc_bins = client_idc(env)
    n = len(mean_counts)
    which = np.minimum((np.arange(n) / env.bin_s).astype(np.int64), len(idc_bins) - 1)
    idc = idc_bins[which]
    over = np.maximum(idc - 1.0, 0.0)
    # gamma mixing: rate ~ Gamma(shape=m / over, scale=over) has mean m, variance m x over
    bursty = over > 1e-9
    rates = mean_counts.copy()
    if bursty.any():
        m = mean_counts[bursty]
        positive = m > 0
        mixed = np.zeros_like(m)
        mixed[positive] = rng.gamma(m[positive] / over[bursty][positive], over[bursty][positive])
        rates[bursty] = mixed
    return np.asarray(rng.poisson(rates), dtype=np.float64)


def _envelope_seconds(env: RateEnvelope, duration: int, missing: np.ndarray) -> SecondInputs:
    """Mean arrivals of each second from a rate envelope (exact for any bin width)."""
    rates = np.where(env.missing | np.isnan(env.rate_rps), 0.0, env.rate_rps)
    edges = np.arange(len(rates) + 1, dtype=np.float64) * env.bin_s
    cumulative = np.concatenate([[0.0], np.cumsum(rates * env.bin_s)])
    seconds = np.arange(duration + 1, dtype=np.float64)
    expected = np.interp(seconds, edges, cumulative)
    arrivals = np.diff(expected)
    gap_bins = np.flatnonzero(env.missing | np.isnan(env.rate_rps))
    for b in gap_bins:
        lo = max(0, math.floor(b * env.bin_s))
        hi = min(duration, math.ceil((b + 1) * env.bin_s))
        missing[lo:hi] = True
    return SecondInputs(np.maximum(arrivals, 0.0), missing, duration)


def token_samples(workload: Workload, profile: TokenProfile) -> tuple[FloatArray, FloatArray]:
    """Input and output token counts: the trace's own, or a lognormal quantile grid.

    The grid is deterministic (no randomness): `_GRID_POINTS` quantiles of each
    lognormal, crossed, i.e. input and output sizes independent.
    """
    if isinstance(workload, RequestTrace) and workload.input_tokens is not None:
        inputs = workload.input_tokens.astype(np.float64)
        outputs = (
            workload.output_tokens.astype(np.float64)
            if workload.output_tokens is not None
            else np.full_like(inputs, profile.output_mean)
        )
        if len(inputs):
            return inputs, outputs
    probs = (np.arange(_GRID_POINTS) + 0.5) / _GRID_POINTS
    ins = _lognormal_quantiles(profile.input_mean, profile.input_cv, probs)
    outs = _lognormal_quantiles(profile.output_mean, profile.output_cv, probs)
    grid_in, grid_out = np.meshgrid(ins, outs, indexing="ij")
    return grid_in.ravel(), grid_out.ravel()


def _lognormal_quantiles(mean: float, cv: float, probs: FloatArray) -> FloatArray:
    from scipy.special import ndtri  # lazy: scipy is heavy and only needed here

    if cv <= 0.0:
        return np.full_like(probs, mean)
    sigma = math.sqrt(math.log1p(cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    quantiles = np.exp(mu + sigma * ndtri(probs))
    return np.asarray(quantiles * (mean / quantiles.mean()), dtype=np.float64)


def service_strata(
    service: ServiceModel, workload: Workload, profile: TokenProfile
) -> ServiceStrata:
    """Strata of the service-time distribution under `service` for this workload."""
    if isinstance(service, ExponentialService):
        # Stratum means of an exponential: E[X | X in (q_lo, q_hi)] in closed form.
        lo, hi = STRATA_EDGES[:-1], STRATA_EDGES[1:]
        weight = hi - lo

        def partial(q: FloatArray) -> FloatArray:
            # integral of -ln(1-u) du from 0 to q, in units of the mean.
            tail = np.where(q < 1.0, (1.0 - q) * np.log(np.maximum(1.0 - q, 1e-300)), 0.0)
            return np.asarray(q + tail, dtype=np.float64)

        means = service.mean_s * (partial(hi) - partial(lo)) / weight
        return ServiceStrata(weight, means, np.zeros_like(means), 0.0)
    assert isinstance(service, TokenService)
    inputs, outputs = token_samples(workload, profile)
    base = service.prefill_s_per_1k_tokens * inputs / 1000.0
    slope = service.decode_s_per_token * outputs
    full = base + slope * (1.0 + service.batch_slowdown)
    order = np.argsort(full, kind="stable")
    base, slope = base[order], slope[order]
    n = len(order)
    cuts = np.unique(np.clip(np.round(STRATA_EDGES * n).astype(np.int64), 0, n))
    weights, bases, slopes = [], [], []
    for lo_i, hi_i in itertools.pairwise(cuts):
        if hi_i <= lo_i:
            continue
        weights.append((hi_i - lo_i) / n)
        bases.append(base[lo_i:hi_i].mean())
        slopes.append(slope[lo_i:hi_i].mean())
    per_slot = 0.0 if service.max_batch == 1 else service.batch_slowdown / (service.max_batch - 1)
    return ServiceStrata(
        np.asarray(weights, dtype=np.float64),
        np.asarray(bases, dtype=np.float64),
        np.asarray(slopes, dtype=np.float64),
        per_slot,
    )


def block_strata(
    service: ServiceModel,
    workload: Workload,
    profile: TokenProfile,
    duration_s: int,
    block_s: int,
    strata: ServiceStrata | None = None,
) -> FloatArray:
    """Service strata per block of `block_s` seconds, shape (blocks, 3, strata).

    Real traces change their request mix over time (in the Azure conv hour the
    busiest minutes carry shorter answers), and both a replica's throughput and the
    share of requests within the SLO follow the requests actually served. A trace
    with token counts therefore gets strata of its own requests per block; an
    envelope (or a block without arrivals, or a trace without requests) uses the
    run's global strata (`strata`, computed here when the caller has not already).
    """
    glob = strata if strata is not None else service_strata(service, workload, profile)
    k = len(STRATA_EDGES) - 1
    n_blocks = max(1, math.ceil(duration_s / block_s))
    out = np.zeros((n_blocks, 3, k))
    out[:, :, : glob.weight.size] = glob.packed()[None, :, :]
    if (
        not isinstance(workload, RequestTrace)
        or workload.input_tokens is None
        or workload.arrival_s.size == 0  # no requests: `token_samples` gives its grid
        or not isinstance(service, TokenService)
        or n_blocks == 1
    ):
        return out
    inputs, outputs = token_samples(workload, profile)
    base = service.prefill_s_per_1k_tokens * inputs / 1000.0
    slope = service.decode_s_per_token * outputs
    full = base + slope * (1.0 + service.batch_slowdown)
    blocks = np.floor(workload.arrival_s / block_s).astype(np.int64)
    # sort by (block, full-batch service time), then cut each block at the edges
    order = np.lexsort((full, blocks))
    blocks, base, slope = blocks[order], base[order], slope[order]
    starts = np.searchsorted(blocks, np.arange(n_blocks + 1))
    for b in range(n_blocks):
        lo, hi = int(starts[b]), int(starts[b + 1])
        n = hi - lo
        if n == 0:
            continue
        out[b] = 0.0
        cuts = lo + np.round(STRATA_EDGES * n).astype(np.int64)
        counts = np.diff(cuts)
        cum_b = np.concatenate([[0.0], np.cumsum(base[lo:hi])])
        cum_s = np.concatenate([[0.0], np.cumsum(slope[lo:hi])])
        sums_b = cum_b[cuts[1:] - lo] - cum_b[cuts[:-1] - lo]
        sums_s = cum_s[cuts[1:] - lo] - cum_s[cuts[:-1] - lo]
        has = counts > 0
        out[b, 0, has] = counts[has] / n
        out[b, 1, has] = sums_b[has] / counts[has]
        out[b, 2, has] = sums_s[has] / counts[has]
    return out


def smoothed_rate(arrivals: FloatArray, window_s: int) -> FloatArray:
    """Centred moving average of arrivals per second: the rate behind Poisson counts.

    The M/M/c part of the model already accounts for Poisson noise, so it is fed
    the local mean rate, not the noisy per-second count.
    """
    if window_s <= 1:
        return arrivals.copy()
    cumulative = np.concatenate([[0.0], np.cumsum(arrivals)])
    n = len(arrivals)
    half = window_s // 2
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return np.asarray((cumulative[hi] - cumulative[lo]) / (hi - lo), dtype=np.float64)


def dispersion(arrivals: FloatArray, rate: FloatArray) -> float:
    """Index of dispersion of per-second counts about their local rate (1 for Poisson).

    Used as the arrivals' squared coefficient of variation in the Allen-Cunneen
    factor: bursts shorter than the smoothing window reach the wait through it.
    """
    total = float(rate.sum())
    if total <= 0.0:
        return 1.0
    return max(float(((arrivals - rate) ** 2).sum()) / total, 0.0)


def interval_bounds(duration_s: int, interval_s: float) -> NDArray[np.int64]:
    """Whole-second bounds of the decision intervals: interval i is [b[i], b[i + 1])."""
    n_int = max(1, math.ceil(duration_s / interval_s - 1e-9))
    return np.minimum(np.round(np.arange(n_int + 1) * interval_s).astype(np.int64), duration_s)


def interval_demand(inputs: SecondInputs, bounds: NDArray[np.int64]) -> list[float | None]:
    """Mean arrivals per second of each interval over its observed seconds (None where
    every second is inside a collection gap): the demand a policy observes."""
    cum_arr = np.concatenate([[0.0], np.cumsum(np.where(inputs.missing, 0.0, inputs.arrivals))])
    cum_obs = np.concatenate([[0], np.cumsum(~inputs.missing)])
    seen = np.diff(cum_obs[bounds])
    demand = np.diff(cum_arr[bounds]) / np.maximum(seen, 1)
    return [float(d) if n > 0 else None for d, n in zip(demand, seen, strict=True)]
