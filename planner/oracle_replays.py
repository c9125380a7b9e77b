"""The engine replays that verify the oracle's plans, and their budget.

`Verifier` replays a plan in the engine that reports it, on the run's seed, and
counts the replays and the decision intervals they simulated: the optional
refinements of `planner.oracle.solve_reference` stop once `REFINE_TICKS` intervals
(`DES_REFINE_TICKS` in the SimPy engine) are spent and the last replays no longer cut
the bill by `MIN_GAIN`. On a long fluid run a replay resumes from a checkpoint of an
earlier one that asked for the same capacity up to it (`sim.fluid.checkpoint`).
`realised_arrivals` gives the per-second arrivals the engines realise for the seed,
which the oracle plans for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from planner.oracle_search import MIN_GAIN
from sim.engine import Engine
from sim.oracle.descent import Verified
from sim.replay import FixedPolicy, SchedulePolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import FloatArray, Workload

if TYPE_CHECKING:
    from sim.fluid.checkpoint import ScheduleReplays
    from sim.oracle import OracleResult

#: Decision intervals from which a fluid replay resumes from checkpoints of earlier
#: ones (`Verifier.replay_plan`); shorter runs replay from the start (a checkpoint
#: costs about as much as a few intervals).
RESUME_MIN_TICKS = 2_000
#: Replayed decision intervals after which the optional refinements (floors, blend,
#: margin, the ladder above a verified plan, the descents) stop: on long horizons one
#: replay takes seconds, and a verified plan is already there. About 2.5 replays of
#: 14 days at 15 s in the fluid engine, 8 of 4 days, thousands of 15 minutes.
#: Counted in intervals, not seconds, so that the plan does not depend on the machine
#: or its load (a retraining run on the same data must find the same oracle).
REFINE_TICKS = 200_000
#: The same for the SimPy engine, whose interval costs about 25 times a fluid one
#: (one per request): 33 replays of the conv hour at 12 req/s, 133 of 15 minutes.
DES_REFINE_TICKS = 8_000
#: Past the budget, refinements go on while one of the last `GAIN_WINDOW` replays cut
#: the bill by `MIN_GAIN`, up to `REFINE_EXTENSION` times the budget: the four-day
#: retraining window's descent cuts 0.2-0.9 % on most replays for 19 of them (at a
#: flat 200,000 it cost 1.9 % more than the old oracle), the 14-day what-if's 0.0004 %
#: after its second.
GAIN_WINDOW = 2
REFINE_EXTENSION = 2.25


@dataclass
class Verifier:
    """Replays plans in one engine on one seed, counting the runs."""

    scenario: Scenario
    workload: Workload
    engine: Engine
    seed: int
    #: Decision intervals one replay simulates (what the refinement budget counts).
    ticks_per_replay: int = 1
    replays: int = 0
    ticks: int = 0
    #: Per replay `keep_cheaper` made, whether it cut the best bill by `MIN_GAIN`.
    gains: list[bool] = field(default_factory=list)
    #: Plan replays resumed from checkpoints of earlier ones (fluid, long runs only).
    resuming: ScheduleReplays | None = None
    #: What each schedule replayed so far gave, by its requests (short runs: below
    #: `RESUME_MIN_TICKS`): the searches meet the same schedule again (the descents
    #: from different starts, a margin too small to move a replica), and the same
    #: requests replay to the same run.
    replayed: dict[bytes, tuple[RunResult, FloatArray | None]] = field(default_factory=dict)
    #: Set once a long horizon's search of the rate-sized cap has spent the budget:
    #: no refinement follows, whatever that search gained (`solve_reference`).
    refinements_closed: bool = False

    @property
    def measures_intervals(self) -> bool:
        """Whether the engine reports each interval's attainment (`replay_shares`)."""
        from sim.fluid import FluidEngine

        return isinstance(self.engine, FluidEngine)

    def over_budget(self) -> bool:
        """Whether the optional refinements (floors, blend, margin, descents) stop."""
        if self.refinements_closed:
            return True
        if self.ticks <= self.refine_ticks:
            return False
        gaining = any(self.gains[-GAIN_WINDOW:])
        return not gaining or self.ticks > REFINE_EXTENSION * self.refine_ticks

    def replays_left(self) -> int:
        """Whole replays the refinement budget still affords."""
        return max(0, self.refine_ticks - self.ticks) // max(self.ticks_per_replay, 1)

    @property
    def refine_ticks(self) -> int:
        return REFINE_TICKS if self.measures_intervals else DES_REFINE_TICKS

    def _count(self, ticks: int | None = None) -> None:
        self.replays += 1
        self.ticks += self.ticks_per_replay if ticks is None else ticks

    def replay_plan(self, plan: OracleResult) -> tuple[RunResult, FloatArray | None]:
        """Replay what `plan` requests, with the per-interval shares where the engine
        measures them (`replay_shares`). On a long fluid run the replay resumes from
        the latest checkpoint of a recent replay that requested the same up to it
        (`sim.fluid.checkpoint`: the same result, bit for bit), and the budget counts
        only the intervals it simulated."""
        policy = plan.replay_policy()
        resuming = self._resuming()
        if resuming is None:
            key = plan.desired_at_ticks().tobytes()
            known = self.replayed.get(key)
            if known is not None:
                # the budget still counts it, so that the oracle is the one it was
                # before the memo; only `replays` (engine runs) does not
                self.ticks += self.ticks_per_replay
                return known
            found = self.replay_shares(policy)
            self.replayed[key] = found
            return found
        replayed = resuming.replay(policy, plan.desired_at_ticks())
        self._count(replayed.simulated)
        return replayed.result, replayed.shares

    def _resuming(self) -> ScheduleReplays | None:
        """The resuming replays, where they pay: the fluid engine, an instance pool,
        at least `RESUME_MIN_TICKS` decision intervals."""
        from sim.capacity.pools import ServerlessEndpoint
        from sim.engine import make_context
        from sim.fluid import FluidEngine
        from sim.fluid.checkpoint import ScheduleReplays

        if self.resuming is None:
            engine, scenario = self.engine, self.scenario
            if (
                not isinstance(engine, FluidEngine)
                or isinstance(scenario.pool, ServerlessEndpoint)
                or self.ticks_per_replay < RESUME_MIN_TICKS
            ):
                return None
            # `FluidEngine.run`'s context (a schedule replay ignores it)
            policy_rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(2)[1])
            context = make_context(scenario, self.workload, policy_rng)
            self.resuming = ScheduleReplays(engine, scenario, self.workload, self.seed, context)
        return self.resuming

    def replay(
        self, policy: FixedPolicy | SchedulePolicy, scenario: Scenario | None = None
    ) -> RunResult:
        self._count()
        return self.engine.run(scenario or self.scenario, self.workload, policy, seed=self.seed)

    def replay_shares(self, policy: SchedulePolicy) -> tuple[RunResult, FloatArray | None]:
        """Replay `policy` and, where the engine measures it, the share of requests
        within the SLO in each decision interval (None from an engine that does not)."""
        from sim.control import ControlLoop
        from sim.engine import make_context
        from sim.fluid import FluidEngine

        engine = self.engine
        if not isinstance(engine, FluidEngine):
            return self.replay(policy), None
        self._count()
        # `FluidEngine.run`, keeping the steppable run to read its per-interval shares
        policy_rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(2)[1])
        context = make_context(self.scenario, self.workload, policy_rng)
        run = engine.start(self.scenario, self.workload, self.seed)
        loop = ControlLoop(policy, run.actuators(), context)
        loop.reset()
        result = run.simulate(loop, self.seed)
        shares = getattr(run, "interval_share", None)  # instance pools measure it
        return result, None if shares is None else np.asarray(shares, dtype=np.float64)

    def meets(self, run: RunResult) -> bool:
        return run.slo_attainment >= self.scenario.slo.target_attainment

    def keep_cheaper(self, plan: OracleResult, best: Verified) -> tuple[bool, Verified]:
        """Replay `plan`: whether it meets the SLO, and the cheaper of it and `best`."""
        run, _ = self.replay_plan(plan)
        met = self.meets(run)
        self.gains.append(met and run.cost_usd < (1.0 - MIN_GAIN) * best[0].cost_usd)
        return met, (run, plan) if met and run.cost_usd < best[0].cost_usd else best


def realised_arrivals(workload: Workload, seed: int, engine: Engine) -> np.ndarray | None:
    """Per-second arrivals of an envelope as the engines realise it with `seed` (the
    oracle knows the run's future exactly); None for a trace (already exact)."""
    from sim.fluid import FluidEngine
    from sim.workload.model import RateEnvelope

    if not isinstance(workload, RateEnvelope):
        return None
    # the fluid engine's own sampler and stream: the arrivals every policy of the seed
    # sees (its settings decide whether requests are drawn one by one, as the DES does);
    # a fluid engine has them already when it ran the seed (0.25 s on 14 days)
    sampler = engine if isinstance(engine, FluidEngine) else FluidEngine()
    return sampler.realised_arrivals(workload, seed)
