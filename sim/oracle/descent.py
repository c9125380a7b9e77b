"""Local search on the engine itself: lower a plan where its replay says it can.

The model cannot see everything an engine does (its stationary queue, service strata,
the exact arrivals, when a scale-in drains), so the oracle's last step searches on
the engine: lower the replicas the plan requests by one over a block of decision
intervals, replay, keep the cut when the replay still meets the SLO and costs less.
Blocks are halves of the run, then quarters, ... down to single intervals, in passes
while a pass still cuts; a single interval at a request's edge is a scale-out asked
later or a scale-in asked earlier. The search is on what the engine is asked (the
desired replicas per decision interval), not on the model's ready capacity: a cut
there is exactly one change to the replay. A plan still the model's is cut on its
ready capacity per planning interval first (a block there moves whole requests, lead
included). Before each pass the whole schedule is moved earlier or later by a few
intervals (`SHIFTS`: the model requests one lead ahead, the engine draws its delays),
then each change of the requests on its own, and each run of equal requests is
lowered as a whole. A schedule already replayed is
never replayed again (the engine is deterministic given the seed).

Started from the model's plan it removes capacity the model bought for nothing;
started from the cheapest constant that meets the SLO (from above) it finds where the
engine needs the capacity without the model's opinion: on 15 minutes of chat traffic
at 0.99 the model put a fourth replica late in the run, the engine needed it early,
and the descent from `fixed:4` found the schedule the model missed
(`tests/planner/test_oracle_properties.py`, fluid seed 0).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from sim.oracle.solve import OracleResult
from sim.result import RunResult
from sim.workload.model import IntArray

#: A replayed plan and its run, the cheaper of two kept.
Verified = tuple[RunResult, OracleResult]


class Replayer(Protocol):
    """What the descent needs from the engine: replays that count against a budget."""

    def keep_cheaper(self, plan: OracleResult, best: Verified) -> tuple[bool, Verified]:
        """Replay `plan`: whether it meets the SLO, and the cheaper of it and `best`."""
        ...

    def over_budget(self) -> bool:
        """Whether optional replays should stop."""
        ...


def descend(
    check: Replayer,
    best: Verified,
    *,
    min_replicas: int,
    max_replays: int,
    max_replicas: int | None = None,
    on_ready: bool = True,
) -> tuple[Verified, int]:
    """Lower `best` block by block while its replay meets the SLO and costs less.

    First on the plan's ready capacity per planning interval (while the plan is the
    model's: a block there moves whole requests, lead included) with half of
    `max_replays`, then on what the engine is asked per decision interval, with
    shifts of the whole schedule and cuts of whole runs before each pass.

    Args:
        check: Replays candidate plans (and says when the budget is spent).
        best: A plan whose replay meets the SLO, and that replay.
        min_replicas: The pool's minimum (no interval goes below it).
        max_replays: Replays this descent may spend.
        max_replicas: Where a block one replica higher may also be cheaper (a
            spillover pool bills what the instance pool does not serve), the pool's
            maximum: a block the cut does not improve is then tried one higher.
        on_ready: Whether a plan still the model's is first cut on its ready
            capacity (False: on its requests only; the two end in different optima).

    Returns:
        The cheapest plan found (and its run), and the replays spent.
    """
    search = _Search(check, best, min_replicas, max_replicas, max_replays)
    if on_ready and best[1].desired is None:
        search.passes(on_ready=True, until=max_replays // 2)
    while not search.spent():
        before = search.best
        search.shifts()
        search.edges()
        search.plateaus()
        search.passes(on_ready=False, until=max_replays)
        if search.best is before:
            break
    return search.best, search.tries


#: Decision intervals the whole request schedule is moved by, each way.
SHIFTS = (8, 4, 2, 1)


class _Search:
    """The descent's state: the best plan so far, the schedules tried, the replays."""

    def __init__(
        self,
        check: Replayer,
        best: Verified,
        low: int,
        high: int | None,
        max_replays: int,
    ) -> None:
        self.check, self.best = check, best
        self.low, self.high = low, high
        self.steps = (-1,) if high is None else (-1, 1)
        self.max_replays = max_replays
        self.tries = 0
        self.tried = {best[1].desired_at_ticks().tobytes()}

    def spent(self, until: int | None = None) -> bool:
        limit = self.max_replays if until is None else until
        return self.tries >= limit or self.check.over_budget()

    def attempt(self, plan: OracleResult) -> bool:
        """Replay `plan` unless its requests were tried; whether it became the best."""
        key = plan.desired_at_ticks().tobytes()
        if key in self.tried:
            return False
        self.tried.add(key)
        self.tries += 1
        _, kept = self.check.keep_cheaper(replace(plan, chosen=trimmed(plan.chosen)), self.best)
        improved = kept is not self.best
        self.best = kept
        return improved

    def bounded(self, values: IntArray) -> IntArray:
        moved = np.maximum(values, self.low)
        return moved if self.high is None else np.minimum(moved, self.high)

    def shifts(self) -> None:
        """The requests moved earlier or later as a whole (the last request held at
        the end, the first at the start)."""
        for shift in SHIFTS:
            for earlier in (True, False):
                desired = self.best[1].desired_at_ticks()
                if self.spent() or shift >= len(desired):
                    return
                if earlier:
                    moved = np.concatenate([desired[shift:], np.full(shift, desired[-1])])
                else:
                    moved = np.concatenate([np.full(shift, desired[0]), desired[:-shift]])
                self.attempt(replace(self.best[1], desired=moved))

    def edges(self) -> None:
        """Each change of the requests moved by `SHIFTS` intervals on its own: a
        scale-out asked later, a scale-in asked earlier (and, with a maximum, the
        other way too), the first move that improves kept."""
        edge = 1
        while edge < len(self.best[1].desired_at_ticks()):
            desired = self.best[1].desired_at_ticks()
            if desired[edge] == desired[edge - 1]:
                edge += 1
                continue
            rises = desired[edge] > desired[edge - 1]
            for shift in SHIFTS:
                for later in (rises, not rises) if self.high is not None else (rises,):
                    if self.spent():
                        return
                    changed = desired.copy()
                    if later:  # the level before the edge held `shift` more intervals
                        changed[edge : edge + shift] = desired[edge - 1]
                    else:  # the level after it starts `shift` intervals earlier
                        changed[max(0, edge - shift) : edge] = desired[edge]
                    if self.attempt(replace(self.best[1], desired=changed)):
                        break
                else:
                    continue
                break
            edge += 1

    def plateaus(self) -> None:
        """Each run of equal requests one replica lower as a whole (one higher too, with
        a maximum): a block that follows the schedule's own steps, where an aligned
        block would cut a run in two and pay for one more scale-out."""
        start = 0
        while start < len(self.best[1].desired_at_ticks()):
            desired = self.best[1].desired_at_ticks()
            end = start
            while end < len(desired) and desired[end] == desired[start]:
                end += 1
            for step in self.steps:
                if self.spent():
                    return
                changed = desired.copy()
                changed[start:end] = self.bounded(desired[start:end] + step)
                if self.attempt(replace(self.best[1], desired=changed)):
                    break
            start = end

    def passes(self, *, on_ready: bool, until: int) -> None:
        """Cuts of one replica over halves, quarters, ... single intervals of the
        ready plan (`on_ready`, after the forced start) or of the requests, in passes
        while a pass still improves; from a constant, the whole run first (the
        ladder's neighbour below, as a schedule)."""

        def values(plan: OracleResult) -> IntArray:
            return plan.replicas if on_ready else plan.desired_at_ticks()

        def with_values(plan: OracleResult, changed: IntArray) -> OracleResult:
            if on_ready:
                return replace(plan, replicas=changed)
            return replace(plan, desired=changed)

        n = len(values(self.best[1]))
        first = forced_intervals(self.best[1]) if on_ready else 0
        whole = self.best[1].chosen.startswith("constant")
        improved = True
        while improved:
            improved = False
            block = max(1, n - first if whole else (n - first) // 2)
            while block >= 1:
                for start in range(first, n, block):
                    for step in self.steps:
                        if self.spent(until):
                            return
                        changed = values(self.best[1]).copy()
                        part = changed[start : start + block]
                        changed[start : start + block] = self.bounded(part + step)
                        if self.attempt(with_values(self.best[1], changed)):
                            improved = True
                            break
                block //= 2


def forced_intervals(plan: OracleResult) -> int:
    """Leading planning intervals no request can change (the initial capacity)."""
    return min(len(plan.replicas), 1 + round(plan.lead_s / plan.interval_s))


def trimmed(chosen: str) -> str:
    """The name of a plan the descent cut."""
    return chosen if chosen.endswith("+trim") else f"{chosen}+trim"
