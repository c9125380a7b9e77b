"""Threshold scaling with a hysteresis band: out above an upper utilisation, in below a lower one.

The classic rule-based autoscaler (AWS simple scaling with two alarms; the
"calibrated threshold" baseline RLScale-Bench finds hard to beat). The band
between the thresholds is the dead band: inside it nothing changes.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import Band, QuietSpan

StepUnit = Literal["replicas", "percent"]

#: AWS EC2 Auto Scaling's default cooldown for simple scaling is 300 s
#: (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scaling-cooldowns.html);
#: scale-in keeps it, scale-out uses a shorter one so a surge is met within a minute.
DEFAULT_COOLDOWN_IN_S = 300.0
DEFAULT_COOLDOWN_OUT_S = 60.0


def step_size(current: int, step: float, unit: StepUnit) -> int:
    """Replicas one step moves: `step` replicas, or `step` percent of current rounded up (>= 1)."""
    if unit == "replicas":
        return max(1, int(step))
    return max(1, math.ceil(current * step / 100.0))


class ThresholdPolicy:
    """Scale out by a step above `upper`, in by a step below `lower`, with cooldowns.

    Parameters:
        upper: Utilisation above which to scale out (default 0.7).
        lower: Utilisation below which to scale in (default 0.3). The 0.7/0.3 band
            is the common rule-of-thumb pair for reactive autoscalers.
        step_out / step_in: Step sizes, in replicas or percent of the current
            desired capacity (`step_unit`); percent rounds up to at least 1.
        cooldown_out_s: After a scale-out, no further scale-out for this long
            (default 60 s), so pending capacity is not ordered twice.
        cooldown_in_s: No scale-in within this long of any scaling action
            (default 300 s, the AWS default cooldown).
        evaluation_periods: Consecutive intervals the threshold must be breached
            before acting (an alarm's EvaluationPeriods; default 1).

    Edges:
        * `utilisation is None`: hold, and the consecutive-breach counts restart
          (a missing datapoint breaks "consecutive").
        * Steps start from `Observation.desired`, which includes pending replicas,
          so capacity still provisioning is not ordered again.
        * The result is clamped to the pool bounds.
    """

    def __init__(
        self,
        *,
        upper: float = 0.7,
        lower: float = 0.3,
        step_out: float = 1.0,
        step_in: float = 1.0,
        step_unit: StepUnit = "replicas",
        cooldown_out_s: float = DEFAULT_COOLDOWN_OUT_S,
        cooldown_in_s: float = DEFAULT_COOLDOWN_IN_S,
        evaluation_periods: int = 1,
        name: str = "threshold",
    ) -> None:
        if not 0.0 <= lower < upper:
            raise ValueError(f"need 0 <= lower < upper, got lower={lower}, upper={upper}")
        self.upper = upper
        self.lower = lower
        self.step_out = step_out
        self.step_in = step_in
        self.step_unit: StepUnit = step_unit
        self.cooldown_out_s = cooldown_out_s
        self.cooldown_in_s = cooldown_in_s
        self.evaluation_periods = evaluation_periods
        self.name = name
        self._reset_state()

    def _reset_state(self) -> None:
        self.above = 0
        self.below = 0
        self.last_out_s = -math.inf
        self.last_action_s = -math.inf
        # the in-band reason's fixed parts, formatted once a run (most intervals are in band)
        self._band_left, self._band_right = f"WithinBand: {self.lower} <= ", f" <= {self.upper}"

    def reset(self, context: PolicyContext) -> None:
        del context
        self._reset_state()

    def decide(self, observation: Observation) -> Decision:
        now = observation.time_s
        current = observation.desired
        low, high = observation.min_replicas, observation.max_replicas
        utilisation = observation.utilisation
        if utilisation is None:
            self.above = self.below = 0
            return Decision(min(max(current, low), high), "MissingMetric: hold")
        self.above = self.above + 1 if utilisation > self.upper else 0
        self.below = self.below + 1 if utilisation < self.lower else 0
        if self.above >= self.evaluation_periods:
            if now - self.last_out_s < self.cooldown_out_s:
                return Decision(current, f"ScaleOutCooldown: utilisation {utilisation:.2f}")
            target = min(current + step_size(current, self.step_out, self.step_unit), high)
            if target > current:
                self.last_out_s = self.last_action_s = now
                return Decision(target, f"AboveUpper: {utilisation:.2f} > {self.upper}")
            return Decision(current, f"TooManyReplicas: at max {high}")
        if self.below >= self.evaluation_periods:
            if now - self.last_action_s < self.cooldown_in_s:
                return Decision(current, f"ScaleInCooldown: utilisation {utilisation:.2f}")
            target = max(current - step_size(current, self.step_in, self.step_unit), low)
            if target < current:
                self.last_action_s = now
                return Decision(target, f"BelowLower: {utilisation:.2f} < {self.lower}")
            return Decision(current, f"TooFewReplicas: at min {low}")
        clamped = min(max(current, low), high)
        return Decision(clamped, f"{self._band_left}{utilisation:.2f}{self._band_right}")

    def quiet_band(self, observation: Observation) -> Band | None:
        """Between the thresholds (both included) nothing changes and both breach
        counts restart (`sim.control.BandedPolicy`); cooldowns bind only outside."""
        replicas = observation.ready + observation.pending
        return Band("utilisation", self.lower, self.upper, replicas)

    def pass_band(self, span: QuietSpan) -> None:
        del span
        self.above = self.below = 0


class ThresholdSpec(PolicySpecBase):
    """Spec of `ThresholdPolicy` (preset `threshold`: 0.7/0.3, one replica per step)."""

    kind: Literal["threshold"] = "threshold"
    upper: float = Field(default=0.7, gt=0.0, le=1.0)
    lower: float = Field(default=0.3, ge=0.0, lt=1.0)
    step_out: float = Field(default=1.0, gt=0.0)
    step_in: float = Field(default=1.0, gt=0.0)
    step_unit: StepUnit = "replicas"
    cooldown_out_s: float = Field(default=DEFAULT_COOLDOWN_OUT_S, ge=0.0)
    cooldown_in_s: float = Field(default=DEFAULT_COOLDOWN_IN_S, ge=0.0)
    evaluation_periods: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _band(self) -> ThresholdSpec:
        if self.lower >= self.upper:
            raise ValueError(
                f"lower {self.lower} must be below upper {self.upper}; "
                "the gap between them is the hysteresis band (e.g. lower 0.3, upper 0.7)"
            )
        if self.step_unit == "replicas" and (
            self.step_out != int(self.step_out) or self.step_in != int(self.step_in)
        ):
            raise ValueError("step_out/step_in in replicas must be whole numbers")
        return self

    def build(self) -> Policy:
        return self.wrap(
            ThresholdPolicy(
                upper=self.upper,
                lower=self.lower,
                step_out=self.step_out,
                step_in=self.step_in,
                step_unit=self.step_unit,
                cooldown_out_s=self.cooldown_out_s,
                cooldown_in_s=self.cooldown_in_s,
                evaluation_periods=self.evaluation_periods,
                name=self.display_name(),
            )
        )
