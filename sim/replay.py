"""Policies that replay a plan: a constant capacity, or a precomputed schedule.

Neither looks at the traffic. `FixedPolicy` is the statically provisioned
baseline; `SchedulePolicy` replays a desired count per decision tick, which is
how the engines run the oracle: `planner/oracle.py` solves it offline and hands the
engine nothing but the schedule.

Both know when their request may next change (`next_change_tick`, see
`sim.control.QuietPolicy`), so the control loop need not ask them in between.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import decision_tick
from sim.errors import PolicyError


class FixedPolicy:
    """Keeps a constant capacity: the baseline of a statically provisioned fleet."""

    def __init__(self, replicas: int, name: str = "fixed") -> None:
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")
        self.replicas = replicas
        self.name = name

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        desired = min(max(self.replicas, observation.min_replicas), observation.max_replicas)
        return Decision(desired, f"fixed at {desired}")

    def next_change_tick(self, tick: int) -> int | None:
        """None: the request never changes."""
        del tick
        return None


class SchedulePolicy:
    """Replays `desired[k]` at decision tick k (tick k is at k x interval).

    Args:
        desired: Desired replicas per tick, from t = 0; the last value holds after it.
        name: Display name.
        label: What the reason says the schedule is (e.g. "oracle schedule").
    """

    def __init__(
        self, desired: Sequence[int] | np.ndarray, name: str = "schedule", label: str = "schedule"
    ) -> None:
        values = np.asarray(desired)
        if values.ndim != 1 or len(values) == 0:
            raise PolicyError("a schedule needs at least one desired count")
        if not np.issubdtype(values.dtype, np.integer) or (values < 0).any():
            raise PolicyError("a schedule's desired counts must be non-negative integers")
        self._desired = [int(v) for v in values]
        # the ticks whose count differs from the one before
        self._changes = (np.flatnonzero(values[1:] != values[:-1]) + 1).tolist()
        self.name = name
        self.label = label

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        tick = decision_tick(observation.time_s, observation.interval_s)
        desired = self._desired[min(max(tick, 0), len(self._desired) - 1)]
        desired = min(max(desired, observation.min_replicas), observation.max_replicas)
        return Decision(desired, f"{self.label}: {desired} replicas")

    def next_change_tick(self, tick: int) -> int | None:
        """The first tick after `tick` whose count differs from tick's (None: the count
        holds to the end and after it)."""
        held = min(max(tick, 0), len(self._desired) - 1)
        after = bisect.bisect_right(self._changes, held)
        return self._changes[after] if after < len(self._changes) else None


class AskedEveryTick:
    """`policy` without `next_change_tick`: the control loop asks it at every tick,
    as it asks every other policy (what quiet spans are checked and timed against:
    tests/sim/fluid/test_quiet_spans.py, benchmarks/quiet_spans.py)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name

    def reset(self, context: PolicyContext) -> None:
        self.policy.reset(context)

    def decide(self, observation: Observation) -> Decision:
        return self.policy.decide(observation)
