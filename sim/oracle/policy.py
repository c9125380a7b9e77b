"""The oracle as a policy: solve from the future at reset, then replay the schedule.

`OracleSpec` (kind "oracle") is a clairvoyant reference, never deployable. Its
policy reads the scenario and the run's own traffic from the `PolicyContext`
(`make_context` passes both to policies whose `clairvoyant` is True), so the
oracle runs unchanged in the fluid and the SimPy engines.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from policies.base import Decision, Observation, PolicyContext
from policies.spec import PolicySpecBase
from sim.errors import PolicyError
from sim.oracle.solve import OracleMode, OracleResult, solve_oracle
from sim.scenario import Scenario
from sim.workload.model import IntArray


class OraclePolicy:
    """Replays the oracle's schedule, requesting capacity one provisioning lead ahead.

    Args:
        name: Display name.
        mode: "aggregate" or "per-interval" (see `solve_oracle`).
        lead_factor: Lead = mean provisioning delay x this factor (above 1 covers
            random delays at the price of earlier requests).
        scenario: Plan under this scenario instead of the context's.
    """

    clairvoyant: ClassVar[bool] = True

    def __init__(
        self,
        name: str = "oracle",
        mode: OracleMode = "aggregate",
        lead_factor: float = 1.0,
        scenario: Scenario | None = None,
    ) -> None:
        if lead_factor <= 0.0:
            raise PolicyError(f"oracle lead_factor must be > 0, got {lead_factor}")
        self.name = name
        self.mode: OracleMode = mode
        self.lead_factor = lead_factor
        self._scenario = scenario
        self.result: OracleResult | None = None
        self._desired: IntArray | None = None

    def reset(self, context: PolicyContext) -> None:
        """Solve the oracle for this run's traffic (the context must carry the future)."""
        scenario = self._scenario or context.scenario
        if context.future is None or scenario is None:
            raise PolicyError(
                "the oracle needs the run's future traffic and scenario; run it through an "
                "engine (which passes them to clairvoyant policies), not as a live policy"
            )
        self.result = solve_oracle(
            scenario,
            context.future,
            mode=self.mode,
            lead_s=context.provisioning_s * self.lead_factor,
        )
        self._desired = self.result.desired_at_ticks()

    def decide(self, observation: Observation) -> Decision:
        if self._desired is None:
            raise PolicyError("OraclePolicy.decide called before reset")
        tick = round(observation.time_s / observation.interval_s)
        desired = int(self._desired[min(max(tick, 0), len(self._desired) - 1)])
        desired = min(max(desired, observation.min_replicas), observation.max_replicas)
        return Decision(desired, f"oracle schedule: {desired} replicas")


class OracleSpec(PolicySpecBase):
    """Spec of the offline optimum (a reference for ratios, never deployable)."""

    kind: Literal["oracle"] = "oracle"
    mode: OracleMode = "aggregate"
    lead_factor: float = Field(default=1.0, gt=0.0)

    clairvoyant: ClassVar[bool] = True

    @model_validator(mode="after")
    def _no_hysteresis(self) -> OracleSpec:
        if self.hysteresis is not None:
            raise ValueError(
                "the oracle is the offline optimum: hysteresis stages would make it a "
                "different schedule; remove 'hysteresis' from the oracle spec"
            )
        return self

    def build(self) -> OraclePolicy:
        return OraclePolicy(self.display_name(), mode=self.mode, lead_factor=self.lead_factor)
