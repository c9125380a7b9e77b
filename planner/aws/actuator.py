"""The AWS actuator: an Auto Scaling group's desired capacity behind `sim.contract.Actuator`.

The live controller drives this through the one control loop (`sim.control`),
exactly as the simulator drives its pools. Each `set_desired` is one
`SetDesiredCapacity` call (cooldowns not honoured: the policy's own hysteresis
already decided), retried on throttling, and recorded with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner.aws.retry import with_backoff
from sim.control import ActuationRecord


@dataclass
class AsgActuator:
    """Desired capacity of one Auto Scaling group.

    `current` and `bounds` read the group once per `refresh` (the controller
    refreshes at every decision point), so one decision costs one describe call.
    """

    client: Any
    group: str
    on_change: Callable[[ActuationRecord], None] | None = None
    log: list[ActuationRecord] = field(default_factory=list)
    _described: dict[str, Any] | None = field(default=None, repr=False)

    def refresh(self) -> dict[str, Any]:
        """Read the group now (desired, bounds, instances)."""
        found = with_backoff(
            lambda: self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
        )["AutoScalingGroups"]
        if not found:
            raise LookupError(f"auto scaling group {self.group} does not exist")
        self._described = found[0]
        return found[0]

    def _group(self) -> dict[str, Any]:
        return self._described if self._described is not None else self.refresh()

    def current(self) -> int:
        return int(self._group()["DesiredCapacity"])

    def bounds(self) -> tuple[int, int]:
        g = self._group()
        return int(g["MinSize"]), int(g["MaxSize"])

    def instances(self) -> tuple[int, int]:
        """(ready, pending) instances: InService, and Pending* lifecycle states."""
        states = [i.get("LifecycleState", "") for i in self._group().get("Instances", [])]
        ready = sum(1 for s in states if s == "InService")
        pending = sum(1 for s in states if s.startswith("Pending"))
        return ready, pending

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        low, high = self.bounds()
        if not low <= desired <= high:
            raise ValueError(f"desired {desired} outside the group's bounds [{low}, {high}]")
        previous = self.current()
        with_backoff(
            lambda: self.client.set_desired_capacity(
                AutoScalingGroupName=self.group, DesiredCapacity=desired, HonorCooldown=False
            )
        )
        record = ActuationRecord(now_s, self.group, previous, desired, reason)
        self.log.append(record)
        if self._described is not None:
            self._described = {**self._described, "DesiredCapacity": desired}
        if self.on_change is not None:
            self.on_change(record)
