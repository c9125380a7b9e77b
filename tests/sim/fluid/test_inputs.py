"""Per-second arrivals and service strata: what the fluid engine reads from a workload."""

from __future__ import annotations

import numpy as np
import pytest

from sim.capacity.service import ExponentialService, TokenService
from sim.engine import token_profile
from sim.fluid.inputs import (
    block_strata,
    client_idc,
    per_second_arrivals,
    sampled_envelope_counts,
    service_strata,
)
from sim.workload.model import RateEnvelope, RequestTrace, TokenProfile

from .conftest import poisson_envelope


def test_trace_counts_every_arrival_in_its_second() -> None:
    trace = RequestTrace(arrival_s=np.array([0.1, 0.9, 1.0, 4.5]), duration_s=5.0)
    inputs = per_second_arrivals(trace)
    assert inputs.arrivals.tolist() == [2.0, 1.0, 0.0, 0.0, 1.0]
    assert not inputs.missing.any()


def test_trace_gaps_are_missing_not_zero() -> None:
    trace = RequestTrace(arrival_s=np.array([0.5]), duration_s=10.0, missing=((2.0, 5.0),))
    assert per_second_arrivals(trace).missing.tolist() == [False, False] + [True] * 3 + [False] * 5


def test_envelope_mean_counts_integrate_the_rate_for_any_bin_width() -> None:
    env = RateEnvelope(
        bin_s=2.5, rate_rps=np.array([4.0, 0.0, 2.0]), missing=np.array([False, True, False])
    )
    inputs = per_second_arrivals(env)
    assert inputs.arrivals.sum() == pytest.approx(4.0 * 2.5 + 2.0 * 2.5)
    assert inputs.missing.tolist() == [False, False, True, True, True, False, False, False]


def test_sampled_counts_have_the_envelope_mean_and_repeat_per_seed() -> None:
    env = poisson_envelope(50.0, 3600.0)
    means = per_second_arrivals(env).arrivals
    first = sampled_envelope_counts(env, means, np.random.default_rng(7))
    again = sampled_envelope_counts(env, means, np.random.default_rng(7))
    other = sampled_envelope_counts(env, means, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.mean() == pytest.approx(50.0, rel=0.01)
    assert first.var() / first.mean() == pytest.approx(1.0, abs=0.1)  # Poisson without clients


def test_client_dispersion_is_one_without_clients() -> None:
    assert np.all(client_idc(poisson_envelope(5.0, 600.0)) == 1.0)


def test_strata_weights_sum_to_one_and_keep_the_mean() -> None:
    service = TokenService()
    rng = np.random.default_rng(3)
    inputs = rng.lognormal(6.5, 0.8, 5000).astype(np.int64)
    outputs = rng.lognormal(5.0, 0.7, 5000).astype(np.int64)
    trace = RequestTrace(
        arrival_s=np.sort(rng.uniform(0, 600, 5000)),
        duration_s=600.0,
        input_tokens=inputs,
        output_tokens=outputs,
    )
    strata = service_strata(service, trace, token_profile(trace))
    assert strata.weight.sum() == pytest.approx(1.0)
    exact = np.mean([service.service_s(i, o, 16) for i, o in zip(inputs, outputs, strict=True)])
    assert strata.mean_s(16.0) == pytest.approx(exact, rel=1e-9)


def test_exponential_strata_have_the_exponential_mean() -> None:
    strata = service_strata(
        ExponentialService(mean_s=2.0),
        poisson_envelope(1.0, 60.0),
        TokenProfile(),
    )
    assert strata.mean_s(1.0) == pytest.approx(2.0, rel=1e-9)
    assert strata.scv(1.0) == pytest.approx(1.0, abs=0.05)  # stratified: slightly below 1


def test_block_strata_describe_each_minutes_own_requests() -> None:
    # minute 0: short answers, minute 1: long ones
    trace = RequestTrace(
        arrival_s=np.concatenate([np.linspace(0, 59, 60), np.linspace(60, 119, 60)]),
        duration_s=120.0,
        input_tokens=np.full(120, 100, dtype=np.int64),
        output_tokens=np.concatenate([np.full(60, 10), np.full(60, 500)]).astype(np.int64),
    )
    service = TokenService()
    blocks = block_strata(service, trace, token_profile(trace), 120, 60)
    assert blocks.shape[0] == 2
    for b, out_tokens in ((0, 10), (1, 500)):
        weight, base, slope = blocks[b]
        assert weight.sum() == pytest.approx(1.0)
        assert weight @ slope == pytest.approx(service.decode_s_per_token * out_tokens)
        assert weight @ base == pytest.approx(service.prefill_s_per_1k_tokens * 0.1)


def test_block_strata_of_a_trace_without_requests_are_the_global_ones() -> None:
    """A window with no requests (a quiet slice of a trace) has no sizes of its own:
    every block keeps the global strata (the token profile's grid)."""
    trace = RequestTrace(
        arrival_s=np.zeros(0),
        duration_s=600.0,
        input_tokens=np.zeros(0, dtype=np.int64),
        output_tokens=np.zeros(0, dtype=np.int64),
    )
    service = TokenService()
    profile = token_profile(trace)
    blocks = block_strata(service, trace, profile, 600, 60)
    glob = service_strata(service, trace, profile).packed()
    assert blocks.shape[0] == 10
    for block in blocks:
        assert np.array_equal(block[:, : glob.shape[1]], glob)
