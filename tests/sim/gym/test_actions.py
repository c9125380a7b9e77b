"""Action maps, the reactive floor and the observation encoder, as tables."""

from __future__ import annotations

import numpy as np
import pytest

from sim.contract import Observation
from sim.gym.actions import ActionMap, reactive_floor
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
    actions = ActionMap(mode)  # type: ignore[arg-type]
    assert actions.desired(action, base=base, current=current, low=1, high=32) == expected


@pytest.mark.parametrize(
    "factors",
    [(0.9, 1.1), (1.0, 0.9), (0.0, 1.0), (1.0, 1.0, 2.0)],
    ids=["no-one", "order", "zero", "dup"],
)
def test_action_map_rejects_bad_factors(factors: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="factors"):
        ActionMap("residual", factors)


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
