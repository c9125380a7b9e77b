"""The precomputed 48 h schedule: the policy's own decisions, hour by hour of the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from planner.emit.schedule import compute_schedule, next_hour
from policies.registry import resolve
from policies.stack_config import Bounds
from sim.scenario import load_scenario

from .conftest import NOW, ROOT


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 12, 2, 14, 20, tzinfo=UTC), datetime(2026, 12, 2, 15, tzinfo=UTC)),
        (datetime(2026, 12, 2, 15, tzinfo=UTC), datetime(2026, 12, 2, 15, tzinfo=UTC)),
        (
            datetime(2026, 12, 31, 23, 0, 1, tzinfo=UTC),
            datetime(2027, 1, 1, 0, tzinfo=UTC),
        ),
    ],
    ids=["mid-hour", "whole-hour", "year-end"],
)
def test_a_schedule_starts_at_the_next_whole_hour(now: datetime, start: datetime) -> None:
    assert next_hour(now) == start


def test_the_schedule_follows_the_day_the_policy_was_run_on() -> None:
    # business-hours: 1.6 req/s at 01:00, 14.4 req/s at 13:00 (t = 0 is a Monday midnight).
    scenario = load_scenario(ROOT / "sim" / "scenarios" / "business_hours.yaml")
    bounds = Bounds(min=1, max=24)
    computed = compute_schedule(resolve("hpa"), scenario, bounds, now=NOW)
    schedule = computed.schedule
    assert computed.seasonality == "hour of day" and computed.hours_filled_with_peak == 0
    assert schedule.start == datetime(2026, 12, 2, 15, tzinfo=UTC) and schedule.step_s == 3600
    assert len(schedule.desired) == 48
    by_hour = {
        (schedule.start + timedelta(hours=i)).hour: v for i, v in enumerate(schedule.desired)
    }
    assert by_hour[13] > 2 * by_hour[1]
    # The same hour of the day on both days gets the same capacity.
    assert schedule.desired[:24] == schedule.desired[24:]
    assert all(bounds.min <= v <= bounds.max for v in schedule.desired)


def test_the_target_bounds_hold_the_policy_in() -> None:
    scenario = load_scenario(ROOT / "sim" / "scenarios" / "business_hours.yaml")
    computed = compute_schedule(resolve("hpa"), scenario, Bounds(min=3, max=5), now=NOW)
    assert set(computed.schedule.desired) <= {3, 4, 5} and 5 in computed.schedule.desired
