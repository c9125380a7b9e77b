"""The in-memory actuator enforces its bounds and records every change."""

from __future__ import annotations

import pytest

from sim.actuator import InMemoryActuator
from sim.contract import Actuator


def test_records_changes_and_ignores_no_ops() -> None:
    actuator = InMemoryActuator(desired=2, min_capacity=1, max_capacity=5)
    assert isinstance(actuator, Actuator)
    actuator.set_desired(4, "scale out", 0.0)
    actuator.set_desired(4, "steady", 15.0)
    actuator.set_desired(1, "scale in", 30.0)
    assert [(r.previous, r.desired, r.reason) for r in actuator.log] == [
        (2, 4, "scale out"),
        (4, 1, "scale in"),
    ]
    assert actuator.log[1].time_s == 30.0


def test_out_of_bounds_requests_are_errors_not_clamps() -> None:
    actuator = InMemoryActuator(desired=2, min_capacity=1, max_capacity=5)
    with pytest.raises(ValueError, match="outside bounds"):
        actuator.set_desired(6, "too many", 0.0)
    assert actuator.current() == 2
    assert actuator.bounds() == (1, 5)
