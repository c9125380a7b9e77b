"""Anomaly-triggered pre-scaling: scale out on a rising forecast residual, early.

A reactive target-tracking policy scales out only once utilisation has risen,
one provisioning delay too late for a surge. This policy watches the residual of
observed demand against the forecast (`policies.predictive`), relative to the
forecast, and standardises it against the residuals of the last `window_s`
(a rolling z-score, the classic streaming detector; cf. the Numenta Anomaly
Benchmark's windowed scoring). When the z-score reaches `z_threshold` and demand
is above forecast, it sizes for the demand the anomaly implies one provisioning
delay ahead (the forecast there, scaled by the current excess) plus `headroom`,
before utilisation crosses the target. Otherwise it defers to the base policy.

Anomalous residuals are kept out of the rolling window, so a surge keeps its
z-score for as long as it lasts instead of normalising itself; a lasting level
shift is absorbed by the forecaster's own state (updated every bin), which
shrinks the residual.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from policies.predictive.base import ForecastPolicyBase
from policies.predictive.online import ForecastConfig
from policies.predictive.sizing import (
    ScaleInHold,
    Sizer,
    SizingConfig,
    clamp,
    demand_band_top,
    recent_demand_rps,
    window_in_history,
)
from policies.predictive.spec import PredictiveSpec
from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import Band, QuietSpan
from sim.detector import ResidualDetector


def within_tolerance(utilisation: float, target: float, tolerance: float) -> bool:
    """Whether `target_tracking` keeps the count at this utilisation (its dead band)."""
    return abs(utilisation / target - 1.0) <= tolerance


def tolerance_band(target: float, tolerance: float) -> tuple[float, float] | None:
    """[low, high]: utilisations `within_tolerance`, each edge moved inwards until the
    test itself admits it (the test is monotone on each side of the target, so every
    utilisation between two it admits is admitted). None when none is."""
    low, high = target * (1.0 - tolerance), target * (1.0 + tolerance)
    for _ in range(16):
        if within_tolerance(low, target, tolerance):
            break
        low = math.nextafter(low, math.inf)
    for _ in range(16):
        if within_tolerance(high, target, tolerance):
            break
        high = math.nextafter(high, -math.inf)
    if not (within_tolerance(low, target, tolerance) and within_tolerance(high, target, tolerance)):
        return None
    return (low, high) if low <= high else None


def target_tracking(observation: Observation, target: float, tolerance: float) -> tuple[int, str]:
    """The base reactive recommendation: HPA-style `ceil(ready * utilisation / target)`.

    Within the tolerance band (Kubernetes default 0.1) the desired capacity is kept,
    and so it is while replicas are pending and the rule would go below it.
    Without a utilisation metric (no ready replica) it sizes from demand at the
    target; with neither metric it holds.
    """
    if observation.utilisation is not None and observation.ready > 0:
        ratio = observation.utilisation / target
        if within_tolerance(observation.utilisation, target, tolerance):
            return observation.desired, f"target tracking within tolerance ({ratio:.2f})"
        replicas = math.ceil(observation.ready * ratio)
        why = f"target tracking util {observation.utilisation:.2f}/{target:.2f}"
        if observation.pending > 0 and replicas < observation.desired:
            # As the HPA, which counts not-yet-ready pods: never cancel a scale-out in flight.
            return observation.desired, f"{why}, {observation.pending} pending"
        return replicas, why
    if observation.demand_rps is not None:
        replicas = math.ceil(observation.demand_rps / (observation.replica_capacity_rps * target))
        return replicas, f"target tracking demand {observation.demand_rps:.1f} rps"
    return observation.desired, "metrics missing: hold"


class AnomalyPolicy(ForecastPolicyBase):
    """Target tracking, plus early scale-out when demand departs upward from the forecast.

    Args:
        config: Forecast fitting parameters (`PredictiveSpec.forecast_config`).
        z_threshold: z-score of the residual that counts as an anomaly.
        window_s: Look-back of the residual statistics.
        min_samples: Residuals needed before the detector may fire.
        min_residual_std: Floor of the residual spread, so a very quiet window
            does not make every wobble an anomaly (relative units).
        headroom: Extra share of the implied demand provisioned on an anomaly.
        target_utilisation: Base policy target (batch-slot utilisation).
        tolerance: Base policy dead band (Kubernetes HPA default 0.1).
        demand_window_s: Window of observed demand the residual uses.
        hold_s: Scale-down stabilisation of the decision (Kubernetes default 300 s).
        sizing: Corrections of the Erlang C sizing (`SizingConfig`; default M/M/c).
        name: Display name.

    Edge behaviour: without a forecast (no or too little history, no fit), the
    residual is taken against an exponentially weighted mean of observed demand
    (time constant `window_s`), logged at reset and named in every reason
    ("fallback: baseline rolling mean (...)").
    """

    def __init__(
        self,
        config: ForecastConfig,
        *,
        z_threshold: float = 3.0,
        window_s: float = 3600.0,
        min_samples: int = 20,
        min_residual_std: float = 0.02,
        headroom: float = 0.1,
        target_utilisation: float = 0.7,
        tolerance: float = 0.1,
        demand_window_s: float = 60.0,
        hold_s: float = 300.0,
        sizing: SizingConfig | None = None,
        name: str = "anomaly",
    ) -> None:
        super().__init__(
            config, sizing=sizing, name=name, fallback_action="residuals against a rolling mean"
        )
        # the detector keeps z_threshold, window_s, min_samples, min_residual_std, headroom
        self.target_utilisation = target_utilisation
        self.tolerance = tolerance
        self.demand_window_s = demand_window_s
        self._hold = ScaleInHold(hold_s)
        self.detector = ResidualDetector(
            window_s, min_samples, min_residual_std, z_threshold, headroom
        )
        self._prefix_of: str | None = None  # the fallback `_prefix` was made for
        self._prefix = ""
        self._tolerated = tolerance_band(target_utilisation, tolerance)
        # the capacity in force, its bounds and ready + pending when the last band was given
        self._banded = 0
        self._bounds = (0, 0)
        self._band_replicas = 0

    def _reset_state(self, context: PolicyContext) -> None:
        self._hold.reset()
        # the fallback's baseline: an exponentially weighted mean with time constant window_s
        self.detector.reset(1.0 - math.exp(-context.interval_s / self.detector.window_s))

    def _expected(self, observation: Observation, observed: float) -> tuple[float, float]:
        """(expected demand now, expected demand one provisioning delay ahead)."""
        forecast = self.observe(observation)
        if forecast is not None:
            now, _, _ = forecast.forecast_at(observation.time_s)
            ahead, _, _ = forecast.forecast_at(observation.time_s + self.provisioning_s)
            return now, ahead
        previous = self.detector.follow(observed)
        return previous, previous

    def decide(self, observation: Observation) -> Decision:
        sizer = self.sizer  # raises before reset()
        decision = self._decide(observation, sizer)
        held = clamp(
            self._hold.push(observation.time_s, decision.desired, observation.desired), observation
        )
        if held > decision.desired:
            return Decision(held, f"{decision.reason}; held at {held} ({self._hold.hold_s:.0f}s)")
        return decision

    def _decide(self, observation: Observation, sizer: Sizer) -> Decision:
        base, base_why = target_tracking(observation, self.target_utilisation, self.tolerance)
        if self.fallback is not self._prefix_of:  # set at reset; formatted once
            self._prefix_of = self.fallback
            self._prefix = (
                ""
                if self.fallback is None
                else f"fallback: baseline rolling mean ({self.fallback}); "
            )
        prefix = self._prefix
        observed = recent_demand_rps(observation, self.demand_window_s)
        if observed is None:
            desired = clamp(base, observation)
            return Decision(desired, f"{prefix}{base_why} -> {desired} (no demand metric)")
        expected_now, expected_ahead = self._expected(observation, observed)
        if expected_now <= 0.0:
            desired = clamp(base, observation)
            return Decision(desired, f"{prefix}{base_why} -> {desired} (no expected demand)")
        residual = observed / expected_now - 1.0
        z, anomalous = self.detector.score(observation.time_s, residual)
        z_text = "z n/a" if z is None else f"z={z:.1f}"
        if anomalous:
            implied = self.detector.implied(observed, expected_ahead, residual)
            need = sizer.replicas(implied)
            if need > base:
                desired = clamp(need, observation)
                return Decision(
                    desired,
                    f"{prefix}anomaly {z_text} (demand {100 * residual:+.0f}% vs expected): "
                    f"implied {implied:.1f} rps at t+{self.provisioning_s:.0f}s -> {desired}",
                )
        desired = clamp(base, observation)
        return Decision(desired, f"{prefix}{base_why} -> {desired} ({z_text})")

    def quiet_band(self, observation: Observation) -> Band | None:
        """Without a forecast (`sim.control.BandedPolicy`): the readings at which the
        count stays as it is. The base keeps it at a utilisation within its tolerance
        (a recommendation of the count, which renews the hold), and below it while the
        hold still keeps a recommendation of the count; the run scores each demand in
        the detector and leaves the band at an anomaly. A forecast moves with every
        reading: no band."""
        tolerated = self._tolerated
        if self.forecast is not None or tolerated is None or observation.ready <= 0:
            return None
        desired = observation.desired
        peak = self._hold.peak()
        if peak is not None and clamp(peak[1], observation) != desired:
            return None
        if not window_in_history(observation, self.demand_window_s):
            return None
        self._banded = desired
        self._bounds = (observation.min_replicas, observation.max_replicas)
        self._band_replicas = replicas = observation.ready + observation.pending
        low, high = tolerated
        # the run scores each demand in the detector: one it finds no anomaly in passes;
        # with pods pending, a count ceil(ready x utilisation / target) below the desired
        # one keeps it (`target_tracking`), and so does one equal to it, with room for
        # the division's rounding
        pending_top = desired * self.target_utilisation * (1.0 - 1e-12)
        # where the base keeps the count, an anomaly that sizes to no more keeps it too
        implied_top = demand_band_top(self.sizer, desired)
        common = {"demand_window_s": self.demand_window_s, "missing_demand": "check",
                  "detector": self.detector, "pending_busy_high": pending_top,
                  "anomaly_high": implied_top}  # fmt: skip
        if peak is None or peak[1] != desired:
            # nothing held (or held above the bounds): below the tolerance the count falls
            return Band("utilisation", low, high, replicas, **common)  # type: ignore[arg-type]
        # the hold keeps the count until `hold_s` after its newest recommendation of it
        # (pops at t >= since + hold: a microsecond earlier here, whatever the rounding)
        keep_s = self._hold.hold_s - 1e-6
        return Band("utilisation", low, high, replicas, renew_s=keep_s, hold_low=0.0,
                    hold_high=math.nextafter(low, -math.inf), hold_until_s=peak[0] + keep_s,
                    **common)  # type: ignore[arg-type]  # fmt: skip

    def pass_band(self, span: QuietSpan) -> None:
        """What `decide` does to the hold at the quiet readings (the run advanced the
        detector over them): it records the count within the tolerance or with pods
        pending (anomalies pass only there, sizing to no more), and the base's count
        below it. The hold keeps only recommendations of its last `hold_s` that are
        above every later one: only those are pushed (the same hold as every push in
        turn: the older ones go at the next push)."""
        hold = self._hold
        if hold.hold_s <= 0.0:
            return  # (the hold keeps nothing)
        desired, replicas = self._banded, self._band_replicas
        low, high = self._bounds
        target, tolerance = self.target_utilisation, self.tolerance
        times, utilisations, readies = span.time_s, span.utilisation, span.ready
        cutoff = times[-1] - hold.hold_s
        kept: list[tuple[float, int]] = []  # newest first, rising
        highest = -1
        for k in range(len(times) - 1, -1, -1):
            if times[k] <= cutoff or highest >= desired:
                break  # (older ones are dropped, or at most the count: kept out by it)
            utilisation, ready = utilisations[k], readies[k]
            if within_tolerance(utilisation, target, tolerance):
                value = desired
            else:
                # `target_tracking`'s count below (or, with pods pending, above) the tolerance
                base = math.ceil(ready * (utilisation / target))
                if replicas > ready and base < desired:
                    base = desired  # (pods pending: the count is kept)
                value = min(max(base, low), high)
            if value > highest:
                highest = value
                kept.append((times[k], value))
        for time_s, value in reversed(kept):
            hold.push(time_s, value, desired)


class AnomalySpec(PolicySpecBase):
    """Anomaly-triggered pre-scaling over reactive target tracking (`AnomalyPolicy`).

    The forecaster is configured as in `PredictiveSpec` (`forecast:` block; its
    quantile is unused: residuals are taken against the mean forecast).
    """

    kind: Literal["anomaly"] = "anomaly"
    forecast: PredictiveSpec = Field(default_factory=PredictiveSpec)
    z_threshold: float = Field(default=3.0, gt=0.0)
    window_s: float = Field(default=3600.0, gt=0.0)
    min_samples: int = Field(default=20, ge=2)
    min_residual_std: float = Field(default=0.02, gt=0.0)
    headroom: float = Field(default=0.1, ge=0.0, le=2.0)
    # A common starting target for GPU inference target tracking; tune per model.
    target_utilisation: float = Field(default=0.7, gt=0.0, le=1.0)
    tolerance: float = Field(default=0.1, ge=0.0, lt=1.0)
    demand_window_s: float = Field(default=60.0, gt=0.0)
    hold_s: float = Field(default=300.0, ge=0.0)

    def fits_history(self) -> bool:
        return True

    def history_needed_s(self) -> float:
        return self.forecast.history_needed_s()

    def build(self) -> Policy:
        return self.wrap(
            AnomalyPolicy(
                self.forecast.forecast_config(),
                z_threshold=self.z_threshold,
                window_s=self.window_s,
                min_samples=self.min_samples,
                min_residual_std=self.min_residual_std,
                headroom=self.headroom,
                target_utilisation=self.target_utilisation,
                tolerance=self.tolerance,
                demand_window_s=self.demand_window_s,
                hold_s=self.hold_s,
                sizing=self.forecast.sizing(),
                name=self.display_name(),
            )
        )
