"""Hysteresis settings as validated, serialisable values (the `hysteresis:` block of a spec).

The shape follows the Kubernetes `autoscaling/v2` `HorizontalPodAutoscalerBehavior`
(per direction: tolerance, stabilisation window, rate policies, selectPolicy), so a
spec can be emitted as HPA behavior unchanged. Defaults are the Kubernetes ones
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Kubernetes caps stabilizationWindowSeconds at one hour and periodSeconds at 30 minutes.
MAX_WINDOW_S = 3600.0
MAX_PERIOD_S = 1800.0
#: The HPA's cluster-wide default tolerance (kube-controller-manager
#: --horizontal-pod-autoscaler-tolerance=0.1).
DEFAULT_TOLERANCE = 0.1
#: Default scale-down stabilisation (--horizontal-pod-autoscaler-downscale-stabilization=5m).
DEFAULT_SCALE_DOWN_WINDOW_S = 300.0

SelectPolicy = Literal["Max", "Min", "Disabled"]


class RatePolicy(BaseModel):
    """One rate limit: at most `value` pods (or percent of replicas) per `period_s`.

    Mirrors `HPAScalingPolicy` (type Pods|Percent, value, periodSeconds).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0, description="pods, or percent of the period-start replicas")
    period_s: float = Field(gt=0.0, le=MAX_PERIOD_S, description="look-back of the limit (s)")


class DirectionRules(BaseModel):
    """Hysteresis for one direction (scale-up or scale-down), as `HPAScalingRules`.

    Attributes:
        tolerance: Dead band on the ratio (metric / target, or recommendation /
            current): no change while the ratio is within 1 +- tolerance on this side.
        stabilization_window_s: Look-back of the stabilisation window; 0 disables it.
        select_policy: `Max` picks the policy allowing the largest change, `Min` the
            smallest, `Disabled` forbids scaling in this direction.
        policies: Rate policies; empty means no rate limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0.0)
    stabilization_window_s: float = Field(default=0.0, ge=0.0, le=MAX_WINDOW_S)
    select_policy: SelectPolicy = "Max"
    policies: tuple[RatePolicy, ...] = ()

    def max_period_s(self) -> float:
        return max((policy.period_s for policy in self.policies), default=0.0)


def default_scale_up() -> DirectionRules:
    """Kubernetes default scale-up: no window; the larger of +100% and +4 pods per 15 s."""
    return DirectionRules(
        stabilization_window_s=0.0,
        select_policy="Max",
        policies=(
            RatePolicy(type="Percent", value=100, period_s=15.0),
            RatePolicy(type="Pods", value=4, period_s=15.0),
        ),
    )


def default_scale_down() -> DirectionRules:
    """Kubernetes default scale-down: 300 s window (highest recommendation), 100% per 15 s."""
    return DirectionRules(
        stabilization_window_s=DEFAULT_SCALE_DOWN_WINDOW_S,
        select_policy="Max",
        policies=(RatePolicy(type="Percent", value=100, period_s=15.0),),
    )


class HysteresisSpec(BaseModel):
    """Dead band, stabilisation, rate limit and clamp around any policy.

    The defaults reproduce the Kubernetes HPA default behavior, so `hysteresis: {}`
    in a spec means "behave like an HPA would around this recommendation". As in
    the Kubernetes API defaulting, a direction given in part keeps that
    direction's defaults for the fields it leaves out (`scale_down:
    {stabilization_window_s: 60}` keeps the 100%/15 s policy); `policies: []`
    removes the rate limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale_up: DirectionRules = Field(default_factory=default_scale_up)
    scale_down: DirectionRules = Field(default_factory=default_scale_down)

    def max_period_s(self) -> float:
        """Longest rate-policy period of either direction: how long scale events matter.

        Both directions' limits read both event lists, so events are kept this long.
        """
        return self.events_keep_s

    @cached_property
    def events_keep_s(self) -> float:
        """`max_period_s()`, computed once: the spec is frozen and the stages ask every decision."""
        return max(self.scale_up.max_period_s(), self.scale_down.max_period_s())

    @field_validator("scale_up", mode="before")
    @classmethod
    def _fill_up(cls, value: Any) -> Any:
        return _fill(value, default_scale_up())

    @field_validator("scale_down", mode="before")
    @classmethod
    def _fill_down(cls, value: Any) -> Any:
        return _fill(value, default_scale_down())


def _fill(value: Any, default: DirectionRules) -> Any:
    if isinstance(value, dict):
        return {**default.model_dump(), **value}
    return value
