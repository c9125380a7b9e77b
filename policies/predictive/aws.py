"""AWS-like predictive scaling: an hourly 48-hour forecast refreshed every 6 hours.

Mirrors EC2 Auto Scaling predictive scaling (AWS Auto Scaling user guide,
"Predictive scaling for Amazon EC2 Auto Scaling"): load is forecast hourly for
the next 48 hours and the forecast is refreshed every 6 hours; capacity for an
hour is launched `SchedulingBufferTime` seconds before the hour starts; with
`MaxCapacityBreachBehavior = HonorMaxCapacity` forecast capacity never exceeds
the group's maximum, with `IncreaseMaxCapacity` it may exceed it by
`MaxCapacityBuffer` percent; in `ForecastOnly` mode the forecast is only
reported and the dynamic (reactive) policy alone scales, while in
`ForecastAndScale` the group runs at the larger of the two.

Differences, stated: the forecast here is this project's statsmodels forecaster
(selected by backtest) rather than AWS's model; the refresh appends the hourly
demand the policy observed during the run to the model's state and re-forecasts
(parameters fitted on the history are kept); the reactive part is the capacity
model's sizing of recently observed demand (as in `PredictivePolicy`); capacity
from the load forecast goes through the same Erlang C sizing. The pool's own
bounds still clamp every decision.
"""

from __future__ import annotations

import math
from typing import Literal

from policies.predictive.base import ForecastPolicyBase
from policies.predictive.online import ForecastConfig
from policies.predictive.policy import ReactiveFloor
from policies.predictive.sizing import SizingConfig, clamp
from sim.contract import Decision, Observation, PolicyContext

HOUR_S = 3600.0


class AwsPredictivePolicy(ForecastPolicyBase):
    """Hourly capacity schedule from a 48 h forecast, refreshed on a fixed cadence.

    Args:
        config: Forecast fitting parameters; `bin_s` must be 3600 (hourly).
        horizon_h: Forecast length (AWS: 48 hours).
        refresh_s: Refresh cadence (AWS: every 6 hours).
        scheduling_buffer_s: Launch ahead of each hour (AWS default 300 s, max 3600).
        max_capacity: The group's maximum (None: the pool's max_replicas).
        max_capacity_behavior: "honor" or "increase" (AWS MaxCapacityBreachBehavior).
        max_capacity_buffer_pct: Headroom above max_capacity under "increase".
        forecast_only: Report what the forecast would do; scale reactively only.
        floor_window_s: Window of observed demand the reactive part sizes for.
        floor_hold_s: Scale-down stabilisation of the reactive part.
        floor_tracks_utilisation: The reactive part also tracks measured utilisation.
        sizing: Corrections of the Erlang C sizing (`SizingConfig`; default M/M/c).
        name: Display name.

    Edge behaviour: when the forecast cannot be fitted, the policy logs a warning and
    runs reactively; each reason starts with "fallback: reactive (...)".
    """

    def __init__(
        self,
        config: ForecastConfig,
        *,
        horizon_h: int = 48,
        refresh_s: float = 6 * HOUR_S,
        scheduling_buffer_s: float = 300.0,
        max_capacity: int | None = None,
        max_capacity_behavior: Literal["honor", "increase"] = "honor",
        max_capacity_buffer_pct: float = 0.0,
        forecast_only: bool = False,
        floor_window_s: float = 60.0,
        floor_hold_s: float = 300.0,
        floor_tracks_utilisation: bool = True,
        sizing: SizingConfig | None = None,
        name: str = "predictive-aws",
    ) -> None:
        if config.bin_s != HOUR_S:
            raise ValueError("the AWS-like mode forecasts hourly: config.bin_s must be 3600")
        super().__init__(
            config, sizing=sizing, name=name, fallback_action="falling back to reactive sizing"
        )
        self.horizon_h = horizon_h
        self.refresh_s = refresh_s
        self.scheduling_buffer_s = scheduling_buffer_s
        self.max_capacity = max_capacity
        self.max_capacity_behavior = max_capacity_behavior
        self.max_capacity_buffer_pct = max_capacity_buffer_pct
        self.forecast_only = forecast_only
        self.reactive = ReactiveFloor(floor_window_s, floor_hold_s, floor_tracks_utilisation)
        self.refresh_times_s: list[float] = []
        self._schedule: list[int] = []  # forecast capacity per run hour
        self._cap = 0

    def _reset_state(self, context: PolicyContext) -> None:
        self.reactive.reset()
        base_max = self.max_capacity if self.max_capacity is not None else context.max_replicas
        if self.max_capacity_behavior == "increase":
            base_max = math.floor(base_max * (1.0 + self.max_capacity_buffer_pct / 100.0))
        self._cap = base_max
        self.refresh_times_s = []
        self._schedule = []

    def _refresh(self, time_s: float) -> None:
        """Re-forecast the next `horizon_h` hours from the last completed hour."""
        assert self.forecast is not None
        start_hour = self.forecast.completed
        schedule = self._schedule[:start_hour]
        schedule += [0] * (start_hour - len(schedule))
        for hour in range(start_hour, start_hour + self.horizon_h + 1):
            _, rate_q, _ = self.forecast.forecast_at(hour * HOUR_S)
            schedule.append(min(self.sizer.replicas(rate_q), self._cap))
        self._schedule = schedule
        self.refresh_times_s.append(time_s)

    def scheduled(self, time_s: float) -> int:
        """Forecast capacity in force at `time_s`: the current hour's, or the next
        hour's when it starts within the scheduling buffer."""
        hour = math.floor(time_s / HOUR_S)
        ahead = math.floor((time_s + self.scheduling_buffer_s) / HOUR_S)
        picks = [self._schedule[h] for h in (hour, ahead) if h < len(self._schedule)]
        return max(picks) if picks else 0

    def decide(self, observation: Observation) -> Decision:
        reactive, reactive_why = self.reactive.replicas(
            observation, self.sizer, self.provisioning_s
        )
        forecast = self.observe(observation)
        if forecast is None:
            return self.reactive_fallback(reactive, reactive_why, observation)
        due = not self.refresh_times_s or (
            observation.time_s - self.refresh_times_s[-1] >= self.refresh_s
        )
        if due:
            self._refresh(observation.time_s)
        planned = self.scheduled(observation.time_s)
        if self.forecast_only:
            desired = clamp(reactive, observation)
            return Decision(
                desired,
                f"forecast-only: forecast would set {planned}; "
                f"reactive {reactive} ({reactive_why}) -> {desired}",
            )
        if reactive > planned:
            desired = clamp(reactive, observation)
            return Decision(
                desired, f"reactive {reactive} ({reactive_why}) > scheduled {planned} -> {desired}"
            )
        desired = clamp(planned, observation)
        hour = math.floor(observation.time_s / HOUR_S)
        return Decision(desired, f"scheduled forecast {forecast.name} hour {hour} -> {desired}")
