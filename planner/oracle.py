"""The oracle as the planner uses it: solved offline, verified by replay, summarised.

`sim.oracle.solve_oracle` plans under a model of the engines (capacity levels and the
backlog carried between intervals). A model can be wrong, so the reference every
figure is divided by is not the model's plan but the cheapest plan that, replayed in
the engine reporting it (same seed, same arrivals as every policy), meets the SLO:

1. the model's optimum for the SLO target, replayed; where the engine measures each
   interval (fluid), a replay that misses and lost intervals the model kept floors
   them (`sim.oracle.floors`) and the plan is solved again; then, while the replay
   misses, the model's target is raised by the shortfall and the plan solved again;
2. the ladder of constant capacities: the model's cheapest constant that meets the
   target, then neighbours replayed until the cheapest constant that meets it in the
   engine is known;
3. requests sized from the realised arrivals (`sim.oracle.rate_sized`): each decision
   interval asks for what the true rate of the next provisioning delay needs at a
   utilisation cap, the cap searched with replays until the SLO is just met (a
   clairvoyant predictive policy; on long horizons far cheaper than the model's
   coarse plan);
4. a local search on the engine (`sim.oracle.descent`) from the cheapest model plan,
   the cheapest constant and the rate-sized plan, cheapest start first: cuts of one
   replica over blocks of intervals and shifts of the whole schedule, each kept while
   the replay meets the SLO and costs less; the cheapest plan found wins, and its
   replay's bill is the oracle's cost.
   If none met the SLO, the pool's maximum from the first moment is replayed: if
   that misses too, the scenario is infeasible (an answer, not an error): the summary
   says what the maximum attains and how many replicas would be needed.

On a long horizon, where one search of the cap (3.) spends the refinement budget
(14 days at 15 s), 3. comes first and runs to the end, a model plan is replayed (1.)
only where the bill the model expects for it is within `MODEL_BILL_MARGIN` of the
family's best, and no refinement follows.

The optional steps (floors, blend, margin, a ladder above a verified plan, the
descents) stop once `REFINE_TICKS` decision intervals have been replayed
(`DES_REFINE_TICKS` in the SimPy engine) and the last two replays no longer cut the
bill by `MIN_GAIN`: a budget in simulated intervals, so the same inputs give the same
oracle on any machine (`planner.oracle_replays`: the replays and their budget;
`planner.oracle_bounds`: the lower bound and the bill floor).

An engine never sees the future: it replays a plain `SchedulePolicy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.json_values import json_safe
from planner.oracle_bounds import (
    best_share_without_queueing,
    provisioning_quantile_s,
    replica_usd_per_s,
    requests_bill_floor,
    work_lower_bound,
)
from planner.oracle_replays import Verifier, realised_arrivals
from planner.oracle_search import (
    RATE_REPLAYS,
    descents,
    plan_ticks,
    rate_sized_plan,
)
from sim.engine import Engine
from sim.oracle.descent import Verified
from sim.replay import FixedPolicy, SchedulePolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

if TYPE_CHECKING:
    from sim.oracle import OracleResult
    from sim.oracle.problem import Problem

#: Longest planning interval at which the backlog model is worth solving: planned
#: coarser, it averages away the bursts the engine's queue sees (its 14-day ServeGen
#: plans replayed at 58-85 % attainment against a 95 % target).
MAX_BACKLOG_PLAN_S = 60.0
#: Replays of model plans while searching the target the model should plan for.
MODEL_REPLAYS = 5
#: Re-solves of one model with floors where its replay lost intervals the model kept
#: (`sim.oracle.floors`), before its target is searched.
FLOOR_ROUNDS = 6
#: On a long horizon the rate-sized family is searched first (`solve_reference`), and a
#: model plan is replayed only if the bill the model expects for it is less than this
#: share above the family's verified best. A replay bills what the plan requests (not
#: what the traffic does), and it billed more than the model expected each time it was
#: measured (`solve_oracle`, then one replay, seed 0): 14-day ServeGen
#: +0.56 % (USD 5,896.67 -> 5,929.76), 8-week NAB FB +1.10 %, KO +1.50 %, IBM +1.70 %;
#: and verifying a plan that misses only raises its bill.
MODEL_BILL_MARGIN = 0.05
#: Replays searching a uniform margin over a near-miss model plan.
MARGIN_REPLAYS = 7
#: Replays bisecting between the cheapest missing and the cheapest meeting model plan.
BLEND_REPLAYS = 4
#: Step added to a replay's shortfall (or taken off its surplus) when moving the
#: model's target, and the resolution of that search (attainment share).
TIGHTEN_MARGIN = 0.001
#: A constant whose bill is within this factor of the best verified plan's is still
#: worth finding: the descent from it (from above) can end below the plan.
CONSTANT_START_FACTOR = 1.25
#: Counts above the lowest constant that meets the SLO tried with a spillover pool.
SPILL_CLIMB = 8
#: Largest multiple of the pool's max_replicas tried when asking what would be needed.
NEEDED_MAX_FACTOR = 64


@dataclass(frozen=True)
class OracleSummary:
    """The offline optimum's totals (the reference every policy is divided by).

    Attributes:
        cost_usd: What the oracle schedule's replay in the engine billed.
        gpu_hours: GPU-hours of that replay.
        attainment: SLO attainment of that replay (0..1).
        predicted_attainment: What the capacity model predicted for the schedule.
        feasible: Whether any schedule within the pool's bounds meets the SLO in the
            engine (False: the reference is the pool's maximum, ratios are not given).
        lower_bound_usd: Work-conservation bound: no schedule meeting the SLO costs
            less (see `work_lower_bound`); None for a serverless main pool.
        best_attainment_at_max: Attainment of the pool's maximum from the first moment,
            when it was replayed (always when infeasible).
        needed_max_replicas: When infeasible, the smallest pool (max and initial
            replicas) whose maximum meets the SLO in the engine; None when none would
            (or none was found up to `NEEDED_MAX_FACTOR` x max_replicas).
        chosen: Which plan won: the model's ("lagrangian", "constant" or "max" as the
            solver names them), "blend" (between two model plans), "constant" (the
            ladder), "rate" (sized from the realised arrivals, `sim.oracle.rate_sized`),
            "random" (a random start), each with "+trim" when the local search on the
            engine (`sim.oracle.descent`) cut it.
        replays: Engine runs the verification took.
        schedule: Ready replicas per decision interval, as the replay ran them.
        requested: Replicas the replay requested per decision interval (what a
            `SchedulePolicy` replaying the oracle asks for).
    """

    cost_usd: float
    gpu_hours: float
    predicted_attainment: float
    attainment: float = math.nan
    feasible: bool = True
    lower_bound_usd: float | None = None
    best_attainment_at_max: float | None = None
    needed_max_replicas: int | None = None
    chosen: str = "model"
    replays: int = 0
    schedule: tuple[float, ...] = field(default=(), repr=False)
    requested: tuple[int, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        gap = (
            self.cost_usd / self.lower_bound_usd - 1.0
            if self.lower_bound_usd and self.feasible
            else None
        )
        return {
            "feasible": self.feasible,
            "cost_usd": json_safe(self.cost_usd),
            "gpu_hours": json_safe(self.gpu_hours),
            "attainment": json_safe(self.attainment),
            "predicted_attainment": json_safe(self.predicted_attainment),
            "lower_bound_usd": json_safe(self.lower_bound_usd),
            "gap_to_lower_bound": json_safe(gap),
            "best_attainment_at_max": json_safe(self.best_attainment_at_max),
            "needed_max_replicas": self.needed_max_replicas,
            "chosen": self.chosen,
            "replays": self.replays,
        }

    def ratio(self, cost_usd: float) -> float | None:
        """`cost_usd` as a multiple of the oracle's cost; None when the oracle costs
        nothing or no schedule meets the SLO."""
        return cost_usd / self.cost_usd if self.cost_usd > 0 and self.feasible else None


def solve_reference(
    scenario: Scenario,
    workload: Workload,
    *,
    engine: Engine | None = None,
    seed: int | None = None,
    lead_quantile: float = 0.5,
) -> OracleSummary:
    """The replay-verified oracle of `scenario` on `workload` in `engine` (default fluid).

    Capacity is requested `lead_quantile` of the provisioning delay ahead (the delays
    are random: asking one mean ahead leaves a node late about half the time)."""
    from sim.oracle import build_problem, solve_oracle

    if engine is None:
        from sim.engines import make_engine

        engine = make_engine("fluid")
    check = Verifier(scenario, workload, engine, scenario.seed if seed is None else seed)
    lead = provisioning_quantile_s(scenario, lead_quantile)
    arrivals = realised_arrivals(workload, check.seed, engine)
    problem = build_problem(scenario, workload, lead, arrivals=arrivals)
    check.ticks_per_replay = plan_ticks(problem)
    bound = work_lower_bound(scenario, problem)
    verified: list[Verified] = []

    # a solve is not repeated: a long horizon plans each variant before the rate-sized
    # search and verifies the same plan after it (the variant is kept with its plan,
    # so its id cannot be reused while the plan is)
    solved: dict[tuple[int, float], tuple[Problem, OracleResult]] = {}

    def solve(variant: Problem, goal: float) -> OracleResult:
        known = solved.get((id(variant), goal))
        if known is not None and known[0] is variant:
            return known[1]
        plan = solve_oracle(scenario, workload, target=goal, problem=variant)
        solved[(id(variant), goal)] = (variant, plan)
        return plan

    # two models of the same engine: with backlog carried (absorbs short bursts) and
    # with no interval planned overloaded (robust where bursts are finer than an
    # interval); each plan is verified by replay, the cheapest that meets wins
    stable = (
        problem.without_backlog()
        if problem.interval_s == problem.tick_s  # same intervals: derive, do not rebuild
        else build_problem(scenario, workload, lead, arrivals=arrivals, backlog=False)
    )
    # where the engine measures each interval, the model without backlog plans above
    # each interval's mean load only, not its busiest 10 s: the replays' floors add
    # capacity where the engine needs it instead of everywhere
    variants = [stable.without_backlog(steady=True) if check.measures_intervals else stable]
    if problem.interval_s <= MAX_BACKLOG_PLAN_S:  # coarser, the model averages bursts away
        variants.insert(0, problem)
    rated: Verified | None = None
    family_first = (
        arrivals is not None and check.ticks_per_replay * RATE_REPLAYS >= check.refine_ticks
    )
    if family_first:
        # a long horizon, where one search of the cap spends the refinement budget: the
        # rate-sized family first, searched to the end (a model plan's bill is known
        # only once verified: the model's figure is low), then a model plan replayed
        # only where the bill the model expects is close enough to win
        planned = [solve(variant, scenario.slo.target_attainment) for variant in variants]
        rated = rate_sized_plan(check, problem, (math.inf, planned[0]), arrivals)
        # each further move would replay the whole horizon: the search was the refinement
        check.refinements_closed = check.ticks >= check.refine_ticks
        if rated is not None:
            verified.append(rated)
            variants = [
                variant
                for variant, plan in zip(variants, planned, strict=True)
                if plan.cost_usd < rated[0].cost_usd * (1.0 + MODEL_BILL_MARGIN)
            ]
    for variant in variants:
        beat_usd = math.inf if rated is None else float(rated[0].cost_usd)
        model = _verified_model_plan(check, solve, variant, beat_usd)
        if model is not None:
            verified.append(model)
    # the ladder: with a plan verified, only constants whose bill could start a descent
    # below it (and that the model believes can meet the SLO), so that on a long
    # horizon with a daily cycle it costs nothing; without one, it answers feasibility
    cap = min((run.cost_usd for run, _ in verified), default=math.inf)
    bound_usd = cap * (CONSTANT_START_FACTOR if not check.over_budget() else 1.0)
    constant = _cheapest_constant(check, problem, below_usd=bound_usd)
    if constant is not None:
        run, replicas = constant
        template = verified[0][1] if verified else solve(problem, scenario.slo.target_attainment)
        verified.append((run, _constant_plan(template, replicas)))
    if verified and not family_first:  # else the pool's maximum missed: no cap can meet
        best = min(verified, key=lambda found: found[0].cost_usd)
        rated = rate_sized_plan(check, problem, (best[0].cost_usd, best[1]), arrivals)
        if rated is not None:
            verified.append(rated)

    if verified:
        run, plan = descents(check, verified)
        return OracleSummary(
            cost_usd=float(run.cost_usd),
            gpu_hours=float(run.gpu_hours),
            predicted_attainment=plan.predicted_attainment,
            attainment=run.slo_attainment,
            lower_bound_usd=bound,
            chosen=plan.chosen,
            replays=check.replays,
            schedule=tuple(float(v) for v in run.series.ready),
            requested=_requested(plan, problem),
        )
    # the constant ladder tried the pool's maximum from the first moment: it misses
    top = check.replay(FixedPolicy(scenario.pool.max_replicas, name="max"))
    return OracleSummary(
        cost_usd=float(top.cost_usd),
        gpu_hours=float(top.gpu_hours),
        predicted_attainment=math.nan,
        attainment=top.slo_attainment,
        feasible=False,
        lower_bound_usd=bound,
        best_attainment_at_max=top.slo_attainment,
        needed_max_replicas=_needed_max_replicas(check, problem),
        chosen="max",
        replays=check.replays,
        schedule=(float(scenario.pool.max_replicas),) * plan_ticks(problem),
    )


def _requested(plan: OracleResult, problem: Problem) -> tuple[int, ...]:
    """What the winning replay requested per decision interval: the plan's requests,
    or the ladder's constant (replayed as `FixedPolicy`, which requests it from the
    first decision)."""
    ticks = plan_ticks(problem)
    if plan.chosen == "constant":
        return (int(plan.replicas[-1]),) * ticks
    return tuple(int(v) for v in plan.desired_at_ticks()[:ticks])


def _constant_plan(template: OracleResult, replicas: int) -> OracleResult:
    """A constant capacity as a plan: the initial replicas until a request made at the
    first tick is ready, `replicas` after (what `FixedPolicy(replicas)` does)."""
    forced = min(len(template.replicas), 1 + round(template.lead_s / template.interval_s))
    ready = np.full(len(template.replicas), replicas, dtype=np.int64)
    ready[:forced] = template.replicas[:forced]
    return replace(
        template, replicas=ready, desired=None, predicted_attainment=math.nan, chosen="constant"
    )


def _verified_model_plan(
    check: Verifier,
    solve: Callable[[Problem, float], OracleResult],
    problem: Problem,
    beat_usd: float = math.inf,
) -> Verified | None:
    """The cheapest model plan whose replay meets the SLO, or None.

    Where the engine measures each interval's attainment, a replay that misses the SLO
    and lost intervals the model believed served floors them (`sim.oracle.floors`)
    and the plan is solved again for the same target, at most `FLOOR_ROUNDS` times.
    Beyond that the model is optimistic on some traffic and pessimistic on other, so
    the target it plans for is searched: start at the SLO's, move by each replay's
    shortfall (or surplus), then bisect between the highest target whose plan missed
    and the lowest whose plan met, at most `MODEL_REPLAYS` replays in all. A plan the
    model prices `MODEL_BILL_MARGIN` or more above `beat_usd` (a verified plan found
    elsewhere) is not replayed: it cannot win, nor can any plan for a higher target,
    so the search takes it as met (on 8 weeks of NAB FB a raised target gave the
    pool's maximum, USD 4.9 M, a 5 s replay).
    """
    from sim.oracle.floors import raise_floors, shortfalls

    slo = check.scenario.slo.target_attainment
    best: Verified | None = None
    missed_at, met_at = 0.0, 1.0 + TIGHTEN_MARGIN
    goal = slo
    seen: dict[bytes, float] = {}  # plan -> replay attainment (same plan, same run)
    near_miss: Verified | None = None
    hits = np.zeros(len(problem.counts), dtype=np.int64)
    searched = floored = 0
    while searched < MODEL_REPLAYS:
        plan = solve(problem, goal)
        if plan.cost_usd >= beat_usd * (1.0 + MODEL_BILL_MARGIN):
            searched += 1
            met_at = min(met_at, goal)
            goal = (missed_at + met_at) / 2.0
            if met_at - missed_at < TIGHTEN_MARGIN:
                break
            continue
        key = plan.replicas.tobytes()
        short = None
        if key in seen:
            attainment = seen[key]
        else:
            run, shares = check.replay_plan(plan)
            attainment = seen[key] = run.slo_attainment
            if (
                shares is not None
                and not check.meets(run)  # a plan that meets has losses to spare
                and floored < FLOOR_ROUNDS
                and not check.over_budget()
            ):
                short = shortfalls(problem, _level_path(plan.replicas, problem), shares)
            if check.meets(run) and (best is None or run.cost_usd < best[0].cost_usd):
                best = (run, plan)
            elif (
                not check.meets(run)
                and (short is None or not short.any())  # a margin cannot mend lost intervals
                and (near_miss is None or run.slo_attainment > near_miss[0].slo_attainment)
            ):
                near_miss = (run, plan)
        if attainment >= slo and plan.chosen == "lagrangian" and plan.multiplier_usd == 0.0:
            break  # the cheapest path above the model's floors: any lower goal gives it
        if short is not None and short.any():
            floored += 1
            problem = raise_floors(problem, _level_path(plan.replicas, problem), short, hits)
            continue
        searched += 1
        if attainment >= slo:
            met_at = min(met_at, goal)
            step = goal - (attainment - slo) - TIGHTEN_MARGIN
        else:
            if not plan.reachable:  # the model's maximum, and it misses: nothing higher
                break
            missed_at = max(missed_at, goal)
            step = goal + (slo - attainment) + TIGHTEN_MARGIN
        goal = step if missed_at < step < met_at else (missed_at + met_at) / 2.0
        if met_at - missed_at < TIGHTEN_MARGIN:
            break
    if near_miss is not None and (best is None or near_miss[0].cost_usd < best[0].cost_usd):
        widened = _with_margin(check, near_miss[1], problem, beat_usd)
        if widened is not None and (best is None or widened[0].cost_usd < best[0].cost_usd):
            best = widened
    if (
        best is not None
        and near_miss is not None
        and near_miss[0].cost_usd < best[0].cost_usd
        and not check.over_budget()
    ):
        best = _blend(check, near_miss[1], best, problem)
    return best


def _with_margin(
    check: Verifier, plan: OracleResult, problem: Problem, beat_usd: float = math.inf
) -> Verified | None:
    """The near miss with a relative margin after the forced start: where the model's
    capacity lands short of what the engine's bursts need everywhere, a uniform margin
    does. The margin doubles from 2 % until the replay meets, then is bisected
    (`MARGIN_REPLAYS` replays in all); the blend then takes back what it can. A
    widened plan whose requests alone bill `beat_usd` or more (`requests_bill_floor`)
    is not replayed, and ends the search: a wider margin bills more still, and so
    did the wider plan it would be bisected from (on 8 weeks of NAB FB three replays
    of 3.3 s, billed USD 20,713-20,734 against the rate-sized plan's 20,272)."""
    fixed = min(len(plan.replicas), 1 + round(plan.lead_s / plan.interval_s))
    top = int(problem.level_replicas[-1])

    def widened(margin: float) -> OracleResult:
        ready = plan.replicas.copy()
        grown = np.maximum(np.ceil(ready[fixed:] * (1.0 + margin)), ready[fixed:] + 1)
        ready[fixed:] = np.minimum(grown, top).astype(np.int64)
        return replace(plan, replicas=ready, chosen=f"{plan.chosen}+margin")

    duration_s = float(problem.lengths.sum())

    def cannot_win(candidate: OracleResult) -> bool:
        floor = requests_bill_floor(
            check.scenario, candidate.desired_at_ticks(), problem.tick_s, duration_s
        )
        return floor >= beat_usd

    best: Verified | None = None
    low, high, tries = 0.0, 0.02, 0
    while tries < MARGIN_REPLAYS and high <= 1.0:
        tries += 1
        candidate = widened(high)
        if cannot_win(candidate):
            return None
        run, _ = check.replay_plan(candidate)
        if check.meets(run):
            best = (run, candidate)
            break
        low, high = high, high * 2.0
    while best is not None and tries < MARGIN_REPLAYS and high - low > 0.005:
        tries += 1
        mid = (low + high) / 2.0
        candidate = widened(mid)
        if cannot_win(candidate):
            break
        met, best = check.keep_cheaper(candidate, best)
        low, high = (low, mid) if met else (mid, high)
    return best


def _blend(
    check: Verifier,
    missing: OracleResult,
    meeting: Verified,
    problem: Problem,
) -> Verified:
    """Between a cheaper plan that misses and a dearer one that meets.

    The Lagrangian finds only the corners of the cost-attainment frontier. Schedules
    between two corners take the cheaper plan's capacity in the intervals where the
    dearer one's extra capacity buys the least attainment (by the model), the dearer
    one's elsewhere; the number of intervals taken is bisected with replays, keeping
    the cheapest schedule that meets.
    """
    from sim.oracle.dp import interval_attainment

    best = meeting
    cheap, dear = missing.replicas, meeting[1].replicas
    gain = interval_attainment(_level_path(dear, problem), problem.model) - interval_attainment(
        _level_path(cheap, problem), problem.model
    )
    differ = np.flatnonzero(cheap != dear)
    order = differ[np.argsort(gain[differ], kind="stable")]
    low, high = 0, len(order)  # intervals taken from the cheaper plan: low meets
    for _ in range(BLEND_REPLAYS):
        if high - low <= 1:
            break
        taken = (low + high) // 2
        replicas = dear.copy()
        replicas[order[:taken]] = cheap[order[:taken]]
        met, best = check.keep_cheaper(replace(meeting[1], replicas=replicas, chosen="blend"), best)
        low, high = (taken, high) if met else (low, taken)
    return best


def _level_path(replicas: np.ndarray, problem: Problem) -> np.ndarray:
    """The model's level for each interval's replicas (the nearest level at or above)."""
    found = np.searchsorted(problem.level_replicas, replicas)
    return np.minimum(found, len(problem.level_replicas) - 1).astype(np.int32)


def _cheapest_constant(
    check: Verifier, problem: Problem, *, below_usd: float = math.inf
) -> tuple[RunResult, int] | None:
    """The cheapest constant capacity whose replay meets the SLO, if one costs less than
    `below_usd` (None otherwise, or if even the pool's maximum misses).

    A constant of n replicas bills at least n x duration x price per replica, so only
    counts below what `below_usd` buys are tried, from the model's cheapest constant
    that meets the target (or the top of that range) outwards; with a finite
    `below_usd` (a plan is verified), none when the model's cheapest constant is above
    that range and the refinement budget has fewer than two replays left. Counts
    below the answer are left to the descent from it, whose first cut is the whole run
    (attainment was not monotone in the count while the fluid engine fed a long
    window's rate into a saturated pool's queue).
    """
    from sim.oracle.dp import attained_within

    pool = check.scenario.pool
    per_replica = replica_usd_per_s(check.scenario)
    duration_s = float(problem.lengths.sum())
    high = pool.max_replicas
    if math.isfinite(below_usd):
        high = min(high, math.ceil(below_usd / (per_replica * duration_s)) - 1)
    if high < pool.min_replicas:
        return None
    need = check.scenario.slo.target_attainment * float(problem.counts.sum())
    guess = math.inf
    for level in range(len(problem.level_nodes)):
        flat = np.clip(level, problem.lower, problem.upper).astype(np.int32)
        if attained_within(flat, problem.model, need) is not None:
            guess = int(problem.level_replicas[level])
            break
    if math.isfinite(below_usd) and guess > high and check.replays_left() < 2:
        # a plan is verified, the model needs a dearer constant and a bracket would
        # spend the budget: on a long horizon with a daily cycle, the usual case
        return None

    def run_at(n: int) -> RunResult:
        return check.replay(FixedPolicy(n, name=f"fixed:{n}"))

    found = _lowest_meeting(run_at, check.meets, int(min(guess, high)), pool.min_replicas, high)
    if found is not None and check.scenario.spillover is not None:
        # a spillover pool bills what the instance pool does not serve: more replicas
        # can cost less; climb while the bill falls
        for more in range(found[1] + 1, min(found[1] + SPILL_CLIMB, pool.max_replicas) + 1):
            run = run_at(more)
            if not (check.meets(run) and run.cost_usd < found[0].cost_usd):
                break
            found = (run, more)
    if found is None or found[0].cost_usd >= below_usd:
        return None
    return found


def _lowest_meeting(
    run_at: Callable[[int], RunResult],
    meets: Callable[[RunResult], bool],
    guess: int,
    low: int,
    high: int,
) -> tuple[RunResult, int] | None:
    """Smallest n in [low, high] whose run meets the SLO, assuming attainment grows
    with n: gallop from `guess` to a bracket, then bisect (each probe is one run)."""
    guess = min(max(guess, low), high)
    runs: dict[int, RunResult] = {}

    def ok(n: int) -> bool:
        if n not in runs:
            runs[n] = run_at(n)
        return meets(runs[n])

    if ok(guess):
        hi, step = guess, 1
        lo = guess - 1
        while lo >= low and ok(lo):
            hi, lo = lo, lo - step
            step *= 2
        lo = max(lo, low - 1)
    else:
        lo, step = guess, 1
        hi = guess + 1
        while hi <= high and not ok(hi):
            lo, hi = hi, hi + step
            step *= 2
        if hi > high:
            if lo >= high or not ok(high):
                return None
            hi = high
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return runs[hi], hi


def _needed_max_replicas(check: Verifier, problem: Problem) -> int | None:
    """Smallest max_replicas whose maximum meets the SLO from the first moment; None
    when even unlimited capacity cannot (requests too slow on their own) or none up to
    `NEEDED_MAX_FACTOR` x the pool's max does."""
    scenario = check.scenario
    if best_share_without_queueing(problem) < scenario.slo.target_attainment:
        return None
    pool = scenario.pool

    def run_at(n: int) -> RunResult:
        # the pool as it would run at that size: n replicas from the start
        resized = pool.model_copy(update={"max_replicas": n, "initial_replicas": n})
        bigger = scenario.model_copy(update={"pool": resized})
        return check.replay(FixedPolicy(n, name=f"max:{n}"), bigger)

    found = _lowest_meeting(
        run_at, check.meets, 2 * pool.max_replicas, pool.max_replicas + 1,
        NEEDED_MAX_FACTOR * pool.max_replicas,
    )  # fmt: skip
    return None if found is None else found[1]


def oracle_replay(scenario: Scenario, workload: Workload, name: str = "oracle") -> SchedulePolicy:
    """The model's schedule for `workload` as a replay policy for any engine (unverified)."""
    from sim.oracle import solve_oracle

    return solve_oracle(scenario, workload).replay_policy(name)
