"""Action maps, the reactive floor and the observation encoder, as tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.contract import Observation
from sim.gym.actions import (
    DEFAULT_CHANGE_FACTORS,
    DEFAULT_NUDGES,
    ActionMap,
    demand_need,
    reactive_floor,
)
from sim.gym.observation import FEATURES, ObservationEncoder


def observation(**changes: object) -> Observation:
    fields: dict[str, object] = {
        "time_s": 600.0,
        "interval_s": 15.0,
        "demand_rps": 10.0,
        "utilisation": 0.5,
        "queue_len": 0,
        "ready": 8,
        "pending": 0,
        "desired": 8,
        "min_replicas": 1,
        "max_replicas": 32,
        "replica_capacity_rps": 2.0,
    }
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "action", "base", "current", "expected"),
    [
        ("residual", 2, 10, 4, 10),  # no change: the proposal
        ("residual", 2, 40, 4, 40),  # no change passes even out of bounds (the loop clamps)
        ("residual", 3, 10, 4, 11),  # x1.1
        ("residual", 5, 10, 4, 15),  # x1.5
        ("residual", 1, 10, 4, 9),  # x0.9
        ("residual", 3, 2, 4, 3),  # x1.1 of 2 rounds to 2: moves one replica anyway
        ("residual", 0, 1, 4, 1),  # x0.8 of 1: one less is 0, clamped to min 1
        ("residual", 5, 30, 4, 32),  # clamped to max
        ("absolute", 2, 10, 4, 4),  # no change: the capacity in force
        ("absolute", 4, 10, 8, 10),  # x1.25 of current
    ],
    ids=lambda v: str(v),
)
def test_action_map(mode: str, action: int, base: int, current: int, expected: int) -> None:
    actions = ActionMap.default(mode)  # type: ignore[arg-type]
    assert actions.desired(action, base=base, current=current, low=1, high=32) == expected


# residual-change: factors 0, 0.5, 1, 1.5, 2 (actions 0-4), nudges -0.25, -0.1, +0.1, +0.25
# of the demand's need (actions 5-8)
@pytest.mark.parametrize(
    ("action", "base", "current", "need", "expected"),
    [
        (2, 10, 4, 6, 10),  # no change: the proposal
        (2, 40, 4, 6, 40),  # no change passes even out of bounds (the loop clamps)
        (0, 10, 4, 6, 4),  # x0 of the change: hold
        (1, 10, 4, 6, 7),  # half the change
        (1, 5, 4, 6, 5),  # half a one-replica step still moves one (rounds away from 0)
        (1, 2, 4, 6, 3),  # half a scale-in
        (3, 10, 4, 6, 13),  # 1.5x the change
        (4, 10, 4, 6, 16),  # 2x the change
        (4, 1, 4, 6, 1),  # 2x a scale-in of 3 would be -2: clamped to min 1
        (4, 30, 20, 6, 32),  # 2x a scale-out, clamped to max
        (3, 4, 4, 6, 4),  # the base holds: every factor holds (no compounding)
        (7, 4, 4, 20, 6),  # +0.1 of need 20: two more replicas
        (7, 21, 21, 20, 22),  # ... up to need + 2 = 22
        (7, 22, 22, 20, 22),  # ... and no further: a repeated nudge does not compound
        (7, 30, 30, 20, 30),  # a raise leaves a proposal above its band alone
        (8, 10, 10, 20, 15),  # +0.25 of need 20: five more
        (6, 30, 30, 20, 28),  # -0.1 of need 20: two fewer
        (6, 23, 23, 20, 22),  # ... down to need + 2
        (6, 12, 12, 20, 12),  # a trim leaves a proposal below its band alone
        (5, 30, 30, 20, 25),  # -0.25: five fewer a step after a spike, down to 25
        (5, 27, 27, 20, 25),
        (7, 4, 4, 0, 4),  # idle: +0.1 of 0 is one replica, but above need + 1 already
        (5, 4, 4, 0, 3),  # idle: a trim steps one replica towards need + 1
        (7, 4, 4, None, 4),  # demand missing: nudges keep the proposal
        (5, 4, 4, None, 4),
    ],
    ids=lambda v: str(v),
)
def test_residual_change_action_map(
    action: int, base: int, current: int, need: int | None, expected: int
) -> None:
    actions = ActionMap.default("residual-change")
    assert actions.n == 9 and actions.no_change == 2
    got = actions.desired(action, base=base, current=current, low=1, high=32, need=need)
    assert got == expected


@pytest.mark.parametrize(
    ("mode", "factors", "nudges", "message"),
    [
        ("residual", (0.9, 1.1), (), "factors"),
        ("residual", (1.0, 0.9), (), "factors"),
        ("residual", (0.0, 1.0), (), "factors"),
        ("residual", (1.0, 1.0, 2.0), (), "factors"),
        ("residual-change", (-0.5, 1.0), (), "non-negative"),
        ("residual", (0.8, 1.0), (0.1,), "only to the residual-change mode"),
        ("residual-change", (0.0, 1.0), (0.0,), "nudges"),
        ("residual-change", (0.0, 1.0), (1.5,), "nudges"),
        ("residual-change", (0.0, 1.0), (0.1, -0.1), "nudges"),
        ("level", (1.0,), (), "action mode 'level'"),
    ],
    ids=["no-one", "order", "zero", "dup", "negative", "nudge-level", "nudge-zero",
         "nudge-big", "nudge-order", "mode"],
)  # fmt: skip
def test_action_map_rejects_bad_actions(
    mode: str, factors: tuple[float, ...], nudges: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ActionMap(mode, factors, nudges)  # type: ignore[arg-type]


def test_zero_factor_is_a_hold_in_residual_change() -> None:
    actions = ActionMap("residual-change", (0.0, 1.0))
    assert actions.describe(0) == "base change x0" and actions.describe(1) == "base x1"
    assert ActionMap.default("residual-change").describe(8) == "base nudge +0.25 need"


@given(
    action=st.integers(0, len(DEFAULT_CHANGE_FACTORS) + len(DEFAULT_NUDGES) - 1),
    start=st.integers(1, 2000),
    needs=st.lists(st.one_of(st.none(), st.integers(0, 2000)), min_size=1, max_size=300),
)
def test_a_constant_action_on_a_holding_base_never_compounds(
    action: int, start: int, needs: list[int | None]
) -> None:
    """Issue 10: a reactive base proposes "hold at the current capacity"; repeating any
    residual-change action then stays below the start or the demand's need plus 25 %."""
    actions = ActionMap.default("residual-change")
    capacity = start
    for need in needs:
        capacity = actions.desired(
            action, base=capacity, current=capacity, low=1, high=100_000, need=need
        )
    peak_need = max((n for n in needs if n is not None), default=0)
    assert capacity <= max(start, peak_need + max(1, -(-peak_need // 4)))


def test_the_level_mode_compounds_on_a_holding_base() -> None:
    """The defect the residual-change mode fixes: x1.1 of a held level, 100 times over."""
    actions = ActionMap.default("residual")
    capacity = 8
    for _ in range(100):
        capacity = actions.desired(3, base=capacity, current=capacity, low=1, high=100_000)
    assert capacity > 8 * 1.1**90


@pytest.mark.parametrize(
    ("demand", "queue", "expected"),
    [(None, 0, None), (0.0, 0, 0), (9.0, 0, 5), (9.0, 120, 6), (1000.0, 0, 32)],
    ids=["missing", "idle", "demand", "queue", "capped"],
)
def test_demand_need(demand: float | None, queue: int, expected: int | None) -> None:
    # 2 rps per replica at full batch: 9 rps needs 5; a queue of 120 over 60 s adds 2 rps
    assert demand_need(observation(demand_rps=demand, queue_len=queue)) == expected


@pytest.mark.parametrize(
    ("demand", "queue", "expected"),
    [(None, 0, 0), (0.0, 0, 0), (9.0, 0, 5), (9.0, 120, 7), (1000.0, 0, 32)],
    ids=["missing", "idle", "demand", "queue", "capped"],
)
def test_reactive_floor(demand: float | None, queue: int, expected: int) -> None:
    # 2 rps per replica at 90 %: 9 rps needs 5; a queue of 120 over 60 s adds 2 rps
    obs = observation(demand_rps=demand, queue_len=queue)
    assert reactive_floor(obs, 0.9) == expected


def test_encoder_features_and_forecast_follow_a_ramp() -> None:
    encoder = ObservationEncoder(provisioning_s=150.0)
    vectors = [
        encoder.encode(observation(time_s=15.0 * i, demand_rps=2.0 + i), base_desired=10)
        for i in range(1, 30)
    ]
    last = vectors[-1]
    assert last.shape == (len(FEATURES),) and last.dtype == np.float32
    need = FEATURES.index("demand_need")
    forecast = FEATURES.index("forecast_need")
    assert last[forecast] > last[need]  # a rising ramp is forecast higher ahead
    assert last[FEATURES.index("base_proposal")] == pytest.approx(10 / 8)
    encoder.reset()
    first = encoder.encode(observation(), base_desired=8)
    assert first[forecast] == pytest.approx(first[need])  # no trend after a reset
