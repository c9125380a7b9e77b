"""AWS step scaling: step ranges, rounding, two alarms, warmup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from policies.step import (
    StepAdjustment,
    StepAlarm,
    StepScalingPolicy,
    StepSpec,
    apply_adjustment,
    percent_change,
)
from sim.contract import Observation


def high_alarm(steps: list[dict[str, Any]], **extra: Any) -> StepAlarm:
    return StepAlarm.model_validate(
        {"threshold": 0.5, "comparison": "GreaterThanOrEqualToThreshold", "steps": steps, **extra}
    )


@pytest.mark.parametrize(
    ("alarm", "message"),
    [
        pytest.param(
            {
                "comparison": "GreaterThanOrEqualToThreshold",
                "steps": [
                    {"lower_bound": 0, "upper_bound": 0.2, "adjustment": 1},
                    {"lower_bound": 0.1, "adjustment": 2},
                ],
            },
            "overlap",
            id="overlap",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanOrEqualToThreshold",
                "steps": [
                    {"lower_bound": 0, "upper_bound": 0.1, "adjustment": 1},
                    {"lower_bound": 0.2, "adjustment": 2},
                ],
            },
            "gap between 0.1 and 0.2",
            id="gap",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanOrEqualToThreshold",
                "steps": [{"lower_bound": 0.1, "adjustment": 1}],
            },
            "must start at 0",
            id="scale-out-not-from-threshold",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanOrEqualToThreshold",
                "steps": [{"lower_bound": 0, "upper_bound": 0.1, "adjustment": 1}],
            },
            "null upper_bound",
            id="scale-out-bounded-above",
        ),
        pytest.param(
            {
                "comparison": "LessThanOrEqualToThreshold",
                "steps": [{"lower_bound": -0.2, "upper_bound": 0, "adjustment": -1}],
            },
            "null lower_bound",
            id="scale-in-bounded-below",
        ),
        pytest.param(
            {
                "comparison": "LessThanThreshold",
                "steps": [
                    {"upper_bound": 0, "adjustment": -1},
                    {"upper_bound": 0.1, "adjustment": -2},
                ],
            },
            "at most one step may have a null lower_bound",
            id="two-null-lowers",
        ),
        pytest.param(
            {"comparison": "GreaterThanThreshold", "steps": [{"adjustment": 1}]},
            "not both null",
            id="both-null",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanThreshold",
                "steps": [{"lower_bound": 0.2, "upper_bound": 0.1, "adjustment": 1}],
            },
            "must be below upper_bound",
            id="inverted-step",
        ),
        pytest.param(
            {"comparison": "GreaterThanThreshold", "steps": [{"lower_bound": 0, "adjustment": -1}]},
            "scale-out alarm's adjustments must be >= 0",
            id="out-alarm-removes",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanThreshold",
                "adjustment_type": "ChangeInCapacity",
                "min_adjustment_magnitude": 2,
                "steps": [{"lower_bound": 0, "adjustment": 1}],
            },
            "only to PercentChangeInCapacity",
            id="magnitude-needs-percent",
        ),
        pytest.param(
            {
                "comparison": "GreaterThanThreshold",
                "adjustment_type": "ExactCapacity",
                "steps": [{"lower_bound": 0, "adjustment": -3}],
            },
            "ExactCapacity adjustments must be >= 0",
            id="exact-negative",
        ),
        pytest.param(
            {"comparison": "GreaterThanThreshold", "steps": []},
            "at least one step",
            id="no-steps",
        ),
    ],
)
def test_alarm_validation(alarm: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StepAlarm.model_validate({"threshold": 0.5, **alarm})


def test_spec_errors_become_policy_errors() -> None:
    from policies.registry import spec_from_dict
    from sim.errors import PolicyError

    with pytest.raises(PolicyError, match=r"high: .*steps"):
        spec_from_dict(
            {
                "kind": "step",
                "high": {
                    "threshold": 0.7,
                    "comparison": "GreaterThanThreshold",
                    "steps": [{"lower_bound": 0.1, "adjustment": 1}],
                },
            }
        )
    with pytest.raises(PolicyError, match=r"must be below high\.threshold"):
        spec_from_dict(
            {
                "kind": "step",
                "low": {
                    "threshold": 0.8,
                    "comparison": "LessThanThreshold",
                    "steps": [{"upper_bound": 0, "adjustment": -1}],
                },
            }
        )


@pytest.mark.parametrize(
    ("step", "breach", "above", "matches"),
    [
        # StepAdjustment API reference, breach threshold 50 (metric on a 0-100 scale).
        pytest.param(dict(lower_bound=0, upper_bound=10), 0.0, True, True, id="50-in-[0,10)"),
        pytest.param(dict(lower_bound=0, upper_bound=10), 10.0, True, False, id="60-not-in-[0,10)"),
        pytest.param(dict(lower_bound=-10, upper_bound=0), 0.0, False, True, id="50-in-(-10,0]"),
        pytest.param(
            dict(lower_bound=-10, upper_bound=0), -10.0, False, False, id="40-not-in-(-10,0]"
        ),
        pytest.param(dict(lower_bound=10), 1e9, True, True, id="open-above"),
    ],
)
def test_step_range_inclusivity(step: dict, breach: float, above: bool, matches: bool) -> None:
    assert StepAdjustment(adjustment=1, **step).matches(breach, above=above) is matches


@pytest.mark.parametrize(
    ("capacity", "percent", "magnitude", "expected"),
    [
        # AWS "scaling adjustment types": 12.7 -> 12, 0.67 -> 1, -0.67 -> -1, -6.67 -> -6.
        pytest.param(127, 10, None, 12, id="12.7-down-to-12"),
        pytest.param(67, 1, None, 1, id="0.67-up-to-1"),
        pytest.param(67, -1, None, -1, id="-0.67-to--1"),
        pytest.param(667, -1, None, -6, id="-6.67-to--6"),
        pytest.param(4, 25, 2, 2, id="min-adjustment-magnitude"),
        pytest.param(4, -25, 2, -2, id="min-magnitude-scale-in"),
        pytest.param(0, 50, None, 0, id="empty-group"),
    ],
)
def test_percent_change(capacity: int, percent: int, magnitude: int | None, expected: int) -> None:
    assert percent_change(capacity, percent, magnitude) == expected


def test_exact_capacity() -> None:
    alarm = high_alarm([{"lower_bound": 0, "adjustment": 7}], adjustment_type="ExactCapacity")
    assert apply_adjustment(alarm, 3, 7) == 7


def test_aws_warmup_example(make_obs: Callable[..., Observation]) -> None:
    """User guide: +10% at 60, +30% at 70; 10 -> 11; 66 while warming: no change; 70 -> 13."""
    high = StepAlarm.model_validate(
        {
            "threshold": 0.6,
            "comparison": "GreaterThanOrEqualToThreshold",
            "adjustment_type": "PercentChangeInCapacity",
            "steps": [
                {"lower_bound": 0, "upper_bound": 0.1, "adjustment": 10},
                {"lower_bound": 0.1, "adjustment": 30},
            ],
        }
    )
    policy = StepScalingPolicy(high=high, low=None)
    first = policy.decide(make_obs(time_s=0, interval_s=60, utilisation=0.6, ready=10, desired=10))
    assert first.desired == 11
    second = policy.decide(
        make_obs(time_s=60, interval_s=60, utilisation=0.66, ready=10, pending=1, desired=11)
    )
    assert second.desired == 11 and second.reason.startswith("HighAlarmInFlight")
    third = policy.decide(
        make_obs(time_s=120, interval_s=60, utilisation=0.7, ready=11, desired=11)
    )
    # The replica that just became ready is warming: the base stays 10, +30% -> 13.
    assert third.desired == 13


def test_low_alarm_periods_and_warmup_block(make_obs: Callable[..., Observation]) -> None:
    policy = StepSpec().build()
    reasons = []
    desired = 6
    ready_script = [6, 6, 6, 6, 6, 6, 6]
    for step, ready in enumerate(ready_script):
        decision = policy.decide(
            make_obs(
                time_s=step * 60.0, interval_s=60, utilisation=0.1, ready=ready, desired=desired
            )
        )
        reasons.append(decision.reason.split(":")[0])
        desired = decision.desired
    # Five breaching datapoints before the low alarm acts, then one step per minute.
    assert reasons[:4] == ["OK"] * 4
    assert reasons[4:] == ["LowAlarm"] * 3
    assert desired == 3

    blocked = StepSpec().build()
    blocked.decide(make_obs(time_s=0, interval_s=60, utilisation=0.1, ready=4, desired=5))
    for step in range(1, 6):
        decision = blocked.decide(
            make_obs(time_s=step * 60.0, interval_s=60, utilisation=0.1, ready=5, desired=5)
        )
    assert decision.reason.startswith("ScaleInBlockedByWarmup")


def test_action_interval_limits_repeat_invocations(make_obs: Callable[..., Observation]) -> None:
    policy = StepSpec().build()
    first = policy.decide(make_obs(time_s=0, utilisation=0.95, ready=4, desired=4))
    again = policy.decide(make_obs(time_s=15, utilisation=0.95, ready=4, pending=4, desired=8))
    assert first.desired == 8
    assert again.desired == 8 and again.reason.startswith("AwaitingAlarmPeriod")


def test_missing_metric_holds(make_obs: Callable[..., Observation]) -> None:
    decision = StepSpec().build().decide(make_obs(utilisation=None))
    assert decision.desired == 4 and decision.reason.startswith("InsufficientData")
