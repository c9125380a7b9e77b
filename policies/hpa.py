"""Target tracking with Kubernetes HorizontalPodAutoscaler semantics, exactly.

Reference: https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
(algorithm details, configurable scaling behavior) and the controller source
`pkg/controller/podautoscaler/replica_calculator.go` / `horizontal.go`.

Mapping from `Observation` to what the HPA controller sees:

* `currentReplicas` = `ready + pending`: the pods of the workload, running or not.
* Ready replicas report the metric; pending replicas are the HPA's not-yet-ready
  pods (phase Pending: no metric, counted as 0% usage only when scaling up).
* The simulator reports one aggregate `utilisation` for the ready replicas, so
  per-pod "missing metrics" cannot arise from an observation; `utilisation is
  None` (or `demand_rps is None` for the rps metric) means no metric at all, and
  the HPA then does not scale (Kubernetes: `FailedGetResourceMetric`). The
  missing-pod rules are implemented in `calculate_replicas` and table-tested.
* Utilisation is quantised to integer percent and the rps metric to milli-units,
  as the controller does, so worked examples give the controller's exact numbers.
"""

from __future__ import annotations

import bisect
import math
from typing import Literal, NamedTuple

from pydantic import Field, model_validator

from policies.aws_target_tracking import band_metric, per_replica_metric, span_values
from policies.hysteresis.config import HysteresisSpec
from policies.hysteresis.pipeline import HysteresisState, run_stages
from policies.hysteresis.stages import (
    WITHIN_TOLERANCE,
    Recommendation,
    record_scale_event,
    within_tolerance,
)
from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, PolicyContext
from sim.control import Band, QuietSpan

HpaMetric = Literal["utilisation", "rps_per_replica"]

DIRECTION_REVERSED = "DirectionReversed"
SCALE_UP = "ScaleUp"
SCALE_DOWN = "ScaleDown"
#: Float noise guard when quantising a metric to integer units.
_QUANTUM_EPS = 1e-9
#: Formatted reasons an `HpaPolicy` keeps for reuse (cleared when full).
_REASONS_KEPT = 4096
#: `Recommendation(...)` without the NamedTuple's Python-level `__new__` (a band's span
#: records up to a window of readings)
_new_recommendation = tuple.__new__


class ReplicaCalculation(NamedTuple):
    """The controller's recommendation before stabilisation and rate limits."""

    replicas: int
    usage_ratio: float
    reason: str


def calculate_replicas(
    *,
    current: int,
    ready: int,
    usage: float,
    target: int,
    unready: int = 0,
    missing: int = 0,
    missing_scale_down_fill: float | None = None,
    tolerance_up: float = 0.1,
    tolerance_down: float = 0.1,
) -> ReplicaCalculation:
    """`GetResourceReplicas` / `calcPlainMetricReplicas` of the Kubernetes HPA.

    Args:
        current: The workload's replicas (`currentReplicas`).
        ready: Ready pods reporting the metric.
        usage: Their average metric in controller units (percent of request, or
            milli-units); floored to an integer as the controller does.
        target: Target average in the same units (an integer).
        unready: Not-yet-ready pods: counted at 0 only when the ready pods alone
            would scale up.
        missing: Ready pods without a metric: 0 on scale-up, `missing_scale_down_fill`
            on scale-down.
        missing_scale_down_fill: Value assumed for missing pods on scale-down;
            defaults to `max(100, target)` (resource utilisation). Pods metrics use
            the target itself.
        tolerance_up: Ratio band above 1 within which nothing changes.
        tolerance_down: Ratio band below 1.

    Returns:
        The recommendation; `current` when the ratio is within tolerance or the
        conservative recount reverses the direction.
    """
    if ready <= 0:
        raise ValueError("calculate_replicas needs at least one ready pod with a metric")
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    ratio = math.floor(usage + _QUANTUM_EPS) / target
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        if within_tolerance(ratio, tolerance_up, tolerance_down):
            return ReplicaCalculation(current, ratio, WITHIN_TOLERANCE)
        replicas = math.ceil(ratio * ready)
        return ReplicaCalculation(replicas, ratio, SCALE_UP if ratio > 1.0 else SCALE_DOWN)

    total = usage * ready
    count = ready
    if missing > 0:
        fill = missing_scale_down_fill if missing_scale_down_fill is not None else max(100, target)
        if ratio < 1.0:
            total += missing * fill
            count += missing
        elif ratio > 1.0:
            count += missing
    if scale_up_with_unready:
        count += unready
    new_ratio = math.floor(total / count + _QUANTUM_EPS) / target
    if within_tolerance(new_ratio, tolerance_up, tolerance_down):
        return ReplicaCalculation(current, new_ratio, WITHIN_TOLERANCE)
    if (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return ReplicaCalculation(current, new_ratio, DIRECTION_REVERSED)
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return ReplicaCalculation(current, new_ratio, DIRECTION_REVERSED)
    return ReplicaCalculation(replicas, new_ratio, SCALE_UP if new_ratio > 1.0 else SCALE_DOWN)


class HpaPolicy:
    """A Kubernetes HPA on one metric, with `behavior` (autoscaling/v2).

    What it does: every interval, `desired = ceil(ready * metric / target)`
    (ratio from integer-quantised metric), unchanged within the tolerance band,
    then the stabilisation window (scale-down: highest recommendation of the last
    300 s wins), the rate policies and the min/max clamp, each recorded with its
    Kubernetes reason (`ScaleDownStabilized`, `ScaleUpLimit`, `TooManyReplicas`).

    Parameters (defaults from the Kubernetes docs):
        target: Target average: utilisation as a fraction (0.7 = 70%), or
            requests per second per replica for the `rps_per_replica` metric.
        metric: `utilisation` (a Resource metric, averageUtilization) or
            `rps_per_replica` (a Pods metric, averageValue = demand / ready).
        behavior: Tolerance 0.1 each way; scale-up: no window, max(+100%, +4
            pods) per 15 s; scale-down: 300 s window, -100% per 15 s; selectPolicy Max.
        min_replicas / max_replicas: HPA bounds, intersected with the pool's.

    Edges:
        * Start-up: the first computed recommendation seeds the scale-down window
          with the current replicas (the controller's
          `maybeInitScaleDownStabilizationWindow`): no scale-down in the first window.
        * No metric (`utilisation`/`demand_rps` None) or no ready replica: keep
          `ready + pending` (reason `FailedGetMetric`), as the controller does.
        * `ready + pending` above max / below min: go to the bound at once.
        * Zero replicas with min 0 (scale to zero, alpha HPAScaleToZero): one
          replica when demand is positive, else stay at zero.
    """

    def __init__(
        self,
        *,
        target: float = 0.7,
        metric: HpaMetric = "utilisation",
        behavior: HysteresisSpec | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        name: str = "hpa",
    ) -> None:
        if target <= 0:
            raise ValueError(f"target must be > 0, got {target}")
        self.metric: HpaMetric = metric
        self.target = target
        # The controller's integer units: percent for utilisation, milli for Pods metrics.
        self.unit_scale = 100.0 if metric == "utilisation" else 1000.0
        self.target_units = max(1, round(target * self.unit_scale))
        self.behavior = behavior or HysteresisSpec()
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.name = name
        self.state = HysteresisState()
        self.window_seeded = False
        # the integer metric units the tolerance keeps as they are, and a band's
        # current count while the loop runs it (`quiet_band`, `pass_band`)
        self._tolerated = tolerated_units(
            self.target_units, self.behavior.scale_up.tolerance, self.behavior.scale_down.tolerance
        )
        self._banded = 0
        # Reasons by what they say: the ratio is an integer percent over the target, so
        # the same few hundred texts recur all run, and formatting one costs more than
        # the rest of a steady-state decision's arithmetic.
        self._reasons: dict[tuple[str, tuple[str, ...], float, int, int], str] = {}

    def reset(self, context: PolicyContext) -> None:
        del context
        self.state = HysteresisState()
        self.window_seeded = False

    def _bounds(self, observation: Observation) -> tuple[int, int]:
        low = observation.min_replicas
        if self.min_replicas is not None and self.min_replicas > low:
            low = self.min_replicas
        elif low < 0:
            low = 0
        high = observation.max_replicas
        if self.max_replicas is not None and self.max_replicas < high:
            high = self.max_replicas
        return (low if low < high else high), high

    def _usage_units(self, observation: Observation) -> float | None:
        """The per-ready-pod metric in controller units, or None when missing."""
        value = per_replica_metric(observation, self.metric)
        return None if value is None else value * self.unit_scale

    def _jump(self, observation: Observation, current: int, value: int, reason: str) -> Decision:
        ups, downs = record_scale_event(
            self.state.up_events,
            self.state.down_events,
            now_s=observation.time_s,
            previous=current,
            new=value,
            keep_s=self.behavior.max_period_s(),
        )
        self.state = HysteresisState(self.state.recommendations, ups, downs)
        return Decision(value, reason)

    def decide(self, observation: Observation) -> Decision:
        current = observation.ready + observation.pending
        low, high = self._bounds(observation)
        if current > high:
            return self._jump(observation, current, high, f"AboveMaxReplicas: {current} > {high}")
        if current < low:
            return self._jump(observation, current, low, f"BelowMinReplicas: {current} < {low}")
        if current == 0:
            wants = observation.demand_rps is not None and observation.demand_rps > 0
            if wants and high >= 1:
                return self._jump(observation, 0, 1, "ScaleFromZero: demand while at zero")
            return Decision(0, "ScaledToZero: no replicas and no demand")
        usage = self._usage_units(observation)
        if usage is None:
            return Decision(current, f"FailedGetMetric: no {self.metric} from ready replicas")
        fill = None if self.metric == "utilisation" else float(self.target_units)
        calc = calculate_replicas(
            current=current,
            ready=observation.ready,
            usage=usage,
            target=self.target_units,
            unready=observation.pending,
            missing_scale_down_fill=fill,
            tolerance_up=self.behavior.scale_up.tolerance,
            tolerance_down=self.behavior.scale_down.tolerance,
        )
        if not self.window_seeded:
            # maybeInitScaleDownStabilizationWindow: a new HPA first records the current
            # replicas, so it never scales down within one window of starting.
            self.state = HysteresisState(
                (Recommendation(observation.time_s, current),),
                self.state.up_events,
                self.state.down_events,
            )
            self.window_seeded = True
        staged = run_stages(
            self.behavior,
            self.state,
            now_s=observation.time_s,
            current=current,
            recommended=calc.replicas,
            min_replicas=low,
            max_replicas=high,
            apply_dead_band=False,
        )
        self.state = staged.state
        key = (calc.reason, staged.reasons, calc.usage_ratio, calc.replicas, current)
        reason = self._reasons.get(key)
        if reason is None:
            codes = ",".join((calc.reason, *staged.reasons)) if staged.reasons else calc.reason
            reason = (
                f"{codes}: {self.metric} ratio {calc.usage_ratio:.3f}, "
                f"recommended {calc.replicas}, current {current}"
            )
            if len(self._reasons) >= _REASONS_KEPT:
                self._reasons.clear()
            self._reasons[key] = reason
        return Decision(staged.value, reason)

    def quiet_band(self, observation: Observation) -> Band | None:
        """The readings at which the next decisions keep the replicas in force
        (`sim.control.BandedPolicy`): a metric whose ratio is within the tolerance
        (the recommendation is the current count, and it renews the scale-down
        window), or one below it while the window still holds a recommendation of at
        least the current count (the recommendation is lower, the window keeps the
        count: `ScaleDownStabilized`), or at the minimum for as long as it lasts (the
        clamp keeps it). Pending pods may come up (the count of ready plus pending
        stays); a metric above the tolerance or a missing one ends it."""
        current = observation.ready + observation.pending
        low, high = self._bounds(observation)
        if observation.ready <= 0 or current != observation.desired:
            return None
        if not low <= current <= high:
            return None
        if not self.window_seeded or self._tolerated is None:
            return None
        lowest, highest = self._tolerated
        # the metric values whose units (floor(value x scale + eps)) lie in the band,
        # each edge moved inwards by a little more than the guard, so a value the
        # band admits floors into it whatever the rounding of value x scale
        scale, edge = self.unit_scale, 2 * _QUANTUM_EPS
        window_s = self.behavior.scale_down.stabilization_window_s
        # below the tolerance the count holds while the window keeps a recommendation of
        # at least the count, and for good at the minimum (the clamp keeps it there)
        hold_until_s = math.inf
        if current > low:
            held = [r.time_s for r in self.state.recommendations if r.replicas >= current]
            hold_until_s = max(held) + window_s if held else -math.inf
        self._banded = current
        top = (highest + 1 - edge) / scale
        # Above the tolerance with pods pending the controller recounts them at 0
        # (`calculate_replicas`): the average over all `current` pods, at or below the
        # tolerance's top, keeps the count (WithinTolerance, or DirectionReversed below
        # it), while the same pods are ready.
        ready_top = top * current / observation.ready * (1 - 1e-12)
        return Band(
            band_metric(self.metric),
            (lowest + edge) / scale,
            top,
            current,
            observation.ready if observation.pending else None,
            ready_top if observation.pending else -math.inf,
            renew_s=window_s,
            hold_low=0.0,
            hold_high=(lowest - edge) / scale,
            hold_until_s=hold_until_s,
        )

    def pass_band(self, span: QuietSpan) -> None:
        """Record each quiet reading's recommendation in the scale-down window, as
        `decide` does (the current count within the tolerance, `calculate_replicas`'
        lower count below it), and drop what the windows and rate periods no longer
        reach."""
        current = self._banded
        lowest = self._tolerated[0] if self._tolerated else 0
        target, scale = self.target_units, self.unit_scale
        behavior, state = self.behavior, self.state
        times = span.time_s
        now_s = times[-1]
        # `stabilise` drops what the windows no longer reach before it adds the newest:
        # only the span's last window of readings is left to record (the newest always)
        cutoff = now_s - max(
            behavior.scale_up.stabilization_window_s, behavior.scale_down.stabilization_window_s
        )
        start = min(bisect.bisect_right(times, cutoff), len(times) - 1)
        kept = [r for r in state.recommendations if r.time_s > cutoff]
        values = span_values(self.metric, span, start)
        for time_s, value, ready in zip(times[start:], values, span.ready[start:], strict=True):
            units = math.floor(value * scale + _QUANTUM_EPS)
            # (above the tolerance only where the recount keeps it)
            replicas = current if units >= lowest else math.ceil(units / target * ready)
            kept.append(_new_recommendation(Recommendation, (time_s, replicas)))
        ups, downs = state.up_events, state.down_events
        if ups or downs:
            ups, downs = record_scale_event(
                ups, downs, now_s=now_s, previous=current, new=current,
                keep_s=behavior.max_period_s(),
            )  # fmt: skip
        self.state = HysteresisState(tuple(kept), ups, downs)


def tolerated_units(
    target: int, tolerance_up: float, tolerance_down: float
) -> tuple[int, int] | None:
    """The lowest and highest integer metric units whose ratio to `target` the
    tolerance keeps (`within_tolerance`); None when none does."""
    inside = [
        u
        for u in range(0, 4 * target + 2)
        if within_tolerance(u / target, tolerance_up, tolerance_down)
    ]
    return (inside[0], inside[-1]) if inside else None


class HpaSpec(PolicySpecBase):
    """Spec of `HpaPolicy`. Its `hysteresis` block *is* the HPA `behavior` (not a second layer).

    Preset `hpa`: utilisation target 0.7 with the Kubernetes default behavior.
    """

    kind: Literal["hpa"] = "hpa"
    metric: HpaMetric = "utilisation"
    target: float = Field(default=0.7, gt=0.0, description="fraction, or rps per replica")
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> HpaSpec:
        if self.metric == "utilisation" and self.target > 1.0:
            raise ValueError(
                f"target {self.target} is a utilisation fraction above 1; use e.g. 0.7 for 70%"
            )
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError(
                f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}; "
                "make min_replicas <= max_replicas"
            )
        return self

    def build(self) -> HpaPolicy:
        return HpaPolicy(
            target=self.target,
            metric=self.metric,
            behavior=self.hysteresis,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            name=self.display_name(),
        )
