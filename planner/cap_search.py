"""Where to try the rate-sized plans' utilisation cap next (`planner.oracle_search`).

A rate-sized plan (`sim.oracle.rate_sized`) asks for fewer replicas the higher its
utilisation cap, and its replay attains less: the oracle wants the highest cap whose
replay still meets the SLO, in as few replays as it can (on 14 days one replay is
0.75-0.8 s of the oracle's 3.9). Attainment falls slowly at low caps and ever faster
towards the cap the queue cannot take; the share of requests that miss bends less
(14-day ServeGen m-small: attainment's slope grows 3.8-fold from caps 0.80-0.85 to
0.95-1.00, log(1 - attainment)'s 2.3-fold), so the search steps in the log miss:

1. the first cap, then one step towards the target;
2. secant steps through the last two replays, each moving the cap at most
   `max_step`, until one replay met the SLO and another missed it;
3. within that bracket, false position with the Illinois rule: when the same end
   moves twice in a row, the other end's distance from the target is halved, so a
   bracket whose missed end lies past a cliff (attainment 0.27 a few hundredths
   above a cap that meets) still closes in a few replays.

It aims at the middle of the slack above the target, so that a replay lands in
[target, target + slack], where the caller stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Miss share below which the logarithm is not taken further (a replay that met every
#: request would otherwise sit at minus infinity).
_MISS_FLOOR = 1e-9


def log_miss(attainment: float) -> float:
    """log(1 - attainment), floored at `_MISS_FLOOR`."""
    return math.log(max(1.0 - attainment, _MISS_FLOOR))


@dataclass
class CapSearch:
    """The next cap to replay, from the replays so far (`record`, then `next_cap`).

    Attributes:
        target: The SLO's attainment target.
        slack: Attainment above the target at which a plan that meets is close enough.
        low, high: The range of the cap.
        first: The first cap tried.
        first_step: The second cap's distance from the first.
        max_step: The most a secant step moves the cap before the target is bracketed.
    """

    target: float
    slack: float
    low: float
    high: float
    first: float
    first_step: float
    max_step: float
    #: (cap, distance from the aim in log miss) of every replay, oldest first
    tried: list[tuple[float, float]] = field(default_factory=list)
    #: the bracket's ends: the highest cap that met, the lowest that missed
    met: tuple[float, float] | None = None
    missed: tuple[float, float] | None = None
    #: which end the last replay moved ("met" or "missed"), for the Illinois rule
    moved: str = ""

    @property
    def aim(self) -> float:
        """The attainment the search aims at: the middle of the slack above the target."""
        return self.target + 0.5 * self.slack

    def record(self, cap: float, attainment: float) -> None:
        """Take in what the replay at `cap` attained."""
        point = (cap, log_miss(attainment) - log_miss(self.aim))
        self.tried.append(point)
        if attainment >= self.target:
            if self.met is None or cap >= self.met[0]:
                self.met = point
            end = "met"
        else:
            if self.missed is None or cap <= self.missed[0]:
                self.missed = point
            end = "missed"
        if self.met is not None and self.missed is not None and end == self.moved:
            # Illinois: the end that stayed put twice counts half as far from the aim
            if end == "met":
                self.missed = (self.missed[0], 0.5 * self.missed[1])
            else:
                self.met = (self.met[0], 0.5 * self.met[1])
        self.moved = end

    def next_cap(self) -> float:
        """The cap to replay next, within [low, high]."""
        if not self.tried:
            return self._within_range(self.first)
        if self.met is not None and self.missed is not None and self.met[0] < self.missed[0]:
            (met_cap, met_off), (missed_cap, missed_off) = self.met, self.missed
            weight = -met_off / (missed_off - met_off)  # met_off < 0 < missed_off
            return self._within_range(met_cap + weight * (missed_cap - met_cap))
        return self._within_range(self._secant())

    def _secant(self) -> float:
        """A step from the last replay towards the aim: along the line through the
        last two replays where it slopes the right way, else `first_step`."""
        cap, off = self.tried[-1]
        towards = 1.0 if off < 0.0 else -1.0  # met above the aim: a higher cap
        if len(self.tried) >= 2:
            before_cap, before_off = self.tried[-2]
            if cap != before_cap:
                slope = (off - before_off) / (cap - before_cap)
                if slope > 0.0:  # the miss share grows with the cap, as it should
                    step = min(abs(off) / slope, self.max_step)
                    return cap + towards * step
        return cap + towards * self.first_step

    def _within_range(self, cap: float) -> float:
        return min(max(cap, self.low), self.high)
