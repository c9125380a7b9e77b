"""Quiet spans: a policy that says when its request may change is not asked in between,
and the run is what it is when the loop asks at every tick, bit for bit.

Every case runs twice: as is (schedules and fixed capacities skip the ticks with
nothing to decide) and through `AskedEveryTick`, which hides `next_change_tick` so the loop
steps every interval as it always did. The whole `RunResult`, the per-interval shares,
the loop's history and decision count, and every checkpoint must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sim.capacity.pools import ServerlessEndpoint
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import ControlLoop, drive
from sim.engine import make_context
from sim.fluid import FluidEngine
from sim.fluid.checkpoint import Checkpoint, ScheduleReplays, drive_checkpointed, resume
from sim.fluid.engine import _InstanceRun
from sim.replay import AskedEveryTick, FixedPolicy, SchedulePolicy
from sim.scenario import Scenario
from sim.workload.model import Workload

from .asked import SEED, both, check, same_history, same_result, started
from .conftest import load, make_scenario, poisson_envelope, uniform_trace


class Counted:
    """`policy` (with its `next_change_tick`), counting the ticks it is asked at."""

    def __init__(self, policy: SchedulePolicy | FixedPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.asked = 0

    def reset(self, context: PolicyContext) -> None:
        self.policy.reset(context)

    def decide(self, observation: Observation) -> Decision:
        self.asked += 1
        return self.policy.decide(observation)

    def next_change_tick(self, tick: int) -> int | None:
        return self.policy.next_change_tick(tick)


class Unclamped:
    """A quiet policy that asks for more than the pool's maximum and does not clamp:
    the loop clamps it at every tick and counts each clamp, quiet or not."""

    name = "unclamped"

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        del observation
        return Decision(1_000, "too many")

    def next_change_tick(self, tick: int) -> int | None:
        del tick
        return None


# --- schedules --------------------------------------------------------------------------


def _ticks(scenario: Scenario, workload: Workload) -> int:
    run = FluidEngine().start(scenario, workload, SEED)
    assert isinstance(run, _InstanceRun)
    return run.n_intervals


def _random(rng: np.random.Generator, ticks: int, low: int, high: int) -> np.ndarray:
    """Levels held for 1 to 40 ticks, some below and above the pool's bounds."""
    lengths = rng.integers(1, 41, size=ticks)
    levels = rng.integers(low - 2, high + 3, size=ticks)
    return np.repeat(levels, lengths)[:ticks].clip(0).astype(np.int64)


SCHEDULES: dict[str, Callable[[np.random.Generator, int], SchedulePolicy | FixedPolicy]] = {
    "random levels": lambda rng, n: SchedulePolicy(_random(rng, n, 4, 24)),
    "every tick": lambda rng, n: SchedulePolicy(rng.integers(4, 25, size=n)),
    "alternating": lambda rng, n: SchedulePolicy(np.tile([6, 14], n // 2 + 1)[:n]),
    "constant": lambda rng, n: SchedulePolicy(np.full(n, 12)),
    "short (last holds)": lambda rng, n: SchedulePolicy(_random(rng, n // 3, 4, 24)),
    "fixed": lambda rng, n: FixedPolicy(10),
    "fixed above max": lambda rng, n: FixedPolicy(100),
}


def _trace() -> tuple[Scenario, Workload]:
    scenario = make_scenario()
    return scenario, load(scenario)


def _envelope() -> tuple[Scenario, Workload]:
    return make_scenario(), poisson_envelope(12.0, 3600.0)


def _uniform_tokens() -> tuple[Scenario, Workload]:
    return make_scenario(), uniform_trace(6.0, 1800.0, (400, 200))


def _odd_interval() -> tuple[Scenario, Workload]:
    """7.5 s ticks: interval bounds rounded to whole seconds, half to even."""
    scenario = make_scenario(decision_interval_s=7.5)
    return scenario, poisson_envelope(10.0, 1800.0)


WORKLOADS: dict[str, Callable[[], tuple[Scenario, Workload]]] = {
    "request trace": _trace,
    "rate envelope": _envelope,
    "trace with tokens": _uniform_tokens,
    "7.5 s interval": _odd_interval,
}


@pytest.mark.parametrize("schedule", list(SCHEDULES), ids=list(SCHEDULES))
@pytest.mark.parametrize("setting", list(WORKLOADS), ids=list(WORKLOADS))
def test_a_quiet_run_is_the_run_asked_at_every_tick(schedule: str, setting: str) -> None:
    scenario, workload = WORKLOADS[setting]()
    policy = Counted(SCHEDULES[schedule](np.random.default_rng(17), _ticks(scenario, workload)))
    fast, slow = both(scenario, workload, policy)
    check(fast, slow)
    asked_quietly = policy.asked - slow[1].decisions  # the asked run asked at every tick
    if schedule == "alternating":
        assert asked_quietly == slow[1].decisions
    elif schedule != "every tick":  # the others hold a count for a while: spans taken
        assert asked_quietly < slow[1].decisions / 2


def test_quiet_spans_skip_the_policy_between_changes() -> None:
    """The loop asks a schedule held for 20 ticks once a hold, and still counts every
    tick as a decision."""
    scenario, workload = _envelope()
    ticks = _ticks(scenario, workload)
    schedule = SchedulePolicy(np.repeat(np.arange(4, 4 + ticks // 20 + 1), 20)[:ticks])
    asked: list[float] = []

    class Counting(SchedulePolicy):
        def decide(self, observation: Observation) -> Decision:
            asked.append(observation.time_s)
            return super().decide(observation)

    counting = Counting(np.asarray(schedule._desired))
    fast_run, fast_loop = started(FluidEngine(), scenario, workload, counting)
    drive(fast_run, fast_loop)
    decided = ticks - 1  # the last, partial interval ends with no decision
    assert fast_loop.decisions == decided
    # the first tick, then the tick each new level starts at
    assert len(asked) <= ticks // 20 + 2
    assert asked[:3] == [15.0, 300.0, 600.0]
    assert fast_run._index == fast_run.n_intervals


def test_a_policy_the_loop_clamps_is_asked_at_every_tick() -> None:
    """A request out of bounds is clamped, and counted, at every tick: no quiet span."""
    scenario, workload = _envelope()
    fast, slow = both(scenario, workload, Unclamped())
    check(fast, slow)
    assert fast[1].clamped == fast[1].decisions


def test_a_stopped_run_stops_where_it_was_told() -> None:
    """`simulate(stop_after=)` (the oracle's start-up attainment): the span stops there."""
    scenario, workload = _trace()
    engine = FluidEngine()
    results = []
    for policy in (FixedPolicy(6), AskedEveryTick(FixedPolicy(6))):
        run, loop = started(engine, scenario, workload, policy)
        result = run.simulate(loop, SEED, stop_after=37)
        results.append((run, loop, result))
    (fast_run, fast_loop, fast), (slow_run, slow_loop, slow) = results
    same_result(fast, slow)
    same_history(fast_loop, slow_loop)
    assert fast_run._index == slow_run._index == 37
    assert len(fast.series.time_s) == 37


# --- runs that fall back to asking at every tick -----------------------------------------


def _serverless() -> tuple[Scenario, Workload]:
    scenario = make_scenario(
        pool={"kind": "serverless", "max_replicas": 50, "min_replicas": 0,
              "cold_start_s": 8, "keep_alive_s": 120,
              "service": {"kind": "exponential", "mean_s": 1.0}},
    )  # fmt: skip
    return scenario, poisson_envelope(5.0, 1800.0)


def _spillover() -> tuple[Scenario, Workload]:
    spill = ServerlessEndpoint(name="spill", max_replicas=20)
    scenario = make_scenario(pool={"initial_replicas": 4}).model_copy(update={"spillover": spill})
    return scenario, load(scenario)


def _hazards() -> tuple[Scenario, Workload]:
    scenario = make_scenario(
        pool={"spot_share": 0.5, "spot_interruption_per_h": 20.0, "node_failure_per_h": 2.0}
    )
    return scenario, load(scenario)


FALLBACKS: dict[str, Callable[[], tuple[Scenario, Workload]]] = {
    "serverless pool": _serverless,
    "spillover": _spillover,
    "spot and failures": _hazards,
}


@pytest.mark.parametrize("setting", list(FALLBACKS), ids=list(FALLBACKS))
def test_runs_without_exact_spans_ask_at_every_tick(setting: str) -> None:
    """A serverless endpoint, a spillover (billed every interval) and a pool whose nodes
    die between decisions take no span; their results are the asked run's."""
    scenario, workload = FALLBACKS[setting]()
    policy = FixedPolicy(0) if isinstance(scenario.pool, ServerlessEndpoint) else FixedPolicy(6)
    fast, slow = both(scenario, workload, policy)
    check(fast, slow)
    run = fast[0]
    assert not getattr(run, "quiet", False)
    assert getattr(run, "_quiet", None) is None  # never made a span's arrays


# --- checkpoints ------------------------------------------------------------------------


def _checkpointed(
    engine: FluidEngine, scenario: Scenario, workload: Workload, policy: Policy, every: int
) -> tuple[Any, ControlLoop, list[Checkpoint]]:
    run, loop = started(engine, scenario, workload, policy)
    checkpoints: list[Checkpoint] = []
    drive_checkpointed(run, loop, every, checkpoints)
    return run, loop, checkpoints


def _same_checkpoint(a: Checkpoint, b: Checkpoint) -> None:
    assert a.index == b.index
    for x, y in zip(a.kernel, b.kernel, strict=True):
        assert np.array_equal(x, y, equal_nan=True)
    assert a.fleet.keys() == b.fleet.keys()
    for name, value in b.fleet.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(a.fleet[name], value, equal_nan=True), name
        else:
            assert a.fleet[name] == value, name
    assert a.generators == b.generators
    assert (a.ready, a.reading, a.marks, a.records) == (b.ready, b.reading, b.marks, b.records)
    assert (a.notes, a.clamped, a.decisions) == (b.notes, b.clamped, b.decisions)
    for name, value in vars(b.history).items():
        kept = getattr(a.history, name)
        assert np.array_equal(np.asarray(kept), np.asarray(value), equal_nan=True), name


@pytest.mark.parametrize("every", [1, 5, 17], ids=lambda e: f"every {e}")
@pytest.mark.parametrize("setting", ["request trace", "rate envelope"])
def test_checkpoints_and_resumed_replays_are_the_asked_runs(every: int, setting: str) -> None:
    """Checkpoints taken by a quiet run are those of the asked run (spans stop at each);
    a schedule resumed from each and driven quietly ends as the asked full run."""
    scenario, workload = WORKLOADS[setting]()
    engine = FluidEngine()
    rng = np.random.default_rng(23)
    ticks = _ticks(scenario, workload)
    base = _random(rng, ticks, 4, 24)
    changed = ticks // 2 + 3
    other = base.copy()
    other[changed:] = _random(rng, ticks - changed, 4, 24)

    fast = _checkpointed(engine, scenario, workload, SchedulePolicy(base), every)
    slow = _checkpointed(engine, scenario, workload, AskedEveryTick(SchedulePolicy(base)), every)
    assert len(fast[2]) == len(slow[2]) == (ticks - 1) // every
    for a, b in zip(fast[2], slow[2], strict=True):
        _same_checkpoint(a, b)
    check(fast[:2], slow[:2])

    full = started(engine, scenario, workload, AskedEveryTick(SchedulePolicy(other)))
    drive(*full)
    usable = [c for c in fast[2] if c.index < changed]
    for checkpoint in usable[:: max(1, len(usable) // 4)]:
        run, loop = started(engine, scenario, workload, SchedulePolicy(other))
        resume(run, loop, checkpoint, fast[0], fast[1])
        drive(run, loop)
        check((run, loop), full)


#: What a replay without a latency histogram keeps of a full run's totals.
REPLAYED = (
    "cost_usd", "cost_by_pool", "gpu_hours", "slo_attainment", "arrivals", "served", "dropped",
    "in_flight", "scaling_actions", "notes", "decisions",
)  # fmt: skip


def test_schedule_replays_are_the_asked_runs() -> None:
    """The oracle's replays (`ScheduleReplays`, resumed from kept checkpoints, no
    latency histogram) bill, attain and record what the asked full runs do."""
    scenario, workload = _trace()
    engine = FluidEngine()
    context = make_context(scenario, workload, np.random.default_rng(0))
    replays = ScheduleReplays(engine, scenario, workload, SEED, context)
    rng = np.random.default_rng(31)
    ticks = _ticks(scenario, workload)
    first = _random(rng, ticks, 4, 24)
    second = first.copy()
    second[ticks // 3 :] = np.maximum(second[ticks // 3 :] - 2, 4)
    third = np.full(ticks, 9, dtype=np.int64)
    simulated = []
    for requests in (first, second, third, first):
        replayed = replays.replay(SchedulePolicy(requests), requests)
        run, loop = started(engine, scenario, workload, AskedEveryTick(SchedulePolicy(requests)))
        drive(run, loop)
        asked = run.result(loop, SEED)
        got = replayed.result
        for name in REPLAYED:
            assert getattr(got, name) == getattr(asked, name), name
        for name in ("time_s", "ready", "desired", "pending", "cost_usd"):
            assert np.array_equal(getattr(got.series, name), getattr(asked.series, name)), name
        assert np.array_equal(replayed.shares, run.interval_share)
        simulated.append(replayed.simulated)
    assert simulated[1] < simulated[0] and simulated[3] < simulated[0]


# --- the policies' side -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tick", "expected"),
    [(-3, 2), (0, 2), (1, 2), (2, 5), (4, 5), (5, None), (99, None)],
    ids=str,
)
def test_a_schedule_says_when_its_count_next_changes(tick: int, expected: int | None) -> None:
    schedule = SchedulePolicy([3, 3, 5, 5, 5, 2])
    assert schedule.next_change_tick(tick) == expected


def test_a_fixed_capacity_never_changes() -> None:
    assert FixedPolicy(4).next_change_tick(0) is None
    assert FixedPolicy(4).next_change_tick(10_000) is None
