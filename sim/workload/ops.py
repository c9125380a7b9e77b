"""Pure operations on workloads: slice, scale, concatenate, measure, resample.

Every function returns a new value and leaves its inputs untouched. Missing data
stays missing: means are taken over observed time only, and resampled bins that
are mostly unobserved are marked missing rather than read as zero load.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.workload.model import (
    BoolArray,
    ClientFits,
    FloatArray,
    RateEnvelope,
    RequestTrace,
    Workload,
)

_EDGE_TOL = 1e-9


def _check_window(w: Workload, start_s: float, end_s: float) -> None:
    if not 0.0 <= start_s < end_s <= w.duration_s * (1 + _EDGE_TOL):
        raise ValueError(
            f"window [{start_s:g}, {end_s:g}) s is not inside the workload's span "
            f"[0, {w.duration_s:g}) s; pick 0 <= start < end <= {w.duration_s:g}"
        )


def observed_s(w: Workload) -> float:
    """Seconds of the workload that carry data (its duration minus missing time)."""
    if isinstance(w, RateEnvelope):
        return float(w.bin_s * np.count_nonzero(~w.missing))
    return w.duration_s - sum(end - start for start, end in w.missing)


def mean_rps(w: Workload) -> float:
    """Mean arrival rate over the observed (non-missing) time, in requests per second.

    Raises:
        ValueError: The workload has no observed time at all.
    """
    seen_s = observed_s(w)
    if seen_s <= 0:
        raise ValueError(f"workload {w.source!r} has no observed data; its mean rate is undefined")
    if isinstance(w, RateEnvelope):
        return float(np.mean(w.rate_rps[~w.missing]))
    return w.n_requests / seen_s


def slice_window(w: Workload, start_s: float, end_s: float) -> Workload:
    """The part of `w` in `[start_s, end_s)`, re-based so that it starts at t = 0.

    A rate envelope is cut at whole bins: the window widens outwards to the bin
    edges around `start_s` and `end_s`. `epoch_s` moves with the new t = 0.

    Raises:
        ValueError: The window is empty or reaches outside `[0, w.duration_s)`.
    """
    _check_window(w, start_s, end_s)
    if isinstance(w, RateEnvelope):
        first = int(np.floor(start_s / w.bin_s + _EDGE_TOL))
        last = min(int(np.ceil(end_s / w.bin_s - _EDGE_TOL)), len(w.rate_rps))
        clients = w.clients
        if clients is not None:
            clients = ClientFits(
                rate_rps=clients.rate_rps[:, first:last].copy(),
                pattern=clients.pattern[:, first:last].copy(),
                shape=clients.shape[:, first:last].copy(),
                scale=clients.scale[:, first:last].copy(),
                names=clients.names,
            )
        return replace(
            w,
            rate_rps=w.rate_rps[first:last].copy(),
            missing=w.missing[first:last].copy(),
            clients=clients,
            epoch_s=None if w.epoch_s is None else w.epoch_s + first * w.bin_s,
        )
    lo, hi = np.searchsorted(w.arrival_s, [start_s, end_s], side="left")
    missing = tuple(
        (max(a, start_s) - start_s, min(b, end_s) - start_s)
        for a, b in w.missing
        if b > start_s and a < end_s
    )
    return replace(
        w,
        arrival_s=w.arrival_s[lo:hi] - start_s,
        duration_s=float(end_s - start_s),
        input_tokens=None if w.input_tokens is None else w.input_tokens[lo:hi].copy(),
        output_tokens=None if w.output_tokens is None else w.output_tokens[lo:hi].copy(),
        missing=missing,
        epoch_s=None if w.epoch_s is None else w.epoch_s + start_s,
    )


def scale_to_mean(
    w: Workload, target_mean_rps: float, rng: np.random.Generator | None = None
) -> Workload:
    """`w` with its mean rate (over observed time) set to `target_mean_rps`.

    Envelopes multiply every rate (and every client's rate; fitted scales shrink by
    the same factor so each client's mean gap stays 1 / rate). Request traces keep
    their duration and time profile: each request is kept `k` times, where the
    counts `k` come from systematic sampling of the factor (one uniform offset from
    `rng`), so the total is within one request of factor x count. The first copy
    keeps the original time; extra copies land uniformly between the request and the
    next one, carrying its tokens. Thinning (factor < 1) is the same rule with k <= 1.

    Args:
        w: Workload to scale.
        target_mean_rps: New mean rate in requests per second, > 0.
        rng: Randomness for request traces; None means `default_rng(0)`.

    Raises:
        ValueError: Target not positive, or `w` has zero mean (nothing to scale).
    """
    if not target_mean_rps > 0:
        raise ValueError(f"target_mean_rps must be > 0, got {target_mean_rps}")
    current = mean_rps(w)
    if current <= 0:
        raise ValueError(f"workload {w.source!r} has zero mean rate; it cannot be scaled")
    factor = target_mean_rps / current
    if not np.isfinite(factor):
        raise ValueError(f"workload {w.source!r} has a mean of {current:g} rps, too small to scale")
    if isinstance(w, RateEnvelope):
        clients = w.clients
        if clients is not None:
            clients = replace(
                clients, rate_rps=clients.rate_rps * factor, scale=clients.scale / factor
            )
        return replace(w, rate_rps=w.rate_rps * factor, clients=clients)
    return _resample(w, np.full(w.n_requests, factor), rng)


def _resample(w: RequestTrace, factor: FloatArray, rng: np.random.Generator | None) -> RequestTrace:
    """Thin or replicate each request `i` about `factor[i]` times (systematic sampling).

    Request i gets floor(F_i + u) - floor(F_{i-1} + u) copies, where F is the running
    sum of the factors and u one uniform draw: the count over any stretch is within
    one of the sum of its factors. Extra copies land uniformly in the gap to the next
    request and carry the original's tokens.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    n = w.n_requests
    cumulative = np.floor(np.concatenate(([0.0], np.cumsum(factor))) + rng.random())
    copies = np.diff(cumulative).astype(np.int64)
    source = np.repeat(np.arange(n), copies)
    rank = np.arange(len(source)) - np.repeat(np.cumsum(copies) - copies, copies)
    next_s = np.append(w.arrival_s[1:], w.duration_s)
    gap_s = next_s[source] - w.arrival_s[source]
    offsets = np.where(rank > 0, rng.random(len(source)) * gap_s, 0.0)
    arrival_s = w.arrival_s[source] + offsets
    order = np.argsort(arrival_s, kind="stable")
    return replace(
        w,
        arrival_s=arrival_s[order],
        input_tokens=None if w.input_tokens is None else w.input_tokens[source][order],
        output_tokens=None if w.output_tokens is None else w.output_tokens[source][order],
    )


def modulate(
    w: Workload, multiplier: RateEnvelope, rng: np.random.Generator | None = None
) -> Workload:
    """`w` with its rate multiplied, bin by bin, by `multiplier.rate_rps` (dimensionless).

    Used to lay a synthetic shape (a flash crowd, on/off batches) over a real trace.
    Envelopes multiply each bin (and each client) by the multiplier averaged over the
    bin; request traces are thinned/replicated per request as in `scale_to_mean`.

    Raises:
        ValueError: The multiplier is shorter than `w`, or has missing bins.
    """
    if multiplier.duration_s < w.duration_s * (1 - _EDGE_TOL) or multiplier.missing.any():
        raise ValueError(
            f"the multiplier spans {multiplier.duration_s:g} s with "
            f"{int(multiplier.missing.sum())} missing bins; it must cover the workload's "
            f"{w.duration_s:g} s completely"
        )
    if isinstance(w, RateEnvelope):
        factor, _ = rate_series(slice_window(multiplier, 0.0, w.duration_s), w.bin_s)
        factor = factor[: len(w.rate_rps)]
        clients = w.clients
        if clients is not None:
            clients = replace(
                clients,
                rate_rps=clients.rate_rps * factor[None, :],
                scale=clients.scale / np.where(factor > 0, factor, 1.0)[None, :],
            )
        return replace(w, rate_rps=w.rate_rps * factor, clients=clients)
    index = np.minimum(
        (w.arrival_s / multiplier.bin_s).astype(np.int64), len(multiplier.rate_rps) - 1
    )
    return _resample(w, multiplier.rate_rps[index], rng)


def concat(a: Workload, b: Workload) -> Workload:
    """`b` appended after `a` (b's t = 0 becomes a's end). Keeps a's epoch and tokens.

    Raises:
        ValueError: Different kinds, bin widths, client sets, or token presence.
    """
    if isinstance(a, RateEnvelope) and isinstance(b, RateEnvelope):
        if not np.isclose(a.bin_s, b.bin_s):
            raise ValueError(f"cannot concat envelopes with bins {a.bin_s:g} s and {b.bin_s:g} s")
        clients = None
        if (a.clients is None) != (b.clients is None):
            raise ValueError("cannot concat an envelope with client fits and one without")
        if a.clients is not None and b.clients is not None:
            if a.clients.rate_rps.shape[0] != b.clients.rate_rps.shape[0]:
                raise ValueError("cannot concat envelopes with different numbers of clients")
            clients = ClientFits(
                rate_rps=np.concatenate((a.clients.rate_rps, b.clients.rate_rps), axis=1),
                pattern=np.concatenate((a.clients.pattern, b.clients.pattern), axis=1),
                shape=np.concatenate((a.clients.shape, b.clients.shape), axis=1),
                scale=np.concatenate((a.clients.scale, b.clients.scale), axis=1),
                names=a.clients.names,
            )
        return replace(
            a,
            rate_rps=np.concatenate((a.rate_rps, b.rate_rps)),
            missing=np.concatenate((a.missing, b.missing)),
            clients=clients,
            source=f"{a.source}+{b.source}",
        )
    if isinstance(a, RequestTrace) and isinstance(b, RequestTrace):
        if (a.input_tokens is None) != (b.input_tokens is None) or (a.output_tokens is None) != (
            b.output_tokens is None
        ):
            raise ValueError("cannot concat a request trace with tokens and one without")

        def join(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
            return None if x is None or y is None else np.concatenate((x, y))

        shift = a.duration_s
        return replace(
            a,
            arrival_s=np.concatenate((a.arrival_s, b.arrival_s + shift)),
            duration_s=a.duration_s + b.duration_s,
            input_tokens=join(a.input_tokens, b.input_tokens),
            output_tokens=join(a.output_tokens, b.output_tokens),
            missing=a.missing + tuple((s + shift, e + shift) for s, e in b.missing),
            source=f"{a.source}+{b.source}",
        )
    raise ValueError(
        f"cannot concat a {type(a).__name__} and a {type(b).__name__}; convert one first "
        "(to_requests or rate_series)"
    )


def rate_series(w: Workload, bin_s: float) -> tuple[FloatArray, BoolArray]:
    """Mean rate per bin of width `bin_s` and the missing mask, over the whole duration.

    Rates are averaged over the observed part of each bin; a bin less than half
    observed is missing (its rate NaN). The last bin may be partial. Used by the
    fluid engine and the oracle.
    """
    if not bin_s > 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s}")
    duration_s = w.duration_s
    n_bins = max(int(np.ceil(duration_s / bin_s - _EDGE_TOL)), 1)
    edges = np.minimum(np.arange(n_bins + 1) * bin_s, duration_s)
    if isinstance(w, RateEnvelope):
        src_edges = np.arange(len(w.rate_rps) + 1) * w.bin_s
        seen = (~w.missing).astype(np.float64)
        volume = np.concatenate(([0.0], np.cumsum(np.where(w.missing, 0.0, w.rate_rps) * w.bin_s)))
        cover = np.concatenate(([0.0], np.cumsum(seen * w.bin_s)))
        count = np.diff(np.interp(edges, src_edges, volume))
        observed = np.diff(np.interp(edges, src_edges, cover))
    else:
        count = np.histogram(w.arrival_s, bins=edges)[0].astype(np.float64)
        observed = np.diff(edges)
        for start, end in w.missing:
            overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
            observed = observed - overlap
    width = np.diff(edges)
    missing = observed < 0.5 * width
    rate = np.full(n_bins, np.nan)
    rate[~missing] = count[~missing] / observed[~missing]
    return rate, missing
