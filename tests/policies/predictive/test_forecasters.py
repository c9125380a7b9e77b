"""Forecasters: online updates equal statsmodels' own filtering; fits fail loudly."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from policies.predictive.forecasters import (
    EtsForecaster,
    SarimaxForecaster,
    Seasonality,
    SeasonalNaiveForecaster,
    fit_forecaster,
    fourier_terms,
)
from sim.errors import FitError
from sim.workload.model import FloatArray


@pytest.mark.parametrize("seasonal", ["add", "mul"])
def test_ets_online_update_matches_statsmodels_refilter(
    seasonal: str, make_series: Callable[..., FloatArray]
) -> None:
    y = make_series(days=6)
    train, extra = y[:120], y[120:130]
    ours = EtsForecaster(train, seasonal, 24)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(
            train,
            trend="add",
            damped_trend=True,
            seasonal=seasonal,
            seasonal_periods=24,
            initialization_method="heuristic",
        ).fit()
    np.testing.assert_allclose(ours.forecast(30), fit.forecast(30), rtol=1e-9)
    p = fit.params
    refit = ExponentialSmoothing(
        y[:130],
        trend="add",
        damped_trend=True,
        seasonal=seasonal,
        seasonal_periods=24,
        initialization_method="known",
        initial_level=p["initial_level"],
        initial_trend=p["initial_trend"],
        initial_seasonal=p["initial_seasons"],
    ).fit(
        smoothing_level=p["smoothing_level"],
        smoothing_trend=p["smoothing_trend"],
        smoothing_seasonal=p["smoothing_seasonal"],
        damping_trend=p["damping_trend"],
        optimized=False,
    )
    ours.append(extra)
    np.testing.assert_allclose(ours.forecast(5), refit.forecast(5), rtol=1e-9)


def test_sarimax_extend_equals_statsmodels_append(make_series: Callable[..., FloatArray]) -> None:
    y = make_series(days=6)
    season = Seasonality(24, fourier_daily=2, sarimax_order=(1, 0, 0))
    model = fit_forecaster("sarimax", y[:120], season)
    assert isinstance(model, SarimaxForecaster) and model.converged
    exog = fourier_terms(np.arange(120, 130), season)
    reference = model._result.append(y[120:125], exog=exog[:5])
    model.append(y[120:125])
    np.testing.assert_allclose(model.forecast(5), reference.forecast(5, exog=exog[5:]), rtol=1e-6)
    # And it forecasts the held-out day within 20%.
    model.append(y[125:126])
    assert np.all(np.abs(model.forecast(18) - y[126:144]) / y[126:144] < 0.2)


def test_seasonal_naive_repeats_last_season() -> None:
    y = np.arange(48, dtype=float)
    model = SeasonalNaiveForecaster(y, 24)
    np.testing.assert_allclose(model.forecast(3), [24.0, 25.0, 26.0])
    model.append(np.array([100.0]))
    np.testing.assert_allclose(model.forecast(1), [25.0])
    np.testing.assert_allclose(model.forecast(24)[-1], 100.0)


def test_too_short_for_two_seasons_is_a_fit_error() -> None:
    with pytest.raises(FitError, match="two seasonal periods"):
        fit_forecaster("ets-add", np.ones(30), Seasonality(24))


def test_ets_mul_rejects_zero_demand() -> None:
    y = np.r_[np.zeros(5), np.ones(67)]
    with pytest.raises(FitError, match="strictly positive"):
        fit_forecaster("ets-mul", y, Seasonality(24))
