"""Discrete actions -> desired capacity, and the reactive safety floor.

Discrete actions, because RLScale-Bench found one to two orders of magnitude fewer
SLO violations with them than with continuous ones. Two modes:

* `residual`: the action scales the base policy's proposal (AWARE's bootstrapping
  from a heuristic controller): the "no change" action (factor 1.0) returns the
  proposal untouched, so an untrained agent starts at the heuristic's score.
* `absolute`: the action scales the desired capacity in force.

Factors rather than replica deltas keep one action set meaningful for a pool of 8
replicas and one of 800; a factor other than 1.0 always moves at least one replica.
The env and the deployed policy share this module, so training and use agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from sim.contract import Observation

ActionMode = Literal["residual", "absolute"]
ACTION_MODES: tuple[str, ...] = get_args(ActionMode)
#: Scale-in by up to 20 %, scale-out by up to 50 % per decision: asymmetric, since
#: capacity removed is gone at once and capacity added arrives a boot later.
DEFAULT_FACTORS: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5)
#: The safety floor keeps capacity at least at the observed demand plus the queue
#: drained within this long, at this share of full-batch throughput.
FLOOR_QUEUE_DRAIN_S = 60.0
DEFAULT_FLOOR_UTILISATION = 0.9


@dataclass(frozen=True)
class ActionMap:
    """How an action index becomes a desired capacity.

    Attributes:
        mode: `residual` (relative to the base proposal) or `absolute` (relative to
            the desired capacity in force).
        factors: Multipliers, ascending, one per action; must contain 1.0.
    """

    mode: ActionMode = "residual"
    factors: tuple[float, ...] = DEFAULT_FACTORS

    def __post_init__(self) -> None:
        if self.mode not in ACTION_MODES:
            raise ValueError(f"action mode {self.mode!r}: use one of {', '.join(ACTION_MODES)}")
        if 1.0 not in self.factors:
            raise ValueError(f"factors {self.factors} must contain 1.0 (the 'no change' action)")
        if any(f <= 0 for f in self.factors) or list(self.factors) != sorted(set(self.factors)):
            raise ValueError(f"factors {self.factors} must be positive, distinct and ascending")

    @property
    def n(self) -> int:
        return len(self.factors)

    @property
    def no_change(self) -> int:
        """The action that keeps the anchor (the base proposal, or the capacity in force)."""
        return self.factors.index(1.0)

    def desired(self, action: int, *, base: int, current: int, low: int, high: int) -> int:
        """Desired replicas for `action`.

        "No change" returns the anchor untouched (even out of bounds: the control
        loop clamps and notes it, as for the base policy itself); any other action
        moves at least one replica and is clamped to [low, high].
        """
        if not 0 <= action < self.n:
            raise ValueError(f"action {action} outside 0..{self.n - 1}")
        anchor = base if self.mode == "residual" else current
        factor = self.factors[action]
        if factor == 1.0:
            return anchor
        value = round(anchor * factor)
        value = max(value, anchor + 1) if factor > 1.0 else min(value, anchor - 1)
        return min(max(value, low), high)

    def describe(self, action: int) -> str:
        anchor = "base" if self.mode == "residual" else "current"
        return f"{anchor} x{self.factors[action]:g}"


def reactive_floor(observation: Observation, utilisation: float) -> int:
    """Replicas the demand just observed needs at `utilisation` of full-batch throughput.

    Sizes the last interval's demand plus the rate that drains the queue within
    `FLOOR_QUEUE_DRAIN_S`: a learned policy may trim capacity, never below what the
    traffic already arriving needs. Missing demand gives 0 (no floor).
    """
    demand = observation.demand_rps
    if demand is None or not math.isfinite(demand):
        return 0
    drain_s = max(FLOOR_QUEUE_DRAIN_S, observation.interval_s)
    need_rps = demand + observation.queue_len / drain_s
    per_replica = observation.replica_capacity_rps * utilisation
    if per_replica <= 0:
        return 0
    return min(math.ceil(need_rps / per_replica), observation.max_replicas)
