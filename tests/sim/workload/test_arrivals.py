"""Envelope-to-requests sampling: counts, burstiness, gaps, tokens, same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.workload import (
    ClientFits,
    RateEnvelope,
    RequestTrace,
    TokenProfile,
    load_trace,
    mean_rps,
    scale_to_mean,
    slice_window,
    to_requests,
)
from sim.workload.model import ArrivalPattern

WINDOW_S = 600.0


def one_client(pattern: ArrivalPattern, shape: float, rate_rps: float, n_bins: int) -> RateEnvelope:
    fits = ClientFits(
        rate_rps=np.full((1, n_bins), rate_rps),
        pattern=np.full((1, n_bins), pattern, dtype=np.int8),
        shape=np.full((1, n_bins), shape),
        scale=np.full((1, n_bins), 0.01),  # unused: the mean gap is 1 / rate
    )
    return RateEnvelope(
        bin_s=WINDOW_S,
        rate_rps=np.full(n_bins, rate_rps),
        missing=np.zeros(n_bins, dtype=bool),
        clients=fits,
    )


def within_window_gaps(arrival_s: np.ndarray) -> np.ndarray:
    window = np.floor(arrival_s / WINDOW_S)
    gaps = np.diff(arrival_s)
    return gaps[np.diff(window) == 0]


@pytest.mark.parametrize(
    ("pattern", "shape", "expected_cv"),
    [
        (ArrivalPattern.GAMMA, 0.25, 2.0),  # CV = 1 / sqrt(k)
        (ArrivalPattern.WEIBULL, 0.5, np.sqrt(5.0)),  # sqrt(G(1+2/k) / G(1+1/k)^2 - 1)
        (ArrivalPattern.POISSON, 0.0, 1.0),
    ],
    ids=["gamma", "weibull", "poisson"],
)
def test_fitted_client_matches_rate_and_burstiness(
    rng: np.random.Generator, pattern: ArrivalPattern, shape: float, expected_cv: float
) -> None:
    env = one_client(pattern, shape, rate_rps=2.0, n_bins=200)
    trace = to_requests(env, rng)
    counts = np.histogram(trace.arrival_s, bins=np.arange(201) * WINDOW_S)[0]
    assert counts.mean() == pytest.approx(2.0 * WINDOW_S, rel=0.02)
    gaps = within_window_gaps(trace.arrival_s)
    assert gaps.mean() == pytest.approx(0.5, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(expected_cv, rel=0.07)


def test_sparse_bursty_client_has_the_exact_expected_count(rng: np.random.Generator) -> None:
    """The stationary start makes E[count] = rate x window even at one request a window.

    An ordinary renewal process started at each window edge would give about
    1 + (CV^2 - 1) / 2 = 2.5 here instead of 1.
    """
    env = one_client(ArrivalPattern.GAMMA, 0.25, rate_rps=1.0 / WINDOW_S, n_bins=20_000)
    trace = to_requests(env, rng)
    assert trace.n_requests / 20_000 == pytest.approx(1.0, rel=0.06)


def test_poisson_envelope_without_clients(rng: np.random.Generator) -> None:
    env = RateEnvelope(
        bin_s=60.0, rate_rps=np.array([5.0, 0.0, 20.0] * 50), missing=np.zeros(150, bool)
    )
    trace = to_requests(env, rng)
    counts = np.histogram(trace.arrival_s, bins=np.arange(151) * 60.0)[0].reshape(50, 3)
    assert counts[:, 1].sum() == 0
    assert counts[:, 0].mean() == pytest.approx(300, rel=0.03)
    assert counts[:, 2].mean() == pytest.approx(1200, rel=0.02)
    # Poisson counts: variance equals the mean.
    assert counts[:, 2].var(ddof=1) == pytest.approx(1200, rel=0.5)


def test_missing_bins_get_no_arrivals_and_are_carried(rng: np.random.Generator) -> None:
    env = one_client(ArrivalPattern.GAMMA, 0.5, rate_rps=3.0, n_bins=6)
    missing = np.array([False, True, True, False, False, True])
    rate = env.rate_rps.copy()
    rate[missing] = np.nan
    env = RateEnvelope(bin_s=WINDOW_S, rate_rps=rate, missing=missing, clients=env.clients)
    trace = to_requests(env, rng)
    assert trace.missing == ((600.0, 1800.0), (3000.0, 3600.0))
    inside = (trace.arrival_s >= 600) & (trace.arrival_s < 1800) | (trace.arrival_s >= 3000)
    assert not inside.any()
    assert trace.duration_s == env.duration_s
    assert mean_rps(trace) == pytest.approx(3.0, rel=0.15)


def test_same_seed_same_requests_different_seed_different(fixtures_dir: Path) -> None:
    env = load_trace(fixtures_dir / "servegen_m_small_2d", "servegen")
    hour = scale_to_mean(slice_window(env, 72000.0, 75600.0), 50.0)
    one = to_requests(hour, np.random.default_rng(3))
    two = to_requests(hour, np.random.default_rng(3))
    three = to_requests(hour, np.random.default_rng(4))
    np.testing.assert_array_equal(one.arrival_s, two.arrival_s)
    assert one.input_tokens is not None and two.input_tokens is not None
    np.testing.assert_array_equal(one.input_tokens, two.input_tokens)
    assert not np.array_equal(one.arrival_s, three.arrival_s)
    assert np.all(np.diff(one.arrival_s) >= 0)
    assert mean_rps(one) == pytest.approx(50.0, rel=0.1)


def test_servegen_arrivals_are_burstier_than_poisson(fixtures_dir: Path) -> None:
    env = load_trace(fixtures_dir / "servegen_m_small_2d", "servegen")
    hour = scale_to_mean(slice_window(env, 72000.0, 75600.0), 50.0)
    assert isinstance(hour, RateEnvelope)
    bursty = to_requests(hour, np.random.default_rng(0))
    flat = RateEnvelope(bin_s=hour.bin_s, rate_rps=hour.rate_rps, missing=hour.missing)
    poisson = to_requests(flat, np.random.default_rng(0))

    def per_second_dispersion(trace: RequestTrace) -> float:
        """Variance / mean of per-second counts inside each 600 s window, averaged."""
        counts = np.histogram(trace.arrival_s, bins=np.arange(3601.0))[0].reshape(6, 600)
        return float(np.mean(counts.var(axis=1) / counts.mean(axis=1)))

    assert per_second_dispersion(poisson) == pytest.approx(1.0, abs=0.2)
    assert per_second_dispersion(bursty) > 2.0


def test_tokens_follow_the_profile(rng: np.random.Generator) -> None:
    profile = TokenProfile(input_mean=800.0, input_cv=1.2, output_mean=150.0, output_cv=0.5)
    inputs, outputs = profile.sample(rng, 200_000)
    assert inputs.mean() == pytest.approx(800.0, rel=0.02)
    assert outputs.mean() == pytest.approx(150.0, rel=0.02)
    assert outputs.std() / outputs.mean() == pytest.approx(0.5, rel=0.05)
    assert inputs.min() >= 1


def test_request_trace_without_tokens_gets_them_drawn(rng: np.random.Generator) -> None:
    trace = RequestTrace(arrival_s=np.linspace(0.0, 99.0, 1000), duration_s=100.0)
    filled = to_requests(trace, rng, TokenProfile(input_mean=50.0, output_mean=10.0))
    assert filled.input_tokens is not None and filled.output_tokens is not None
    assert filled.input_tokens.mean() == pytest.approx(50.0, rel=0.15)
    np.testing.assert_array_equal(filled.arrival_s, trace.arrival_s)
    assert to_requests(filled, rng) is filled
