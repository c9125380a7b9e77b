"""The oracle is what it claims to be, in each engine's own model, on scenarios drawn at
random (not the ones it was tuned on): no schedule within the pool's bounds that meets
the SLO costs less, its replay meets the SLO, the lower bound is below everything, and
a scenario is called infeasible only when the pool's maximum misses too.

Challengers: the whole fixed-N ladder, every preset that runs on an instance pool,
random schedules (piecewise constant, around the oracle's own level), local moves
of the oracle's own requests (a window one replica lower, a window moved to another
place, the whole schedule shifted earlier or later) and clairvoyant policies that
size the true arrival rate of the next provisioning delay with the predictive
policy's own sizer (issue 9's counterexample on ServeGen days 11-14 was one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import pytest

from planner.oracle import OracleSummary, solve_reference
from planner.oracle_replays import Verifier
from policies.predictive.sizing import Sizer, SizingConfig, clamp
from policies.registry import resolve
from sim.capacity.pools import ServerlessEndpoint
from sim.contract import Decision, Observation, PolicyContext
from sim.engine import Engine
from sim.engines import make_engine
from sim.fluid import FluidEngine
from sim.fluid.inputs import per_second_arrivals
from sim.oracle import solve_oracle
from sim.oracle.descent import descend
from sim.replay import FixedPolicy, SchedulePolicy
from sim.result import RunResult
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload
from sim.workload.model import RateEnvelope, Workload

#: Stated tolerance: a challenger may undercut the oracle by at most this share
#: (the issue allows up to 0.5 %).
TOLERANCE = 0.005
PRESETS = ["hpa", "aws-target-tracking", "threshold", "step", "predictive", "anomaly"]


def random_scenario(seed: int) -> Scenario:
    """A small scenario: 15 minutes of a real trace (bursty code or smoother chat),
    a random level, pool and SLO."""
    rng = np.random.default_rng(seed)
    trace = str(rng.choice(["azure_code.csv", "azure_conv.csv"]))
    kind = str(rng.choice(["gpu-node-pool", "ec2-asg"]))
    max_replicas = int(rng.choice([10, 14, 18]))
    return Scenario.model_validate(
        {
            "name": f"random-{seed}",
            "workload": {
                "format": "azure-llm",
                "path": f"package:{trace}",
                "start_h": float(rng.uniform(0.0, 0.7)),
                "duration_h": 0.25,
                "scale_mean_rps": float(rng.uniform(3.0, 14.0)),
            },
            "pool": {
                "kind": kind,
                "instance_type": "g5.xlarge",
                "min_replicas": 1,
                "max_replicas": max_replicas,
                "initial_replicas": int(rng.integers(2, 7)),
            },
            "slo": {
                "latency_s": float(rng.choice([25.0, 40.0, 60.0])),
                "target_attainment": float(rng.choice([0.9, 0.95, 0.99])),
            },
            "decision_interval_s": 15,
            "seed": seed,
            "base_dir": str(BUNDLED_DIR),
        }
    )


@dataclass
class Case:
    scenario: Scenario
    workload: Workload
    engine: Engine
    oracle: OracleSummary

    def run(self, policy: object) -> RunResult:
        return self.engine.run(self.scenario, self.workload, policy, seed=self.scenario.seed)  # type: ignore[arg-type]

    def meets(self, run: RunResult) -> bool:
        return run.slo_attainment >= self.scenario.slo.target_attainment


@functools.cache  # one oracle per (seed, engine), shared by the tests that check it
def make_case(seed: int, engine_name: str) -> Case:
    scenario = random_scenario(seed)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=seed)
    engine = make_engine(engine_name)
    oracle = solve_reference(scenario, workload, engine=engine, seed=scenario.seed)
    return Case(scenario, workload, engine, oracle)


def make_spill_case(seed: int) -> Case:
    scenario = random_scenario(seed)
    scenario = scenario.model_copy(
        update={"spillover": ServerlessEndpoint(name="spill", max_replicas=50)}
    )
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=seed)
    engine = make_engine("fluid")
    oracle = solve_reference(scenario, workload, engine=engine, seed=scenario.seed)
    return Case(scenario, workload, engine, oracle)


def ladder_and_presets(case: Case) -> list[object]:
    pool = case.scenario.pool
    found: list[object] = [
        FixedPolicy(n, name=f"fixed:{n}") for n in range(1, pool.max_replicas + 1)
    ]
    return found + [resolve(name).build() for name in PRESETS]


def random_schedules(case: Case, rng: np.random.Generator, count: int) -> list[object]:
    return [SchedulePolicy(desired, name="random") for desired in random_requests(case, rng, count)]


def random_requests(case: Case, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Piecewise-constant requests (5 pieces) around the oracle's mean level."""
    pool = case.scenario.pool
    found: list[np.ndarray] = []
    level = max(1.0, float(np.mean(case.oracle.schedule)) if case.oracle.schedule else 4.0)
    ticks = len(case.oracle.schedule) or 60
    for _ in range(count):
        cuts = np.sort(rng.choice(np.arange(1, ticks), size=4, replace=False))
        desired = np.empty(ticks, dtype=np.int64)
        for part in np.split(np.arange(ticks), cuts):
            desired[part] = int(np.clip(round(level * rng.uniform(0.6, 1.4)), 1, pool.max_replicas))
        found.append(desired)
    return found


def local_moves(case: Case, rng: np.random.Generator, count: int) -> list[object]:
    """Schedules one step from the oracle's own requests: a random window one replica
    lower, lowered there and raised in another window as long, or the whole schedule
    shifted by up to 8 intervals."""
    pool = case.scenario.pool
    requested = np.asarray(case.oracle.requested, dtype=np.int64)
    n = len(requested)
    found: list[object] = []
    for _ in range(count):
        desired = requested.copy()
        move = int(rng.integers(0, 3))
        length = int(rng.integers(1, 16))
        start = int(rng.integers(0, n - length + 1))
        if move == 0:
            shift = int(rng.integers(1, 9))
            if rng.random() < 0.5:
                desired = np.concatenate([desired[shift:], np.full(shift, desired[-1])])
            else:
                desired = np.concatenate([np.full(shift, desired[0]), desired[:-shift]])
        else:
            desired[start : start + length] -= 1
            if move == 2:
                elsewhere = int(rng.integers(0, n - length + 1))
                desired[elsewhere : elsewhere + length] += 1
        desired = np.clip(desired, pool.min_replicas, pool.max_replicas)
        found.append(SchedulePolicy(desired, name=f"local-move-{move}"))
    return found


class RateClairvoyant:
    """Knows the future: sizes the highest arrival rate of the `window_s` windows in
    [t, t + mean provisioning delay] with the predictive policy's `Sizer` at
    `max_utilisation` (as `NextBinClairvoyant` in benchmarks/servegen_ratio_bound.py,
    which met the SLO 0.6 % below the oracle on ServeGen days 11-14). `arrivals` per
    second: a trace's, an envelope's expected ones, or the run's realised ones."""

    def __init__(self, arrivals: np.ndarray, window_s: int, max_utilisation: float) -> None:
        windows = -(-len(arrivals) // window_s)
        padded = np.zeros(windows * window_s)
        padded[: len(arrivals)] = arrivals
        self.rates = padded.reshape(windows, window_s).mean(axis=1)
        self.window_s = window_s
        self.sizing = SizingConfig(max_utilisation=max_utilisation)
        self.name = f"rate-clairvoyant w={window_s} u={max_utilisation:g}"

    def reset(self, context: PolicyContext) -> None:
        self.sizer = Sizer.from_context(context, self.sizing)
        self.lead_s = context.provisioning_s

    def decide(self, observation: Observation) -> Decision:
        now = observation.time_s
        last = len(self.rates) - 1
        first = min(int(now // self.window_s), last)
        end = min(int((now + self.lead_s) // self.window_s), last)
        need = self.sizer.replicas(float(self.rates[first : end + 1].max()))
        return Decision(clamp(need, observation), "true rate of the windows ahead")


def rate_clairvoyants(case: Case, windows_s: tuple[int, ...]) -> list[object]:
    """The clairvoyant sizing over a grid of windows and utilisation caps, from the
    workload's arrivals and, for an envelope, from the run's realised ones too."""
    caps = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
    known = [per_second_arrivals(case.workload).arrivals]
    if isinstance(case.workload, RateEnvelope) and isinstance(case.engine, FluidEngine):
        known.append(case.engine.realised_arrivals(case.workload, case.scenario.seed))
    return [RateClairvoyant(a, w, u) for a in known for w in windows_s for u in caps]


def check_oracle(case: Case, challengers: list[object]) -> None:
    oracle, target = case.oracle, case.scenario.slo.target_attainment
    runs = [case.run(policy) for policy in challengers]
    meeting = [run for run in runs if case.meets(run)]
    assert oracle.lower_bound_usd is not None
    if not oracle.feasible:
        top = case.run(FixedPolicy(case.scenario.pool.max_replicas))
        assert not case.meets(top), "called infeasible, yet the pool's maximum meets the SLO"
        assert oracle.best_attainment_at_max == pytest.approx(top.slo_attainment)
        assert not meeting, f"called infeasible, yet {meeting[0].policy} meets the SLO"
        return
    assert oracle.attainment >= target, "the oracle's own replay must meet the SLO"
    assert oracle.lower_bound_usd <= oracle.cost_usd
    for run in meeting:
        assert run.cost_usd >= oracle.cost_usd * (1 - TOLERANCE), (
            f"{run.policy} meets the SLO ({run.slo_attainment:.4f}) at USD {run.cost_usd:.3f}, "
            f"below the oracle's USD {oracle.cost_usd:.3f} ({oracle.chosen})"
        )
        assert run.cost_usd >= oracle.lower_bound_usd


#: Seeds 0-7 were measured while the search was written (seed 0 was a known gap: a
#: random schedule met the SLO 3.5 % below the old oracle, which placed a short
#: scale-out late; the descent from the cheapest constant finds it); 8-15 were added
#: after, unchanged.
FLUID_SEEDS = range(16)
DES_SEEDS = [100, 101]


@pytest.mark.parametrize("seed", FLUID_SEEDS)
def test_no_fixed_capacity_or_preset_undercuts_the_oracle_in_the_fluid_engine(seed: int) -> None:
    case = make_case(seed, "fluid")
    check_oracle(case, ladder_and_presets(case))


@pytest.mark.parametrize("seed", FLUID_SEEDS)
def test_no_random_schedule_or_local_move_undercuts_the_oracle_in_the_fluid_engine(
    seed: int,
) -> None:
    case = make_case(seed, "fluid")
    rng = np.random.default_rng(seed)
    challengers = random_schedules(case, rng, 12)
    if case.oracle.feasible:
        challengers += local_moves(case, rng, 24)
    check_oracle(case, challengers)


@pytest.mark.parametrize("seed", FLUID_SEEDS)
def test_no_rate_clairvoyant_undercuts_the_oracle_in_the_fluid_engine(seed: int) -> None:
    case = make_case(seed, "fluid")
    check_oracle(case, rate_clairvoyants(case, (15, 30, 60, 120, 300)))


@pytest.mark.parametrize("seed", DES_SEEDS)
def test_no_rate_clairvoyant_undercuts_the_oracle_in_the_des(seed: int) -> None:
    case = make_case(seed, "des")
    check_oracle(case, rate_clairvoyants(case, (30, 120)))


def random_envelope_scenario(seed: int) -> Scenario:
    """Six hours of the bundled ServeGen days (a rate envelope: 10-minute bins, per-client
    burstiness), a random level, pool and SLO."""
    rng = np.random.default_rng(seed)
    hours = 6.0
    return Scenario.model_validate(
        {
            "name": f"random-envelope-{seed}",
            "workload": {
                "format": "servegen",
                "path": "package:servegen_m_small_2d",
                "start_h": float(rng.uniform(0.0, 48.0 - hours)),
                "duration_h": hours,
                "scale_mean_rps": float(rng.uniform(10.0, 40.0)),
            },
            "pool": {
                "kind": str(rng.choice(["gpu-node-pool", "ec2-asg"])),
                "instance_type": "g5.xlarge",
                "min_replicas": 2,
                "max_replicas": int(rng.choice([48, 64])),
                "initial_replicas": int(rng.integers(4, 16)),
            },
            "slo": {
                "latency_s": float(rng.choice([25.0, 40.0])),
                "target_attainment": float(rng.choice([0.9, 0.95])),
            },
            "decision_interval_s": 15,
            "seed": seed,
            "base_dir": str(BUNDLED_DIR),
        }
    )


#: Drawn before any oracle saw them. Without the oracle's rate-sized starts, a
#: clairvoyant met the SLO 11.9 % below it on seed 0 (and 3.7 % on seed 5, held out).
ENVELOPE_SEEDS = range(4)


@pytest.mark.parametrize("seed", ENVELOPE_SEEDS)
def test_no_rate_clairvoyant_undercuts_the_oracle_on_a_rate_envelope(seed: int) -> None:
    scenario = random_envelope_scenario(seed)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=seed)
    engine = make_engine("fluid")
    oracle = solve_reference(scenario, workload, engine=engine, seed=scenario.seed)
    case = Case(scenario, workload, engine, oracle)
    check_oracle(case, rate_clairvoyants(case, (60, 120, 300, 600)))


@pytest.mark.parametrize(("seed", "engine"), [(1, "fluid"), (4, "fluid"), (100, "des")])
def test_the_oracle_costs_what_replaying_its_requests_bills(seed: int, engine: str) -> None:
    case = make_case(seed, engine)
    assert case.oracle.feasible
    run = case.run(SchedulePolicy(case.oracle.requested, name="oracle"))
    assert run.cost_usd == pytest.approx(case.oracle.cost_usd, rel=1e-12)
    assert run.slo_attainment == pytest.approx(case.oracle.attainment, rel=1e-12)
    assert len(case.oracle.schedule) == len(case.oracle.requested)


@pytest.mark.parametrize("seed", [1, 4, 39])
def test_resumed_replays_find_the_same_oracle(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every plan replay resumed from checkpoints of earlier ones (as on long
    runs: `sim.fluid.checkpoint`), the oracle is the same plan at the same bill, and
    that bill is what replaying its requests from the start bills. (On these short
    runs the budget never binds, so fewer simulated intervals change nothing.)"""
    import planner.oracle_replays

    case = make_case(seed, "fluid")
    monkeypatch.setattr(planner.oracle_replays, "RESUME_MIN_TICKS", 1)
    scenario = case.scenario
    resumed = solve_reference(scenario, case.workload, engine=case.engine, seed=scenario.seed)
    assert (resumed.cost_usd, resumed.attainment) == (case.oracle.cost_usd, case.oracle.attainment)
    assert resumed.requested == case.oracle.requested
    run = case.run(SchedulePolicy(resumed.requested, name="oracle"))
    assert (run.cost_usd, run.slo_attainment) == (resumed.cost_usd, resumed.attainment)


@pytest.mark.parametrize("seed", [1, 4])
def test_a_schedule_met_again_runs_once_and_still_counts(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The searches meet the same schedule again (descents from different starts end
    alike, a margin too small to move a replica): its run is remembered, so each
    schedule runs in the engine once, while the refinement budget still counts every
    ask, so the oracle is the one it was without the memo (the resumed replays, which
    keep none, find the same: `test_resumed_replays_find_the_same_oracle`)."""
    case = make_case(seed, "fluid")
    asked: list[bytes] = []
    checks: list[Verifier] = []
    runs = [0]
    replay_plan, replay_shares = Verifier.replay_plan, Verifier.replay_shares

    def asking(self: Verifier, plan):  # type: ignore[no-untyped-def]
        checks.append(self)
        asked.append(plan.desired_at_ticks().tobytes())
        return replay_plan(self, plan)

    def running(self: Verifier, policy: SchedulePolicy):  # type: ignore[no-untyped-def]
        runs[0] += 1
        return replay_shares(self, policy)

    monkeypatch.setattr(Verifier, "replay_plan", asking)
    monkeypatch.setattr(Verifier, "replay_shares", running)
    scenario = case.scenario
    oracle = solve_reference(scenario, case.workload, engine=case.engine, seed=scenario.seed)
    assert (oracle.cost_usd, oracle.requested) == (case.oracle.cost_usd, case.oracle.requested)
    assert runs[0] == len(set(asked)) < len(asked)
    check = checks[0]
    assert check.ticks >= len(asked) * check.ticks_per_replay


#: Seeds where the oracle's own descent, started from each random schedule that meets
#: the SLO, is checked against it: 19 once ended 2.0 % below (USD 0.698 against 0.713;
#: fixed by the third descent, on the requests alone); 39 (ec2-asg, SLO 60 s at 0.95)
#: 0.75 % below (USD 1.1070 against 1.1154, a local optimum the three starts missed;
#: fixed by the oracle's own descents from random starts, drawn from another stream
#: than these). Held out: seeds 0-47 with this adversary, none more than 0.40 % below.
DESCENT_SEEDS = [19, 39]


@pytest.mark.parametrize("seed", DESCENT_SEEDS)
def test_the_descent_from_random_starts_does_not_undercut_the_oracle(seed: int) -> None:
    case = make_case(seed, "fluid")
    assert case.oracle.feasible
    scenario = case.scenario
    check = Verifier(scenario, case.workload, case.engine, scenario.seed)
    template = solve_oracle(scenario, case.workload)
    found: list[object] = []
    for requests in random_requests(case, np.random.default_rng(5000 + seed), 12):
        run = case.run(SchedulePolicy(requests, name="random"))
        if not case.meets(run):
            continue
        start = (run, replace(template, desired=requests, chosen="random"))
        (_, plan), _ = descend(
            check, start, min_replicas=scenario.pool.min_replicas, max_replays=160
        )
        found.append(SchedulePolicy(plan.desired_at_ticks(), name="descent-from-random"))
    assert found, "no random start meets the SLO"
    check_oracle(case, found)


#: Random scenarios with a serverless spillover pool (the endpoint's defaults, 50 at
#: most): the bill includes what the spillover serves, so more replicas can cost less.
SPILL_SEEDS = [1, 5, 9]


@pytest.mark.parametrize("seed", SPILL_SEEDS)
def test_nothing_undercuts_the_oracle_with_a_spillover_pool(seed: int) -> None:
    case = make_spill_case(seed)
    rng = np.random.default_rng(seed)
    challengers = [*ladder_and_presets(case), resolve("spillover").build()]
    challengers += random_schedules(case, rng, 12) + local_moves(case, rng, 24)
    check_oracle(case, challengers)
    assert case.oracle.feasible
    spilled = case.run(SchedulePolicy(case.oracle.requested, name="oracle"))
    assert spilled.cost_usd == pytest.approx(case.oracle.cost_usd, rel=1e-12)
    assert set(spilled.cost_by_pool) == {case.scenario.pool.name, "spill"}


@pytest.mark.parametrize("seed", DES_SEEDS)
def test_nothing_that_meets_the_slo_undercuts_the_oracle_in_the_des(seed: int) -> None:
    case = make_case(seed, "des")
    rng = np.random.default_rng(seed)
    check_oracle(
        case, ladder_and_presets(case) + random_schedules(case, rng, 4) + local_moves(case, rng, 8)
    )


def test_an_unreachable_slo_is_reported_with_what_would_reach_it() -> None:
    scenario = random_scenario(3).model_copy(deep=True)
    scenario = scenario.model_copy(
        update={
            "pool": scenario.pool.model_copy(update={"max_replicas": 2, "initial_replicas": 2}),
            "slo": scenario.slo.model_copy(update={"latency_s": 60.0, "target_attainment": 0.99}),
        }
    )
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=3)
    engine = make_engine("fluid")
    oracle = solve_reference(scenario, workload, engine=engine, seed=scenario.seed)
    assert not oracle.feasible
    assert oracle.to_json()["feasible"] is False
    assert oracle.ratio(10.0) is None
    assert oracle.needed_max_replicas is not None and oracle.needed_max_replicas > 2
    needed = oracle.needed_max_replicas
    bigger = scenario.model_copy(
        update={
            "pool": scenario.pool.model_copy(
                update={"max_replicas": needed, "initial_replicas": needed}
            )
        }
    )
    at_needed = engine.run(bigger, workload, FixedPolicy(needed), seed=scenario.seed)
    below = engine.run(bigger, workload, FixedPolicy(needed - 1), seed=scenario.seed)
    assert at_needed.slo_attainment >= 0.99 > below.slo_attainment


def test_no_capacity_is_enough_when_requests_alone_exceed_the_objective() -> None:
    scenario = random_scenario(5)
    scenario = scenario.model_copy(
        update={"slo": scenario.slo.model_copy(update={"latency_s": 3.0, "target_attainment": 0.9})}
    )
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=5)
    oracle = solve_reference(scenario, workload, engine=make_engine("fluid"), seed=scenario.seed)
    assert not oracle.feasible
    assert oracle.needed_max_replicas is None
    assert oracle.best_attainment_at_max is not None and oracle.best_attainment_at_max < 0.9
