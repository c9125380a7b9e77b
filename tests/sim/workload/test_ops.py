"""Operations on workloads: invariants (hypothesis) and worked examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.workload import (
    ClientFits,
    RateEnvelope,
    RequestTrace,
    concat,
    load_trace,
    mean_rps,
    modulate,
    rate_series,
    scale_to_mean,
    slice_window,
)
from sim.workload.model import ArrivalPattern


@st.composite
def request_traces(draw: st.DrawFn) -> RequestTrace:
    duration_s = draw(st.floats(10.0, 1000.0))
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    gen = np.random.default_rng(seed)
    arrival_s = np.sort(gen.random(n) * duration_s)
    tokens = gen.integers(1, 500, size=n)
    return RequestTrace(
        arrival_s=arrival_s, duration_s=duration_s, input_tokens=tokens, output_tokens=tokens
    )


@st.composite
def envelopes(draw: st.DrawFn) -> RateEnvelope:
    n = draw(st.integers(1, 60))
    bin_s = draw(st.sampled_from([1.0, 60.0, 600.0]))
    rate = st.one_of(st.just(0.0), st.floats(1e-6, 100.0))
    rates = np.array(draw(st.lists(rate, min_size=n, max_size=n)))
    missing = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    missing[draw(st.integers(0, n - 1))] = False  # at least one observed bin
    rates[missing] = np.nan
    return RateEnvelope(bin_s=bin_s, rate_rps=rates, missing=missing)


@settings(max_examples=60, deadline=None)
@given(trace=request_traces(), cut=st.floats(0.05, 0.95))
def test_slicing_a_trace_in_two_partitions_its_requests(trace: RequestTrace, cut: float) -> None:
    split_s = cut * trace.duration_s
    left = slice_window(trace, 0.0, split_s)
    right = slice_window(trace, split_s, trace.duration_s)
    assert isinstance(left, RequestTrace) and isinstance(right, RequestTrace)
    assert left.n_requests + right.n_requests == trace.n_requests
    assert np.all(right.arrival_s >= 0) and np.all(right.arrival_s < right.duration_s)
    joined = concat(left, right)
    assert isinstance(joined, RequestTrace)
    np.testing.assert_allclose(joined.arrival_s, trace.arrival_s, atol=1e-9)
    assert joined.duration_s == pytest.approx(trace.duration_s)
    assert mean_rps(joined) == pytest.approx(mean_rps(trace))


@settings(max_examples=60, deadline=None)
@given(trace=request_traces(), target=st.floats(0.01, 20.0), seed=st.integers(0, 1000))
def test_scaling_a_trace_hits_the_target_within_one_request(
    trace: RequestTrace, target: float, seed: int
) -> None:
    scaled = scale_to_mean(trace, target, np.random.default_rng(seed))
    assert isinstance(scaled, RequestTrace)
    assert abs(scaled.n_requests - target * trace.duration_s) <= 1.0
    assert scaled.duration_s == trace.duration_s
    assert np.all(np.diff(scaled.arrival_s) >= 0)
    assert np.all((scaled.arrival_s >= 0) & (scaled.arrival_s < scaled.duration_s))
    assert scaled.input_tokens is not None and len(scaled.input_tokens) == scaled.n_requests


@settings(max_examples=60, deadline=None)
@given(env=envelopes(), target=st.floats(0.01, 1000.0))
def test_scaling_an_envelope_sets_the_mean_and_keeps_gaps(env: RateEnvelope, target: float) -> None:
    if mean_rps(env) == 0:
        with pytest.raises(ValueError, match="zero mean"):
            scale_to_mean(env, target)
        return
    scaled = scale_to_mean(env, target)
    assert isinstance(scaled, RateEnvelope)
    assert mean_rps(scaled) == pytest.approx(target, rel=1e-9)
    np.testing.assert_array_equal(scaled.missing, env.missing)


@settings(max_examples=60, deadline=None)
@given(a=envelopes(), b=envelopes())
def test_concat_envelopes_weights_means_by_observed_time(a: RateEnvelope, b: RateEnvelope) -> None:
    b = RateEnvelope(bin_s=a.bin_s, rate_rps=b.rate_rps, missing=b.missing)
    joined = concat(a, b)
    assert isinstance(joined, RateEnvelope)
    na, nb = int((~a.missing).sum()), int((~b.missing).sum())
    expected = (mean_rps(a) * na + mean_rps(b) * nb) / (na + nb)
    assert mean_rps(joined) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert joined.duration_s == pytest.approx(a.duration_s + b.duration_s)
    left = slice_window(joined, 0.0, a.duration_s)
    assert isinstance(left, RateEnvelope)
    np.testing.assert_array_equal(left.missing, a.missing)


@settings(max_examples=60, deadline=None)
@given(env=envelopes(), factor=st.sampled_from([1, 2, 3, 5]))
def test_rate_series_preserves_volume_when_coarsening(env: RateEnvelope, factor: int) -> None:
    rate, missing = rate_series(env, env.bin_s * factor)
    if not env.missing.any():
        observed_volume = float(np.sum(env.rate_rps) * env.bin_s)
        widths = np.diff(np.minimum(np.arange(len(rate) + 1) * env.bin_s * factor, env.duration_s))
        assert float(np.sum(rate * widths)) == pytest.approx(observed_volume, rel=1e-9, abs=1e-9)
    assert np.all(np.isnan(rate) == missing)


def test_rate_series_of_a_trace_counts_per_bin_and_masks_gaps() -> None:
    trace = RequestTrace(
        arrival_s=np.array([0.5, 1.0, 1.5, 30.0, 95.0]),
        duration_s=120.0,
        missing=((60.0, 90.0),),
    )
    rate, missing = rate_series(trace, 60.0)
    assert missing.tolist() == [False, False]
    # Second bin observed for 30 s (60-90 s missing), one request: 1/30 rps.
    np.testing.assert_allclose(rate, [4 / 60, 1 / 30])
    rate, missing = rate_series(trace, 30.0)
    assert missing.tolist() == [False, False, True, False]
    assert mean_rps(trace) == pytest.approx(5 / 90)


def test_envelope_slice_snaps_outward_to_whole_bins_and_moves_the_epoch() -> None:
    env = RateEnvelope(
        bin_s=600.0,
        rate_rps=np.arange(6, dtype=float),
        missing=np.zeros(6, dtype=bool),
        epoch_s=1000.0,
    )
    part = slice_window(env, 700.0, 1500.0)
    assert isinstance(part, RateEnvelope)
    assert part.rate_rps.tolist() == [1.0, 2.0]
    assert part.epoch_s == 1600.0
    with pytest.raises(ValueError, match="not inside the workload's span"):
        slice_window(env, 0.0, 4000.0)


def test_scaling_servegen_scales_every_client(fixtures_dir: Path) -> None:
    env = load_trace(fixtures_dir / "servegen_m_small_2d", "servegen")
    scaled = scale_to_mean(env, 10.0)
    assert isinstance(env, RateEnvelope) and isinstance(scaled, RateEnvelope)
    assert env.clients is not None and scaled.clients is not None
    factor = 10.0 / mean_rps(env)
    np.testing.assert_allclose(scaled.clients.rate_rps, env.clients.rate_rps * factor)
    np.testing.assert_allclose(scaled.rate_rps, scaled.clients.rate_rps.sum(axis=0))
    np.testing.assert_array_equal(scaled.clients.pattern, env.clients.pattern)


def test_scale_to_mean_of_a_trace_is_deterministic_per_seed(fixtures_dir: Path) -> None:
    trace = load_trace(fixtures_dir / "azure_conv.csv", "azure-llm")
    one = scale_to_mean(trace, 12.0, np.random.default_rng(7))
    two = scale_to_mean(trace, 12.0, np.random.default_rng(7))
    other = scale_to_mean(trace, 12.0, np.random.default_rng(8))
    assert isinstance(one, RequestTrace) and isinstance(two, RequestTrace)
    assert isinstance(other, RequestTrace)
    np.testing.assert_array_equal(one.arrival_s, two.arrival_s)
    assert not np.array_equal(one.arrival_s, other.arrival_s)
    assert mean_rps(one) == pytest.approx(12.0, abs=1 / trace.duration_s)
    # The time profile survives: per-10-minute rates keep their shape.
    before, _ = rate_series(trace, 600.0)
    after, _ = rate_series(one, 600.0)
    np.testing.assert_allclose(after / after.mean(), before / before.mean(), rtol=0.05)


def test_modulate_multiplies_rates_bin_by_bin() -> None:
    env = RateEnvelope(bin_s=60.0, rate_rps=np.full(4, 2.0), missing=np.zeros(4, dtype=bool))
    multiplier = RateEnvelope(
        bin_s=30.0, rate_rps=np.array([1, 3, 1, 1, 2, 2, 1, 1.0]), missing=np.zeros(8, bool)
    )
    out = modulate(env, multiplier)
    assert isinstance(out, RateEnvelope)
    np.testing.assert_allclose(out.rate_rps, [4.0, 2.0, 4.0, 2.0])
    trace = RequestTrace(arrival_s=np.arange(0.0, 240.0, 0.5), duration_s=240.0)
    more = modulate(trace, multiplier, np.random.default_rng(0))
    assert isinstance(more, RequestTrace)
    counts, _ = np.histogram(more.arrival_s, bins=[0, 30, 60, 120, 180, 240])
    assert counts.tolist() == [60, 180, 120, 240, 120]


def test_concat_rejects_mismatched_workloads() -> None:
    env = RateEnvelope(bin_s=60.0, rate_rps=np.ones(2), missing=np.zeros(2, dtype=bool))
    trace = RequestTrace(arrival_s=np.array([1.0]), duration_s=2.0)
    with pytest.raises(ValueError, match="RateEnvelope and a RequestTrace"):
        concat(env, trace)
    other = RateEnvelope(bin_s=30.0, rate_rps=np.ones(2), missing=np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="bins"):
        concat(env, other)
    fits = ClientFits(
        rate_rps=np.ones((1, 2)),
        pattern=np.full((1, 2), ArrivalPattern.POISSON, dtype=np.int8),
        shape=np.ones((1, 2)),
        scale=np.ones((1, 2)),
    )
    with pytest.raises(ValueError, match="client fits"):
        concat(
            env, RateEnvelope(bin_s=60.0, rate_rps=np.ones(2), missing=env.missing, clients=fits)
        )
