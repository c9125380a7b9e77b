"""Demand aggregation: bins, gaps interpolated and flagged, partial bins dropped."""

from __future__ import annotations

import numpy as np
import pytest

from policies.predictive.series import demand_series
from sim.errors import FitError
from sim.workload.model import RateEnvelope, RequestTrace


def test_envelope_is_averaged_into_wider_bins() -> None:
    rates = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    env = RateEnvelope(bin_s=600.0, rate_rps=rates, missing=np.zeros(5, bool), epoch_s=0.0)
    series = demand_series(env, 1200.0)
    # The trailing half bin (9.0 alone) is dropped: its mean would be biased.
    np.testing.assert_allclose(series.rate_rps, [2.0, 6.0])
    assert not series.missing.any()


def test_missing_bins_are_interpolated_and_flagged() -> None:
    rates = np.array([10.0, np.nan, np.nan, 40.0])
    env = RateEnvelope(bin_s=600.0, rate_rps=rates, missing=np.isnan(rates))
    series = demand_series(env, 600.0)
    np.testing.assert_allclose(series.rate_rps, [10.0, 20.0, 30.0, 40.0])
    assert series.missing.tolist() == [False, True, True, False]


def test_request_trace_counts_arrivals_per_bin() -> None:
    arrivals = np.concatenate([np.linspace(0, 59, 120), np.linspace(60, 119, 60)])
    trace = RequestTrace(arrival_s=arrivals, duration_s=120.0)
    series = demand_series(trace, 60.0)
    np.testing.assert_allclose(series.rate_rps, [2.0, 1.0])


def test_all_missing_history_is_a_fit_error() -> None:
    env = RateEnvelope(bin_s=600.0, rate_rps=np.full(4, np.nan), missing=np.ones(4, bool))
    with pytest.raises(FitError, match="every bin"):
        demand_series(env, 600.0)


def test_history_shorter_than_a_bin_is_a_fit_error() -> None:
    env = RateEnvelope(bin_s=60.0, rate_rps=np.ones(3), missing=np.zeros(3, bool))
    with pytest.raises(FitError, match="shorter than one"):
        demand_series(env, 600.0)


def test_tail_caps_length_and_moves_epoch() -> None:
    env = RateEnvelope(
        bin_s=600.0, rate_rps=np.arange(1.0, 7.0), missing=np.zeros(6, bool), epoch_s=0.0
    )
    tail = demand_series(env, 600.0).tail(2)
    np.testing.assert_allclose(tail.rate_rps, [5.0, 6.0])
    assert tail.epoch_s == 2400.0
