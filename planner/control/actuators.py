"""Actuators the live controller puts between the control loop and AWS.

`GuardedActuator` narrows the live bounds to the emitted ones (the floor is
`bounds.min`) and limits each change to `max_step`, through the same
`infra.guardrails.check_change` the apply path runs; `ShadowActuator` acts on
nothing and records what it would have set (shadow mode, like AWS predictive
scaling's ForecastOnly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.contract import Actuator


@dataclass
class GuardedActuator:
    """`inner` within `[floor, ceiling]` and at most `max_step` per change.

    The control loop clamps to `bounds()`; a change larger than `max_step` is
    cut to `max_step` towards the decision, and the cut is noted in `refusals`.
    """

    inner: Actuator
    floor: int
    ceiling: int
    max_step: int | None = None
    refusals: list[str] = field(default_factory=list)

    def current(self) -> int:
        return self.inner.current()

    def bounds(self) -> tuple[int, int]:
        low, high = self.inner.bounds()
        return max(low, self.floor), min(high, self.ceiling)

    def limited(self, desired: int) -> int:
        """`desired`, cut to one `max_step` from the current capacity (guardrail max step)."""
        from infra import guardrails
        from policies.stack_config import Bounds

        current = self.current()
        low, high = self.bounds()
        violations = guardrails.check_change(
            "live", current, desired, Bounds(min=low, max=max(high, 1)), self.max_step
        )
        if not violations:
            return desired
        self.refusals += [v.message for v in violations]
        step = self.max_step if self.max_step is not None else abs(desired - current)
        moved = current + max(-step, min(step, desired - current))
        return max(low, min(high, moved))

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        allowed = self.limited(desired)
        if allowed != desired:
            reason = f"{reason}; max step {self.max_step}: {desired}->{allowed}"
        if allowed != self.current():
            self.inner.set_desired(allowed, reason, now_s)


@dataclass
class ShadowActuator:
    """Starts at the live capacity and bounds; remembers what it would set; touches nothing."""

    desired: int
    low: int
    high: int
    last_reason: str = ""
    changes: int = 0

    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self.low, self.high

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        if desired != self.desired:
            self.changes += 1
        self.desired, self.last_reason = desired, reason
