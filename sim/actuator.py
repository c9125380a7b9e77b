"""The one seam through which capacity changes: the actuator protocol.

After cluster-autoscaler's `NodeGroup` (min, max, target, increase, decrease):
a decision is applied in exactly one place, `Actuator.set_desired`. The simulator's
pools, the AWS (boto3) actuator, the emitted Pulumi config and the in-memory fake
below all implement it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Actuator(Protocol):
    """Something whose desired capacity (in serving replicas) can be read and set."""

    def current(self) -> int:
        """The desired capacity currently in force."""
        ...

    def bounds(self) -> tuple[int, int]:
        """Inclusive (min, max) capacity the target accepts."""
        ...

    def set_desired(self, desired: int, reason: str) -> None:
        """Request `desired` capacity; `reason` is recorded for the audit trail."""
        ...


@dataclass(frozen=True)
class ActuationRecord:
    """One accepted capacity change."""

    time_s: float
    previous: int
    desired: int
    reason: str


@dataclass
class InMemoryActuator:
    """A real, in-memory actuator for tests and dry runs.

    It enforces its bounds (a request outside them is an error, not a silent
    clamp: clamping is the policy's job) and records every change.
    """

    desired: int
    min_capacity: int
    max_capacity: int
    clock_s: float = 0.0
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

    def set_desired(self, desired: int, reason: str) -> None:
        if not self.min_capacity <= desired <= self.max_capacity:
            raise ValueError(
                f"desired {desired} outside bounds [{self.min_capacity}, {self.max_capacity}]"
            )
        if desired != self.desired:
            self.log.append(ActuationRecord(self.clock_s, self.desired, desired, reason))
            self.desired = desired
