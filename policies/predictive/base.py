"""What every forecast-driven policy shares: its sizer, its fitted forecast, its fallback.

`PredictivePolicy`, `AwsPredictivePolicy`, `AnomalyPolicy` and `SpilloverPolicy` all
size replicas through the capacity model, fit an `OnlineForecast` on the context's
history at `reset`, and, when no forecaster can be fitted, keep running on a named
fallback that is logged once and stated in every reason (never silent). This base
holds that lifecycle once; subclasses reset their own state in `_reset_state` and
decide with `sizer`, `provisioning_s`, `forecast` and `fallback`.
"""

from __future__ import annotations

import logging

from policies.predictive.online import ForecastConfig, OnlineForecast, fit_online_forecast
from policies.predictive.sizing import Sizer, SizingConfig, clamp
from sim.contract import Decision, Observation, PolicyContext
from sim.errors import FitError

logger = logging.getLogger(__name__)


class ForecastPolicyBase:
    """Sizer + optional fitted forecast + explicit fallback, reset from a `PolicyContext`.

    Args:
        config: Forecast fitting parameters, or None for a policy that runs without
            a forecast by design (no fit is attempted, `fallback` stays None).
        sizing: Corrections of the Erlang C sizing (`SizingConfig`; default M/M/c).
        name: Display name (log lines and errors).
        fallback_action: What the policy does without a forecast, for the warning
            logged at reset (e.g. "falling back to reactive sizing").
    """

    def __init__(
        self,
        config: ForecastConfig | None,
        *,
        sizing: SizingConfig | None,
        name: str,
        fallback_action: str,
    ) -> None:
        self.config = config
        self.sizing = sizing or SizingConfig()
        self.name = name
        self.fallback_action = fallback_action
        self.forecast: OnlineForecast | None = None
        #: Why there is no forecast (the fit error), None when there is one or none was asked.
        self.fallback: str | None = None
        self._sizer: Sizer | None = None
        self.provisioning_s = 0.0

    def reset(self, context: PolicyContext) -> None:
        """Build the sizer, reset the subclass's state, then fit the forecast (or fall back)."""
        self._sizer = Sizer.from_context(context, self.sizing)
        self.provisioning_s = context.provisioning_s
        self.forecast = None
        self.fallback = None
        self._reset_state(context)
        if self.config is None:
            return
        try:
            self.forecast = fit_online_forecast(context, self.config)
        except FitError as exc:
            self.fallback = str(exc)
            logger.warning("%s: no forecast, %s: %s", self.name, self.fallback_action, exc)
            return
        logger.info("%s: selected %s", self.name, self.forecast.selection.summary())

    def _reset_state(self, context: PolicyContext) -> None:
        """Hook: clear per-run state (windows, holds). Called by `reset` before the fit."""

    @property
    def sizer(self) -> Sizer:
        """The context's sizer; a `RuntimeError` before `reset` (a caller's bug)."""
        if self._sizer is None:
            raise RuntimeError(f"{self.name}: decide() before reset()")
        return self._sizer

    def observe(self, observation: Observation) -> OnlineForecast | None:
        """Feed the observation's demand to the forecast; return it (None without one)."""
        if self.forecast is not None:
            self.forecast.observe(
                observation.time_s, observation.interval_s, observation.demand_rps
            )
        return self.forecast

    def reactive_fallback(self, replicas: int, why: str, observation: Observation) -> Decision:
        """The decision without a forecast: the reactive recommendation, clamped, named."""
        desired = clamp(replicas, observation)
        return Decision(desired, f"fallback: reactive ({self.fallback}) {why} -> {desired}")
