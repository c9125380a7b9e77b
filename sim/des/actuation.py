"""The actuator side both simulated pools share: desired count, bounds, audit trail.

`SimInstancePool` and `SimServerlessPool` differ in what a new desired count does
(launch or drain replicas; create or retire provisioned instances) but not in how
it is accepted: checked against the pool's bounds, ignored when unchanged, logged
with its reason, counted. `DesiredCapacity` holds that part once; a pool fills
the two hooks, as SimPy's resources fill `_do_put`/`_do_get`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import simpy

from sim.capacity.pools import InstancePool, ServerlessEndpoint
from sim.des.nodes import LogSink


class DesiredCapacity(ABC):
    """Base of the simulated pools; implements `sim.actuator.Actuator`.

    Args:
        env: The SimPy environment (the only clock).
        pool: The pool's model: its name (in log entries and errors), its inclusive
            (min, max) replica bounds and its desired count at t = 0.
        log: A list to append log tuples to, or None for no log.

    Attributes:
        desired: The desired count in force.
        actions: Accepted changes so far.
    """

    def __init__(
        self, env: simpy.Environment, pool: InstancePool | ServerlessEndpoint, log: LogSink
    ) -> None:
        self.name = pool.name
        self._env = env
        self._log = log
        self._bounds = (pool.min_replicas, pool.max_replicas)
        self.desired = pool.start_replicas
        self.actions = 0

    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self._bounds

    def set_desired(self, desired: int, reason: str, now_s: float | None = None) -> None:
        """Apply a desired count (the single place this pool's capacity changes).

        Args:
            desired: The new desired count.
            reason: Why, for the log.
            now_s: The decision time; SimPy's clock is the only one here, so it must
                be the environment's now (None means now).

        Raises:
            ValueError: `desired` is outside `bounds()` (clamping is the control
                loop's job), or `now_s` is not the simulation's current time.
        """
        low, high = self._bounds
        if not low <= desired <= high:
            raise ValueError(f"desired {desired} outside bounds [{low}, {high}] of {self.name}")
        if now_s is not None and abs(now_s - self._env.now) > 1e-9:
            raise ValueError(
                f"{self.name}: actuation at {now_s} s while the simulation is at {self._env.now} s"
            )
        if desired == self.desired:
            return
        now_s = self._env.now
        self._before_change(now_s)
        if self._log is not None:
            self._log.append((now_s, self.name, "desired", f"{self.desired}->{desired} {reason}"))
        previous = self.desired
        self.desired = desired
        self.actions += 1
        self._after_change(previous, now_s)

    def _before_change(self, now_s: float) -> None:
        """Hook: bring the pool's state up to `now_s` while the old count is in force."""
        del now_s

    @abstractmethod
    def _after_change(self, previous: int, now_s: float) -> None:
        """Hook: act on `self.desired`, which was `previous` until now."""
