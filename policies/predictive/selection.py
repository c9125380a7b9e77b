"""Model selection by rolling-origin backtest on the last part of the history.

Each candidate's parameters are estimated once on the training part (everything
before the holdout). The model then walks through the holdout one bin at a time
(Tashman 2000, "Out-of-sample tests of forecasting accuracy": rolling origin,
fixed parameters): at every origin it forecasts the next `horizon` bins, then
is shown the actual bin. The winner has the lowest MASE (Hyndman & Koehler 2006;
scaled by the in-sample seasonal-naive MAE, so scores compare across series);
MAPE is reported beside it. Since the walk filters the model through the whole
holdout, the winner leaves the backtest having seen all of the history: the
online policy continues from exactly that state, with parameters it was scored on.

The forecast errors of the winner, as ratios actual / forecast per horizon, are
kept: their quantiles turn a mean forecast into a headroom forecast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from policies.predictive.forecasters import Forecaster, ModelName, Seasonality, fit_forecaster
from sim.errors import FitError
from sim.workload.model import FloatArray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestScore:
    """Out-of-sample accuracy of one candidate.

    Attributes:
        name: Forecaster name.
        mase: Mean absolute scaled error over all origins and horizons.
        mape: Mean absolute percentage error (bins with zero demand skipped).
        origins: Forecast origins evaluated.
        ratios: actual / forecast, shape (origins, horizon).
    """

    name: str
    mase: float
    mape: float
    origins: int
    ratios: FloatArray


@dataclass
class Selection:
    """The chosen forecaster (filtered through all history) and how it was chosen."""

    model: Forecaster
    winner: BacktestScore
    scores: list[BacktestScore]
    dropped: list[tuple[str, str]]

    def ratio_quantile(self, quantile: float | None) -> FloatArray:
        """Per-horizon multiplier that turns the mean forecast into its `quantile`.

        None means the mean forecast itself (all ones).
        """
        horizon = self.winner.ratios.shape[1]
        if quantile is None:
            return np.ones(horizon)
        finite = np.where(np.isfinite(self.winner.ratios), self.winner.ratios, np.nan)
        return np.asarray(np.nanquantile(finite, quantile, axis=0), dtype=float)

    def summary(self) -> str:
        parts = [f"{s.name} MASE {s.mase:.3f} MAPE {100 * s.mape:.1f}%" for s in self.scores]
        parts += [f"{name} dropped ({why})" for name, why in self.dropped]
        return "; ".join(parts)


def seasonal_scale(y: FloatArray, period: int) -> float:
    """MASE denominator: in-sample MAE of the seasonal-naive forecast.

    A perfectly periodic history has none (zero): the lag-1 naive MAE is used
    instead, and for a constant history the mean level (MASE is then a relative MAE).
    """
    for lag in (period, 1):
        if len(y) > lag:
            scale = float(np.abs(y[lag:] - y[:-lag]).mean())
            if scale > 0.0:
                return scale
    scale = float(np.abs(y).mean())
    if scale <= 0.0:
        raise FitError("history is all zero; nothing to forecast")
    return scale


def backtest(
    name: ModelName, y: FloatArray, train_bins: int, horizon: int, seasonality: Seasonality
) -> tuple[Forecaster, BacktestScore]:
    """Fit `name` on y[:train_bins], walk it through the rest; return it and its score."""
    model = fit_forecaster(name, y[:train_bins], seasonality)
    origins = len(y) - train_bins - horizon + 1
    if origins < 1:
        raise FitError(f"holdout of {len(y) - train_bins} bins is shorter than horizon {horizon}")
    forecasts = np.empty((origins, horizon))
    actuals = np.empty((origins, horizon))
    for i in range(origins):
        origin = train_bins + i
        forecasts[i] = model.forecast(horizon)
        actuals[i] = y[origin : origin + horizon]
        model.append(y[origin : origin + 1])
    model.append(y[train_bins + origins :])
    errors = np.abs(actuals - forecasts)
    positive = actuals > 0
    mape = float((errors[positive] / actuals[positive]).mean()) if positive.any() else np.inf
    mase = float(errors.mean() / seasonal_scale(y[:train_bins], seasonality.daily_bins))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(forecasts > 0, actuals / forecasts, np.nan)
    return model, BacktestScore(name, mase, mape, origins, ratios)


def select_forecaster(
    y: FloatArray,
    candidates: tuple[ModelName, ...],
    holdout_bins: int,
    horizon: int,
    seasonality: Seasonality,
) -> Selection:
    """Backtest every candidate; keep the lowest MASE among those that fitted and converged.

    Raises:
        FitError: no candidate could be fitted (each failure is logged).
    """
    scores: list[BacktestScore] = []
    models: dict[str, Forecaster] = {}
    dropped: list[tuple[str, str]] = []
    for name in candidates:
        try:
            model, score = backtest(name, y, len(y) - holdout_bins, horizon, seasonality)
        except FitError as exc:
            logger.warning("forecaster %s dropped: %s", name, exc)
            dropped.append((name, str(exc)))
            continue
        if not model.converged:
            logger.warning("forecaster %s dropped: optimiser did not converge", name)
            dropped.append((name, "did not converge"))
            continue
        if not np.isfinite(score.mase):
            logger.warning("forecaster %s dropped: non-finite backtest error", name)
            dropped.append((name, "non-finite forecasts"))
            continue
        scores.append(score)
        models[name] = model
    if not scores:
        reasons = ", ".join(f"{n}: {why}" for n, why in dropped)
        raise FitError(f"no forecaster could be fitted ({reasons})")
    winner = min(scores, key=lambda s: s.mase)
    return Selection(models[winner.name], winner, scores, dropped)
