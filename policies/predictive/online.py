"""A fitted forecast that follows the run: observed demand in, per-bin forecasts out.

`fit_online_forecast` turns `PolicyContext.history` into an `OnlineForecast`:
aggregate to bins, check there is enough history, select a forecaster by
backtest, and line the run's bins up after the history's. During the run the
policy feeds every observation to `observe`; each completed bin is appended to
the model (parameters stay fixed, the level/season/ARMA state moves: this is how
the fit is refreshed from observed demand without refitting). A bin with no
demand sample is filled with the model's own forecast, the same as a missing bin.

Alignment: the run's t = 0 is placed right after the history's last complete bin.
When both workloads carry an epoch, the gap between them is measured and filled
with forecasts; otherwise the two are taken as contiguous (the engine passes the
traffic immediately before the run as history). Run bins start at run t = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.predictive.forecasters import Forecaster, ModelName, Seasonality
from policies.predictive.selection import Selection, select_forecaster
from policies.predictive.series import DemandSeries, demand_series
from sim.contract import PolicyContext
from sim.errors import FitError
from sim.workload.model import FloatArray

DAY_S = 86_400.0
#: A forecast above this multiple of the history's busiest bin is a diverged model,
#: not a forecast: it is cut to that ceiling and counted (an ETS/SARIMAX fit on the
#: NAB Twitter FB history once forecast 8e94 req/s and sized the pool to its max).
FORECAST_CEILING_FACTOR = 4.0


@dataclass(frozen=True)
class ForecastConfig:
    """How to fit and use a demand forecast (built from a policy spec).

    Attributes:
        bin_s: Aggregation bin (must divide a day).
        models: Candidate forecasters.
        quantile: Forecast quantile used for sizing (None: the mean).
        backtest_days: Holdout length for the rolling-origin backtest.
        min_history_days: Training data needed besides the holdout (two daily
            periods by default: Holt-Winters' heuristic start needs two seasons).
        max_history_days: Older history is ignored (fit cost).
        horizon_bins: Forecast steps scored in the backtest and used online.
        seasonality: Fourier harmonics and ARMA order for SARIMAX.
    """

    bin_s: float
    models: tuple[ModelName, ...]
    quantile: float | None
    backtest_days: float
    min_history_days: float
    max_history_days: float
    horizon_bins: int
    seasonality: Seasonality


class OnlineForecast:
    """The selected forecaster plus the bookkeeping to follow a run bin by bin."""

    def __init__(
        self,
        selection: Selection,
        config: ForecastConfig,
        gap_bins: int,
        ceiling_rps: float = math.inf,
    ) -> None:
        self.selection = selection
        self.ceiling_rps = ceiling_rps
        self.capped = 0  # forecasts cut to the ceiling (a diverged model), for reasons
        self.config = config
        self.bin_s = config.bin_s
        self.horizon = config.horizon_bins
        self._model: Forecaster = selection.model
        self._multipliers = selection.ratio_quantile(config.quantile)
        if gap_bins > 0:
            self._model.append(self._model.forecast(gap_bins))
        self.completed = 0  # run bins appended to the model
        self._bin_sum = 0.0
        self._bin_count = 0
        self._cache = self._model.forecast(self.horizon)

    @property
    def name(self) -> str:
        return self.selection.winner.name

    def observe(self, time_s: float, interval_s: float, demand_rps: float | None) -> None:
        """Account one observation (covering [time_s - interval_s, time_s])."""
        bin_index = math.floor(max(time_s - interval_s / 2.0, 0.0) / self.bin_s)
        if bin_index > self.completed:
            self._complete_through(bin_index)
        if demand_rps is not None and math.isfinite(demand_rps) and bin_index == self.completed:
            self._bin_sum += demand_rps
            self._bin_count += 1

    def _complete_through(self, bin_index: int) -> None:
        while self.completed < bin_index:
            if self._bin_count > 0:
                value = self._bin_sum / self._bin_count
            else:
                # No demand sample in this bin: treat it as missing, not zero.
                value = min(float(self._model.forecast(1)[0]), self.ceiling_rps)
            self._model.append(np.asarray([value]))
            self._bin_sum = 0.0
            self._bin_count = 0
            self.completed += 1
        self._cache = self._model.forecast(self.horizon)

    def forecast_at(self, time_s: float) -> tuple[float, float, int]:
        """(mean, quantile) demand forecast for the bin holding run time `time_s`, and steps.

        Steps beyond the backtest horizon use the last horizon's error quantile.
        """
        steps = max(math.floor(time_s / self.bin_s) - self.completed + 1, 1)
        if steps > len(self._cache):
            self._cache = self._model.forecast(steps)
        mean = max(float(self._cache[steps - 1]), 0.0)
        if not mean <= self.ceiling_rps:  # NaN too
            mean = self.ceiling_rps
            self.capped += 1
        multiplier = float(self._multipliers[min(steps, len(self._multipliers)) - 1])
        return mean, mean * multiplier, steps

    def forecast_bins(self, steps: int) -> FloatArray:
        """Mean forecast of the next `steps` bins after the last completed one."""
        return self._model.forecast(steps)


def fit_online_forecast(context: PolicyContext, config: ForecastConfig) -> OnlineForecast:
    """Fit a forecast on `context.history`.

    Raises:
        FitError: no history, too little of it, or no candidate could be fitted.
            The message is short enough to go into every decision's reason.
    """
    if DAY_S % config.bin_s != 0:
        raise FitError(f"bin_s {config.bin_s:g} s does not divide a day")
    if context.history is None:
        raise FitError("no history")
    series = demand_series(context.history, config.bin_s)
    series = series.tail(int(config.max_history_days * DAY_S / config.bin_s))
    daily_bins = int(DAY_S / config.bin_s)
    bins = len(series.rate_rps)
    needed_s = (config.min_history_days + config.backtest_days) * DAY_S
    if series.duration_s < needed_s:
        have_h = series.duration_s / 3600.0
        raise FitError(
            f"history {have_h:.1f}h < {config.min_history_days:g}+{config.backtest_days:g} days"
        )
    holdout = int(config.backtest_days * DAY_S / config.bin_s)
    weekly = bins - holdout >= 2 * 7 * daily_bins
    seasonality = Seasonality(
        daily_bins=daily_bins,
        weekly=weekly,
        fourier_daily=config.seasonality.fourier_daily,
        fourier_weekly=config.seasonality.fourier_weekly,
        sarimax_order=config.seasonality.sarimax_order,
    )
    selection = select_forecaster(
        series.rate_rps, config.models, holdout, config.horizon_bins, seasonality
    )
    end_s = math.floor(context.history.duration_s / config.bin_s) * config.bin_s
    observed = series.rate_rps[np.isfinite(series.rate_rps)]
    ceiling = FORECAST_CEILING_FACTOR * float(observed.max()) if observed.size else math.inf
    return OnlineForecast(selection, config, _gap_bins(context, end_s, series), ceiling)


def _gap_bins(context: PolicyContext, series_end_s: float, series: DemandSeries) -> int:
    """Whole bins between the end of the fitted series and the run's t = 0."""
    assert context.history is not None
    if context.epoch_s is not None and series.epoch_s is not None:
        gap_s = context.epoch_s - (series.epoch_s + series.duration_s)
    else:
        gap_s = context.history.duration_s - series_end_s  # the dropped partial bin
    if gap_s < -1e-6:
        raise FitError(f"history overlaps the run by {-gap_s:.0f}s")
    return round(gap_s / series.bin_s)
