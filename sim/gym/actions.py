"""Discrete actions -> desired capacity, and the reactive safety floor.

Discrete actions, because RLScale-Bench found one to two orders of magnitude fewer
SLO violations with them than with continuous ones. Three modes:

* `residual-change` (the default for new training): the action adjusts the base
  policy's *change*. With the desired capacity in force `c` and the base proposal
  `b`, a change factor `f` gives `c + f * (b - c)` (0 holds, 1 is the base exactly,
  2 doubles its step), and a nudge `s` moves the proposal by up to
  `k = ceil(|s| * need)` replicas towards `need + k`, `need` being the replicas the
  demand just observed needs at full batch: `+s` only raises (headroom), `-s` only
  trims (what a spike left behind). While the base holds, no action raises a
  capacity already above `need + k`, so a constant action cannot compound (issue 10).
* `residual`: the action scales the base policy's proposed *level* (AWARE's
  bootstrapping from a heuristic controller). Kept for the bundles trained with it:
  a reactive base proposes "hold at the current capacity" most intervals, so any
  persistent factor other than 1.0 compounds (x1.5 every interval the base holds).
* `absolute`: the action scales the desired capacity in force.

In every mode the "no change" action (factor 1.0) returns the anchor untouched (the
base's proposal; the capacity in force in `absolute` mode), so an untrained agent
starts at the heuristic's score. Factors and need-relative nudges rather than
replica deltas keep one action set meaningful for a pool of 8 replicas and one of
800. The env and the deployed policy share this module, so training and use agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from sim.contract import Observation

ActionMode = Literal["residual-change", "residual", "absolute"]
ACTION_MODES: tuple[str, ...] = get_args(ActionMode)
#: The mode `planner train` and the retraining job's challenger train in.
DEFAULT_ACTION_MODE: ActionMode = "residual-change"
#: Level modes (`residual`, `absolute`): scale-in by up to 20 %, scale-out by up to
#: 50 % per decision: asymmetric, since capacity removed is gone at once and capacity
#: added arrives a boot later.
DEFAULT_FACTORS: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5)
#: `residual-change`: multipliers of the base's change (hold, half, the base, 1.5x, 2x).
DEFAULT_CHANGE_FACTORS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
#: `residual-change`: nudges as shares of the demand's need: trim towards 25 % or 10 %
#: headroom over it, or raise towards 10 % or 25 %. A trim is the agent's way down
#: after a spike: the floor lifts capacity to the spike's need, and a reactive base
#: steps back one replica a cooldown (NAB FB weeks 6-8: the threshold preset behind
#: the floor peaks at 1,610 replicas and costs 11x what it costs alone).
DEFAULT_NUDGES: tuple[float, ...] = (-0.25, -0.1, 0.1, 0.25)
#: The safety floor keeps capacity at least at the observed demand plus the queue
#: drained within this long, at this share of full-batch throughput.
FLOOR_QUEUE_DRAIN_S = 60.0
DEFAULT_FLOOR_UTILISATION = 0.9

#: How the safety floor's lift meets the base policy. `hold`: the lifted capacity is
#: the capacity in force the base sees next, so a reactive base (threshold, step)
#: keeps what a spike needed and sheds it one step a cooldown (NAB FB weeks 6-8,
#: threshold behind the floor: USD 129,840, peak 1,606 replicas, 11x the base
#: alone). `release`: the base sees its own last level (after the action) as the
#: capacity in force; the floor lifts the decision above it while the demand needs
#: it and lets go when it stops (same weeks: USD 11,927 at 89.9 % against the base
#: alone's 11,296 at 85.4 %). Proportional bases (HPA) read the ready replicas and do
#: not notice the difference.
FloorMode = Literal["hold", "release"]
FLOOR_MODES: tuple[str, ...] = get_args(FloorMode)
#: What new training uses; bundles written before the field existed hold.
DEFAULT_FLOOR_MODE: FloorMode = "release"


def default_factors(mode: ActionMode) -> tuple[float, ...]:
    """The factors a mode trains with unless told otherwise."""
    return DEFAULT_CHANGE_FACTORS if mode == "residual-change" else DEFAULT_FACTORS


def default_nudges(mode: ActionMode) -> tuple[float, ...]:
    """The nudges a mode trains with unless told otherwise (only `residual-change` has any)."""
    return DEFAULT_NUDGES if mode == "residual-change" else ()


@dataclass(frozen=True)
class ActionMap:
    """How an action index becomes a desired capacity.

    Actions `0 .. len(factors) - 1` are the factors, then one per nudge.

    Attributes:
        mode: `residual-change` (relative to the base's change), `residual` (the
            base's proposed level) or `absolute` (the desired capacity in force).
        factors: Multipliers, ascending, one per action; must contain 1.0. Positive
            in the level modes; 0 (hold) is allowed in `residual-change`.
        nudges: `residual-change` only: shares of the demand's need, ascending,
            non-zero, within [-1, 1].
    """

    mode: ActionMode
    factors: tuple[float, ...]
    nudges: tuple[float, ...] = ()

    @classmethod
    def default(cls, mode: ActionMode = DEFAULT_ACTION_MODE) -> ActionMap:
        """`mode` with the factors and nudges it trains with unless told otherwise."""
        return cls(mode, default_factors(mode), default_nudges(mode))

    def __post_init__(self) -> None:
        if self.mode not in ACTION_MODES:
            raise ValueError(f"action mode {self.mode!r}: use one of {', '.join(ACTION_MODES)}")
        if 1.0 not in self.factors:
            raise ValueError(f"factors {self.factors} must contain 1.0 (the 'no change' action)")
        smallest = 0.0 if self.mode == "residual-change" else math.nextafter(0.0, 1.0)
        if any(f < smallest for f in self.factors) or list(self.factors) != sorted(
            set(self.factors)
        ):
            sign = "non-negative" if self.mode == "residual-change" else "positive"
            raise ValueError(f"factors {self.factors} must be {sign}, distinct and ascending")
        if self.nudges and self.mode != "residual-change":
            raise ValueError(f"nudges {self.nudges} apply only to the residual-change mode")
        if any(s == 0 or abs(s) > 1 for s in self.nudges) or list(self.nudges) != sorted(
            set(self.nudges)
        ):
            raise ValueError(
                f"nudges {self.nudges} must be non-zero shares in [-1, 1], distinct and ascending"
            )

    @property
    def n(self) -> int:
        return len(self.factors) + len(self.nudges)

    @property
    def no_change(self) -> int:
        """The action that keeps the anchor (the base proposal, or the capacity in force)."""
        return self.factors.index(1.0)

    def desired(
        self,
        action: int,
        *,
        base: int,
        current: int,
        low: int,
        high: int,
        need: int | None = None,
    ) -> int:
        """Desired replicas for `action`.

        "No change" returns the anchor untouched (even out of bounds: the control
        loop clamps and notes it, as for the base policy itself); any other action
        is clamped to [low, high]. In the level modes a factor other than 1.0 moves
        at least one replica.

        Args:
            need: Replicas the demand just observed needs at full batch
                (`demand_need`); None (demand missing) makes every nudge keep the
                base's proposal. Only nudges read it.
        """
        if not 0 <= action < self.n:
            raise ValueError(f"action {action} outside 0..{self.n - 1}")
        if action >= len(self.factors):
            value = _nudged(base, need, self.nudges[action - len(self.factors)])
            return base if value == base else min(max(value, low), high)
        factor = self.factors[action]
        if self.mode == "residual-change":
            if factor == 1.0:
                return base
            return min(max(current + _round_away(factor * (base - current)), low), high)
        anchor = base if self.mode == "residual" else current
        if factor == 1.0:
            return anchor
        value = round(anchor * factor)
        value = max(value, anchor + 1) if factor > 1.0 else min(value, anchor - 1)
        return min(max(value, low), high)

    def describe(self, action: int) -> str:
        if action >= len(self.factors):
            return f"base nudge {self.nudges[action - len(self.factors)]:+g} need"
        factor = self.factors[action]
        if self.mode == "residual-change":
            return "base x1" if factor == 1.0 else f"base change x{factor:g}"
        anchor = "base" if self.mode == "residual" else "current"
        return f"{anchor} x{factor:g}"


def _round_away(value: float) -> int:
    """Round half away from zero (a half-step of one replica still moves one)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _nudged(base: int, need: int | None, share: float) -> int:
    """`base` moved by up to `k = ceil(|share| * need)` replicas towards `need + k`.

    Upwards (`share > 0`) only raises, downwards only trims: a proposal already
    past `need + k` on the nudge's side is left alone, so repeating a nudge cannot
    compound, and a trim never goes below the need plus its headroom.
    """
    if need is None:
        return base
    k = max(1, math.ceil(abs(share) * need))
    if share > 0:
        return max(base, min(base + k, need + k))
    return min(base, max(base - k, need + k))


def demand_need(observation: Observation) -> int | None:
    """Replicas the demand just observed (and its queue) needs at full batch; None if missing."""
    demand = observation.demand_rps
    if demand is None or not math.isfinite(demand):
        return None
    return reactive_floor(observation, 1.0)


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
