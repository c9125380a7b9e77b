"""The learned policy's view of one decision point: a fixed, versioned feature vector.

The Gymnasium env and the deployed RL policy (`policies.rl`) both turn the control
loop's `Observation` into this vector through one `ObservationEncoder`, so a model
sees in production exactly the features it was trained on. The layout is versioned:
a bundle records `LAYOUT_VERSION`, and a policy refuses a model trained on another.

Every count is relative to the desired capacity in force (so one model serves a
pool of 8 replicas and one of 800, and random level rescaling during training
does not move the features); one feature keeps the absolute level on a log scale.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from sim.contract import Observation

#: Bump whenever FEATURES, their order or their scaling change.
LAYOUT_VERSION = 1
FEATURES: tuple[str, ...] = (
    "demand_need",  # demand of the last interval / full-batch replica throughput / desired
    "demand_trend",  # smoothed demand trend over the next 5 minutes, same units
    "utilisation",  # busy share of ready batch slots (0 when missing)
    "queue_need",  # queued requests / one replica-interval of work / desired
    "ready",  # ready replicas / desired
    "pending",  # provisioning replicas / desired
    "day_sin",
    "day_cos",
    "week_sin",
    "week_cos",
    "forecast_need",  # forecast demand one provisioning delay ahead, as demand_need
    "base_proposal",  # the base policy's desired / desired
    "level",  # log1p(desired) / log1p(max_replicas)
)
N_FEATURES = len(FEATURES)
#: Features are clipped to [-OBS_BOUND, OBS_BOUND] (the env's Box).
OBS_BOUND = 10.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
#: Holt's linear smoothing of interval demand (level, trend): slow enough to ride
#: over one noisy 15 s sample, fast enough to follow a ramp within minutes.
HOLT_ALPHA = 0.3
HOLT_BETA = 0.1
TREND_HORIZON_S = 300.0

FloatVector = NDArray[np.float32]


class ObservationEncoder:
    """Turns observations into feature vectors; keeps the demand forecaster's state.

    The forecaster is Holt's linear exponential smoothing of each interval's demand,
    extrapolated one provisioning delay ahead (the lead time a scale-out needs). It
    is part of the encoder because the deployed policy and the env must carry the
    same state: `reset` at the start of every run, `encode` once per interval.

    Args:
        provisioning_s: Mean seconds from a scale-out request to a ready replica.
    """

    def __init__(self, provisioning_s: float) -> None:
        self.provisioning_s = provisioning_s
        self.reset()

    def reset(self) -> None:
        self._level: float | None = None
        self._trend = 0.0

    def forecast_rps(self, observation: Observation) -> float:
        """Forecast demand one provisioning delay ahead (after updating on `observation`)."""
        demand = observation.demand_rps
        if demand is not None and math.isfinite(demand):
            if self._level is None:
                self._level = demand
            else:
                previous = self._level
                self._level = HOLT_ALPHA * demand + (1 - HOLT_ALPHA) * (previous + self._trend)
                self._trend = HOLT_BETA * (self._level - previous) + (1 - HOLT_BETA) * self._trend
        if self._level is None:
            return 0.0
        steps = self.provisioning_s / observation.interval_s
        return max(self._level + self._trend * steps, 0.0)

    def encode(self, observation: Observation, base_desired: int) -> FloatVector:
        """The feature vector (`FEATURES`, float32, clipped) for one decision point."""
        forecast = self.forecast_rps(observation)
        ref = float(max(observation.desired, 1))
        per_replica = max(observation.replica_capacity_rps, 1e-9)
        demand = observation.demand_rps
        demand_need = 0.0 if demand is None else demand / per_replica / ref
        trend_rps = self._trend * TREND_HORIZON_S / observation.interval_s
        clock_s = observation.time_s + (observation.epoch_s or 0.0)
        day, week = 2 * math.pi * clock_s / DAY_S, 2 * math.pi * clock_s / WEEK_S
        util = observation.utilisation
        values = (
            demand_need,
            trend_rps / per_replica / ref,
            0.0 if util is None else util,
            observation.queue_len / (per_replica * observation.interval_s) / ref,
            observation.ready / ref,
            observation.pending / ref,
            math.sin(day),
            math.cos(day),
            math.sin(week),
            math.cos(week),
            forecast / per_replica / ref,
            base_desired / ref,
            math.log1p(observation.desired) / math.log1p(max(observation.max_replicas, 1)),
        )
        vector = np.asarray(values, dtype=np.float32)
        return np.clip(vector, -OBS_BOUND, OBS_BOUND, out=vector)
