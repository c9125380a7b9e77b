"""The one control loop: observe, decide, check, clamp, act, record (table tests)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sim.actuator import InMemoryActuator
from sim.contract import PRIMARY, SPILLOVER, Decision, Observation, PolicyContext
from sim.control import ControlLoop, Reading, check_decision, drive
from sim.errors import PolicyError

CONTEXT = PolicyContext(
    interval_s=15.0, min_replicas=1, max_replicas=8, replica_capacity_rps=2.0,
    provisioning_s=60.0, slo_latency_s=10.0, slo_target=0.95, mean_service_s=1.0,
    max_batch=4, epoch_s=1_700_000_000.0,
)  # fmt: skip


class Scripted:
    """Answers a fixed list of decisions and keeps every observation it saw."""

    name = "scripted"

    def __init__(self, *answers: Decision) -> None:
        self.answers = list(answers)
        self.seen: list[Observation] = []
        self.context: PolicyContext | None = None

    def reset(self, context: PolicyContext) -> None:
        self.context = context

    def decide(self, observation: Observation) -> Decision:
        self.seen.append(observation)
        return self.answers[min(len(self.seen), len(self.answers)) - 1]


def _loop(*answers: Decision, spillover: bool = False) -> tuple[ControlLoop, Scripted]:
    policy = Scripted(*answers)
    actuators = {PRIMARY: InMemoryActuator(desired=2, min_capacity=1, max_capacity=8)}
    if spillover:
        actuators[SPILLOVER] = InMemoryActuator(desired=0, min_capacity=0, max_capacity=5)
    loop = ControlLoop(policy, actuators, CONTEXT)
    loop.reset()
    return loop, policy


def _reading(time_s: float, demand: float | None = 3.0) -> Reading:
    return Reading(time_s=time_s, demand_rps=demand, utilisation=0.5, queue_len=0, ready=2,
                   pending=0)  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "desired", "note"),
    [
        (Decision(5, "up"), 5, None),
        (Decision(9, "too many"), 8, "clamped 9->8 (TooManyReplicas)"),
        (Decision(0, "too few"), 1, "clamped 0->1 (TooFewReplicas)"),
        (Decision(2, "hold"), 2, None),
    ],
    ids=["within", "above-max", "below-min", "no-op"],
)
def test_decisions_are_clamped_with_a_note_and_recorded(
    answer: Decision, desired: int, note: str | None
) -> None:
    loop, _ = _loop(answer)
    loop.step(_reading(15.0))
    assert loop.actuators[PRIMARY].current() == desired
    if desired == 2:
        assert loop.records == []  # a no-op is not an action
    else:
        (record,) = loop.records
        assert (record.time_s, record.target, record.previous, record.desired) == (
            15.0, PRIMARY, 2, desired,
        )  # fmt: skip
        assert record.reason.startswith(answer.reason)
        assert (note in record.reason) if note else ("clamped" not in record.reason)
    assert loop.clamped == (1 if note else 0)
    assert any("clamped" in n for n in loop.run_notes()) == bool(note)


def test_the_observation_is_built_from_the_reading_the_actuator_and_the_context() -> None:
    loop, policy = _loop(Decision(4, "up"))
    loop.step(_reading(15.0))
    loop.step(_reading(30.0, demand=None))
    first, second = policy.seen
    assert (first.time_s, first.interval_s, first.epoch_s) == (15.0, 15.0, CONTEXT.epoch_s)
    assert (first.desired, first.min_replicas, first.max_replicas) == (2, 1, 8)
    assert first.replica_capacity_rps == 2.0
    assert len(first.history) == 0  # the current interval is never in the history
    assert second.desired == 4  # the decision of the first interval is in force
    assert [s.time_s for s in second.history] == [15.0]
    sample = second.history[0]
    assert (sample.demand_rps, sample.desired, sample.ready) == (3.0, 2, 2)
    assert policy.context is CONTEXT


def test_secondary_targets_are_actuated_by_name_and_unknown_ones_noted() -> None:
    loop, _ = _loop(Decision(3, "both", {SPILLOVER: 9}), spillover=True)
    loop.step(_reading(15.0))
    assert loop.actuators[SPILLOVER].current() == 5  # clamped to the endpoint's max
    assert [r.target for r in loop.records] == [PRIMARY, SPILLOVER]
    lone, _ = _loop(Decision(3, "both", {SPILLOVER: 2}))
    lone.step(_reading(15.0))
    assert any("'spillover', which this scenario does not have" in n for n in lone.notes)
    primary, _ = _loop(Decision(3, "bad", {PRIMARY: 2}))
    with pytest.raises(PolicyError, match=r"Decision\.desired"):
        primary.step(_reading(15.0))


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("4", "not a Decision"),
        (Decision(2.5, "half"), "whole number"),  # type: ignore[arg-type]
        (Decision(math.nan, "nan"), "whole number"),  # type: ignore[arg-type]
        (Decision(True, "bool"), "integer"),
        (Decision(2, "spill", {SPILLOVER: "x"}), "integer"),  # type: ignore[dict-item]
    ],
    ids=["str", "fraction", "nan", "bool", "target-str"],
)
def test_bad_decisions_are_policy_errors(decision: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        check_decision("p", decision)


def test_numpy_and_float_whole_numbers_become_ints() -> None:
    checked = check_decision("p", Decision(np.int64(3), "np", {SPILLOVER: 2.0}))  # type: ignore[arg-type,dict-item]
    assert type(checked.desired) is int and checked.desired == 3
    assert type(checked.targets[SPILLOVER]) is int


class _Countdown:
    """A minimal steppable run: three decision points, then the horizon."""

    def __init__(self, actuator: InMemoryActuator) -> None:
        self.actuator = actuator
        self.rows: list[tuple[float, int]] = []
        self.ticks = [15.0, 30.0, 45.0]

    def actuators(self) -> dict[str, InMemoryActuator]:
        return {PRIMARY: self.actuator}

    def advance(self) -> float | None:
        return self.ticks.pop(0) if self.ticks else None

    def read(self, now_s: float) -> Reading:
        return _reading(now_s)

    def record(self, now_s: float, observation: Observation) -> None:
        del observation
        self.rows.append((now_s, self.actuator.current()))


def test_drive_runs_the_loop_to_the_horizon_and_records_after_each_decision() -> None:
    actuator = InMemoryActuator(desired=2, min_capacity=1, max_capacity=8)
    run = _Countdown(actuator)
    policy = Scripted(Decision(3, "a"), Decision(5, "b"), Decision(5, "c"))
    loop = ControlLoop(policy, run.actuators(), CONTEXT)
    drive(run, loop)
    assert run.rows == [(15.0, 3), (30.0, 5), (45.0, 5)]
    assert [(r.time_s, r.previous, r.desired) for r in actuator.log] == [(15.0, 2, 3), (30.0, 3, 5)]
    assert loop.decisions == 3


def test_a_loop_needs_a_primary_target() -> None:
    with pytest.raises(ValueError, match="'pool' actuator"):
        ControlLoop(Scripted(Decision(1, "x")), {}, CONTEXT)


def test_observe_builds_what_the_dataclass_constructor_builds() -> None:
    """`observe` fills the Observation's fields without its `__init__`: every field, and
    only those, with the values the constructor would store."""
    loop, _ = _loop(Decision(3, "up"))
    loop.step(_reading(15.0))
    reading = Reading(time_s=30.0, demand_rps=None, utilisation=0.25, queue_len=4, ready=3,
                      pending=1, p95_latency_s=2.5, spillover_in_flight=2)  # fmt: skip
    observation = loop.observe(reading)
    expected = Observation(
        time_s=30.0, interval_s=15.0, demand_rps=None, utilisation=0.25, queue_len=4,
        ready=3, pending=1, desired=3, min_replicas=1, max_replicas=8,
        replica_capacity_rps=2.0, p95_latency_s=2.5, epoch_s=1_700_000_000.0,
        history=observation.history, spillover_in_flight=2,
    )  # fmt: skip
    assert observation == expected
    assert vars(observation) == vars(expected)
    assert [s.time_s for s in observation.history] == [15.0]


def test_decision_init_stores_what_a_frozen_dataclass_stores() -> None:
    """`Decision.__init__` sets its fields at once: the same fields and values, a new
    targets dict per decision, still frozen, and `replace`/equality as a dataclass."""
    plain, sized = Decision(3, "up"), Decision(desired=2, reason="r", targets={SPILLOVER: 4})
    assert vars(plain) == {"desired": 3, "reason": "up", "targets": {}}
    assert vars(sized) == {"desired": 2, "reason": "r", "targets": {SPILLOVER: 4}}
    assert plain.targets is not Decision(3, "up").targets
    assert plain == Decision(3, "up") and plain != sized
    assert dataclasses.replace(sized, desired=5) == Decision(5, "r", {SPILLOVER: 4})
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.desired = 4  # type: ignore[misc]
