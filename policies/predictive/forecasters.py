"""Demand forecasters with an online state: fit once, then filter new bins cheaply.

Three families, all fitted with statsmodels on mean demand per bin:

- `ets-add` / `ets-mul`: Holt-Winters exponential smoothing (additive damped
  trend, additive or multiplicative seasonality; `statsmodels.tsa.holtwinters.
  ExponentialSmoothing`, heuristic initialisation, which needs two full seasonal
  periods). Online updates run the same recursions as statsmodels' `_predict`
  with the fitted smoothing parameters, so one new bin costs microseconds; a test
  checks the result against statsmodels' own refiltering.
- `sarimax`: ARMA errors around daily (and, with two weeks of history, weekly)
  Fourier terms (dynamic harmonic regression, Hyndman & Athanasopoulos, FPP3
  section 12.1): a seasonal ARIMA with a 144-bin season is too slow to fit, the
  Fourier form is not. Online updates use `SARIMAXResults.extend` (the Kalman
  filter continues from the fitted state with fixed parameters).
- `seasonal-naive`: the value one season ago; the baseline the others must beat.

A fit that statsmodels reports as not converged marks the forecaster
`converged = False`; the selection drops it with a logged warning.

statsmodels is imported by the fits that use it, not with this module: it costs
about two seconds, and a run whose policies fit no model (or only the seasonal
naive one) should not pay for it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from sim.errors import FitError
from sim.workload.model import FloatArray

ModelName = Literal["ets-add", "ets-mul", "sarimax", "seasonal-naive"]
MODEL_NAMES: tuple[ModelName, ...] = ("ets-add", "ets-mul", "sarimax", "seasonal-naive")


@dataclass(frozen=True)
class Seasonality:
    """Seasonal structure of a series in bins.

    Attributes:
        daily_bins: Bins per day.
        weekly: True when the history is long enough (two weeks of training data)
            for a weekly season: ETS then uses the weekly period, SARIMAX adds
            weekly Fourier terms to the daily ones.
        fourier_daily: Harmonics of the daily cycle (SARIMAX).
        fourier_weekly: Harmonics of the weekly cycle (SARIMAX, when weekly).
        sarimax_order: (p, d, q) of the ARMA errors.
    """

    daily_bins: int
    weekly: bool = False
    fourier_daily: int = 4
    fourier_weekly: int = 3
    sarimax_order: tuple[int, int, int] = (1, 0, 1)

    @property
    def period_bins(self) -> int:
        return self.daily_bins * (7 if self.weekly else 1)


class Forecaster(Protocol):
    """A fitted model that forecasts from the end of the data it has seen."""

    name: str
    converged: bool

    def forecast(self, steps: int) -> FloatArray:
        """Mean demand of the next `steps` bins."""
        ...

    def append(self, values: FloatArray) -> None:
        """Condition on newly observed bins without re-estimating parameters."""
        ...


class EtsForecaster:
    """Holt-Winters with a damped additive trend and an online state."""

    def __init__(self, y: FloatArray, seasonal: Literal["add", "mul"], period: int) -> None:
        self.name = f"ets-{seasonal}"
        self.seasonal = seasonal
        if seasonal == "mul" and np.any(y <= 0.0):
            raise FitError("ets-mul needs strictly positive demand in every bin")
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = ExponentialSmoothing(
                y,
                trend="add",
                damped_trend=True,
                seasonal=seasonal,
                seasonal_periods=period,
                initialization_method="heuristic",
            ).fit()
        retvals: Any = getattr(fit, "mle_retvals", None)
        self.converged = bool(getattr(retvals, "success", True))
        params = fit.params
        self.alpha = float(params["smoothing_level"])
        self.beta = float(params["smoothing_trend"])
        self.gamma = float(params["smoothing_seasonal"])
        self.phi = float(params["damping_trend"])
        self.level = float(fit.level[-1])
        self.trend = float(fit.trend[-1])
        # season[j] is used for the observation m bins after it was written, so the
        # last m values are the seasonal factors of the next m bins, in order.
        self.season = np.asarray(fit.season[-period:], dtype=float).copy()
        self._head = 0

    def forecast(self, steps: int) -> FloatArray:
        period = len(self.season)
        damp = np.cumsum(self.phi ** np.arange(1, steps + 1))
        base = self.level + damp * self.trend
        factors = self.season[(self._head + np.arange(steps)) % period]
        out = base * factors if self.seasonal == "mul" else base + factors
        return np.asarray(out, dtype=float)

    def append(self, values: FloatArray) -> None:
        period = len(self.season)
        for y in np.asarray(values, dtype=float):
            s_old = self.season[self._head]
            base = self.level + self.phi * self.trend
            if self.seasonal == "mul":
                level = self.alpha * y / s_old + (1.0 - self.alpha) * base
                season = self.gamma * y / base + (1.0 - self.gamma) * s_old
            else:
                level = self.alpha * (y - s_old) + (1.0 - self.alpha) * base
                season = self.gamma * (y - base) + (1.0 - self.gamma) * s_old
            self.trend = (
                self.beta * (level - self.level) + (1.0 - self.beta) * self.phi * self.trend
            )
            self.level = level
            self.season[self._head] = season
            self._head = (self._head + 1) % period


def fourier_terms(index: np.ndarray, seasonality: Seasonality) -> FloatArray:
    """Sine/cosine regressors of the daily (and weekly) cycle at bin positions `index`."""
    columns: list[FloatArray] = []
    cycles = [(seasonality.daily_bins, seasonality.fourier_daily)]
    if seasonality.weekly:
        cycles.append((seasonality.daily_bins * 7, seasonality.fourier_weekly))
    for period, harmonics in cycles:
        for k in range(1, harmonics + 1):
            angle = 2.0 * np.pi * k * index / period
            columns.extend([np.sin(angle), np.cos(angle)])
    return np.column_stack(columns).astype(float)


class SarimaxForecaster:
    """ARMA errors around Fourier seasonality (statsmodels SARIMAX), online by `extend`."""

    def __init__(self, y: FloatArray, seasonality: Seasonality) -> None:
        self.name = "sarimax"
        self.seasonality = seasonality
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        index = np.arange(len(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels' start-parameter chatter
            fit = SARIMAX(
                y,
                exog=fourier_terms(index, seasonality),
                order=seasonality.sarimax_order,
                trend="c",
            ).fit(disp=False, maxiter=100)
        retvals: Any = getattr(fit, "mle_retvals", None) or {}
        self.converged = bool(retvals.get("converged", True))
        self._result: Any = fit
        self._seen = len(y)

    def _exog(self, start: int, steps: int) -> FloatArray:
        return fourier_terms(np.arange(start, start + steps), self.seasonality)

    def forecast(self, steps: int) -> FloatArray:
        out = self._result.forecast(steps, exog=self._exog(self._seen, steps))
        return np.asarray(out, dtype=float)

    def append(self, values: FloatArray) -> None:
        values = np.asarray(values, dtype=float)
        if len(values) == 0:
            return
        self._result = self._result.extend(values, exog=self._exog(self._seen, len(values)))
        self._seen += len(values)


class SeasonalNaiveForecaster:
    """Tomorrow's bin equals today's (or last week's, with weekly seasonality)."""

    def __init__(self, y: FloatArray, period: int) -> None:
        if len(y) < period:
            raise FitError(f"seasonal-naive needs one full period ({period} bins), got {len(y)}")
        self.name = "seasonal-naive"
        self.converged = True
        self._last = np.asarray(y[-period:], dtype=float).copy()

    def forecast(self, steps: int) -> FloatArray:
        return np.asarray(self._last[np.arange(steps) % len(self._last)], dtype=float)

    def append(self, values: FloatArray) -> None:
        self._last = np.concatenate([self._last, np.asarray(values, dtype=float)])[
            -len(self._last) :
        ]


def fit_forecaster(name: ModelName, y: FloatArray, seasonality: Seasonality) -> Forecaster:
    """Fit one named forecaster on `y`.

    Raises:
        FitError: too little data for the season, or statsmodels rejected the data.
    """
    period = seasonality.period_bins
    if len(y) < 2 * period:
        raise FitError(f"{name} needs two seasonal periods ({2 * period} bins), got {len(y)}")
    from threadpoolctl import threadpool_limits

    try:
        # The fits solve small dense systems many times; a multi-threaded BLAS spends
        # most of that spinning its threads (SARIMAX on the NAB FB history: 5.4 s of
        # CPU with OpenBLAS's default threads, 0.76 s with one), so fit on one thread.
        with threadpool_limits(limits=1, user_api="blas"):
            if name == "ets-add":
                return EtsForecaster(y, "add", period)
            if name == "ets-mul":
                return EtsForecaster(y, "mul", period)
            if name == "sarimax":
                return SarimaxForecaster(y, seasonality)
            return SeasonalNaiveForecaster(y, period)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise FitError(f"{name} could not be fitted: {exc}") from exc
