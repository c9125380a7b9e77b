"""An in-memory `sim.contract.Actuator`: for tests, dry runs and shadow mode.

After cluster-autoscaler's test cloud provider: a real implementation of the
protocol, with bounds and an audit trail, behind which no cloud exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.control import ActuationRecord


@dataclass
class InMemoryActuator:
    """A real, in-memory actuator.

    It enforces its bounds (a request outside them is an error, not a silent
    clamp: clamping is the control loop's job) and records every change.
    """

    desired: int
    min_capacity: int
    max_capacity: int
    name: str = "in-memory"
    log: list[ActuationRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.min_capacity <= self.desired <= self.max_capacity:
            raise ValueError(
                f"initial desired {self.desired} outside bounds "
                f"[{self.min_capacity}, {self.max_capacity}]"
            )

    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self.min_capacity, self.max_capacity

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        if not self.min_capacity <= desired <= self.max_capacity:
            raise ValueError(
                f"desired {desired} outside bounds [{self.min_capacity}, {self.max_capacity}]"
            )
        if desired != self.desired:
            self.log.append(ActuationRecord(now_s, self.name, self.desired, desired, reason))
            self.desired = desired
