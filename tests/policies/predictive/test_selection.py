"""Rolling-origin selection: the model that fits the structure wins the backtest."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from policies.predictive.forecasters import ModelName, Seasonality
from policies.predictive.selection import select_forecaster
from sim.errors import FitError

HOURS = np.arange(24 * 8, dtype=float)
#: SARIMAX with two harmonics and AR(1) errors keeps the fits fast.
SEASON = Seasonality(24, fourier_daily=2, sarimax_order=(1, 0, 0))
ALL: tuple[ModelName, ...] = ("ets-add", "ets-mul", "sarimax", "seasonal-naive")


def office_hours() -> np.ndarray:
    """A square daily wave: no handful of harmonics can draw it, seasonal states can."""
    rng = np.random.default_rng(3)
    level = np.where((HOURS % 24 >= 9) & (HOURS % 24 < 17), 64.0, 24.0)
    return level * (1.0 + 0.02 * rng.standard_normal(len(HOURS)))


def smooth_with_ar_noise() -> np.ndarray:
    """A sinusoid plus persistent AR(1) noise: ARMA errors predict the noise, ETS cannot."""
    rng = np.random.default_rng(3)
    noise = np.zeros(len(HOURS))
    shocks = rng.standard_normal(len(HOURS))
    for i in range(1, len(HOURS)):
        noise[i] = 0.85 * noise[i - 1] + shocks[i]
    return 40.0 * (1.0 + 0.5 * np.sin(2 * np.pi * HOURS / 24)) + 4.0 * noise


def test_ets_wins_on_a_non_sinusoidal_season() -> None:
    selection = select_forecaster(office_hours(), ALL, 48, 2, SEASON)
    assert selection.winner.name.startswith("ets-")
    assert selection.winner.mape < 0.03
    sarimax = next(s for s in selection.scores if s.name == "sarimax")
    assert sarimax.mase > 2 * selection.winner.mase


def test_sarimax_wins_on_autocorrelated_noise() -> None:
    selection = select_forecaster(smooth_with_ar_noise(), ALL, 48, 2, SEASON)
    assert selection.winner.name == "sarimax"
    naive = next(s for s in selection.scores if s.name == "seasonal-naive")
    assert selection.winner.mase < 0.7 * naive.mase
    assert selection.winner.mape < 0.12


def test_error_quantiles_give_headroom() -> None:
    selection = select_forecaster(smooth_with_ar_noise(), ("sarimax",), 48, 2, SEASON)
    q90, q50 = selection.ratio_quantile(0.9), selection.ratio_quantile(0.5)
    assert q90.shape == (2,)
    assert np.all(q90 > q50) and np.all(q90 > 1.0)
    np.testing.assert_allclose(selection.ratio_quantile(None), [1.0, 1.0])


def test_a_failing_candidate_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    y = office_hours()
    y[10] = 0.0  # multiplicative seasonality cannot take a zero
    with caplog.at_level(logging.WARNING):
        selection = select_forecaster(y, ("ets-mul", "seasonal-naive"), 48, 2, SEASON)
    assert selection.winner.name == "seasonal-naive"
    assert selection.dropped[0][0] == "ets-mul"
    assert "ets-mul dropped" in caplog.text


def test_no_candidate_left_is_a_fit_error() -> None:
    y = office_hours()
    y[10] = 0.0
    with pytest.raises(FitError, match="no forecaster"):
        select_forecaster(y, ("ets-mul",), 48, 2, SEASON)
