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
included). Between passes the whole schedule is moved earlier or later by a few
intervals (`SHIFTS`): the model requests one lead ahead, the engine draws its delays.

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
    check: Replayer, best: Verified, *, min_replicas: int, max_replays: int
) -> tuple[Verified, int]:
    """Lower `best` block by block while its replay meets the SLO and costs less.

    First on the plan's ready capacity per planning interval (while the plan is the
    model's: a block there moves whole requests, lead included) with half of
    `max_replays`, then on what the engine is asked per decision interval, with
    shifts of the whole schedule between passes.

    Args:
        check: Replays candidate plans (and says when the budget is spent).
        best: A plan whose replay meets the SLO, and that replay.
        min_replicas: The pool's minimum (no interval goes below it).
        max_replays: Replays this descent may spend.

    Returns:
        The cheapest plan found (and its run), and the replays spent.
    """
    tries = 0
    if best[1].desired is None:
        best, tries = _passes(check, best, min_replicas, max_replays // 2, on_ready=True)
    while tries < max_replays:
        best, more = _passes(check, best, min_replicas, max_replays - tries, on_ready=False)
        tries += more
        shifted, more = _shifts(check, best, max_replays - tries)
        tries += more
        if shifted is best:
            break
        best = shifted
    return best, tries


#: Decision intervals the whole request schedule is moved by, each way.
SHIFTS = (8, 4, 2, 1)


def _shifts(check: Replayer, best: Verified, max_replays: int) -> tuple[Verified, int]:
    """The requests moved earlier or later as a whole (the last request held at the
    end, the first at the start), each shift kept while it meets and costs less: the
    model's lead is a quantile of random delays, the engine's are drawn."""
    tries = 0
    for shift in SHIFTS:
        for earlier in (True, False):
            if tries >= max_replays or check.over_budget():
                return best, tries
            desired = best[1].desired_at_ticks()
            if shift >= len(desired):
                continue
            if earlier:
                moved = np.concatenate([desired[shift:], np.full(shift, desired[-1])])
            else:
                moved = np.concatenate([np.full(shift, desired[0]), desired[:-shift]])
            if np.array_equal(moved, desired):
                continue
            tries += 1
            plan = replace(best[1], desired=moved, chosen=trimmed(best[1].chosen))
            _, best = check.keep_cheaper(plan, best)
    return best, tries


def _passes(
    check: Replayer, best: Verified, min_replicas: int, max_replays: int, *, on_ready: bool
) -> tuple[Verified, int]:
    """Cuts of one replica over halves, quarters, ... single intervals of the ready
    plan (`on_ready`, after the forced start) or of the requests, in passes while a
    pass still cuts something."""

    def values(plan: OracleResult) -> IntArray:
        return plan.replicas if on_ready else plan.desired_at_ticks()

    def with_values(plan: OracleResult, changed: IntArray) -> OracleResult:
        if on_ready:
            return replace(plan, replicas=changed, chosen=trimmed(plan.chosen))
        return replace(plan, desired=changed, chosen=trimmed(plan.chosen))

    n = len(values(best[1]))
    first = forced_intervals(best[1]) if on_ready else 0
    tries = 0
    improved = True
    # from a constant, the whole run first: one replica fewer throughout (the ladder's
    # neighbour below, as a schedule); then halves, quarters, ...
    whole = best[1].chosen.startswith("constant")
    while improved:
        improved = False
        block = max(1, n - first if whole else (n - first) // 2)
        while block >= 1:
            for start in range(first, n, block):
                if tries >= max_replays or check.over_budget():
                    return best, tries
                changed = values(best[1]).copy()
                part = changed[start : start + block]
                cut = np.maximum(part - 1, min_replicas)
                if np.array_equal(cut, part):
                    continue
                changed[start : start + block] = cut
                tries += 1
                _, kept = check.keep_cheaper(with_values(best[1], changed), best)
                improved |= kept is not best
                best = kept
            block //= 2
    return best, tries


def forced_intervals(plan: OracleResult) -> int:
    """Leading planning intervals no request can change (the initial capacity)."""
    return min(len(plan.replicas), 1 + round(plan.lead_s / plan.interval_s))


def trimmed(chosen: str) -> str:
    """The name of a plan the descent cut."""
    return chosen if chosen.endswith("+trim") else f"{chosen}+trim"
