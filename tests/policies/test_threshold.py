"""Threshold band policy: band, steps, cooldowns, consecutive evaluation periods."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies.threshold import ThresholdPolicy, ThresholdSpec, step_size
from sim.contract import Observation


@pytest.mark.parametrize(
    ("utilisation", "desired", "expected", "reason"),
    [
        pytest.param(0.8, 4, 5, "AboveUpper", id="above-upper"),
        pytest.param(0.2, 4, 3, "BelowLower", id="below-lower"),
        pytest.param(0.5, 4, 4, "WithinBand", id="inside-band"),
        pytest.param(0.7, 4, 4, "WithinBand", id="at-upper-is-inside"),
        pytest.param(0.3, 4, 4, "WithinBand", id="at-lower-is-inside"),
        pytest.param(None, 4, 4, "MissingMetric", id="missing-metric"),
        pytest.param(0.9, 10, 10, "TooManyReplicas", id="at-max"),
        pytest.param(0.1, 1, 1, "TooFewReplicas", id="at-min"),
    ],
)
def test_single_decisions(
    make_obs: Callable[..., Observation],
    utilisation: float | None,
    desired: int,
    expected: int,
    reason: str,
) -> None:
    policy = ThresholdPolicy()
    decision = policy.decide(
        make_obs(utilisation=utilisation, desired=desired, ready=desired, max_replicas=10)
    )
    assert decision.desired == expected
    assert decision.reason.startswith(reason)


@pytest.mark.parametrize(
    ("current", "step", "unit", "expected"),
    [
        pytest.param(10, 2, "replicas", 2, id="absolute"),
        pytest.param(10, 25, "percent", 3, id="percent-rounds-up"),
        pytest.param(1, 10, "percent", 1, id="percent-at-least-one"),
    ],
)
def test_step_size(current: int, step: float, unit: str, expected: int) -> None:
    assert step_size(current, step, unit) == expected  # type: ignore[arg-type]


def test_cooldowns_and_evaluation_periods(make_obs: Callable[..., Observation]) -> None:
    policy = ThresholdPolicy(cooldown_out_s=60, cooldown_in_s=120, evaluation_periods=2)
    desired = 4
    log = []
    script = [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    for step, utilisation in enumerate(script):
        decision = policy.decide(
            make_obs(time_s=step * 15.0, utilisation=utilisation, desired=desired, ready=desired)
        )
        desired = decision.desired
        log.append((desired, decision.reason.split(":")[0]))
    assert [d for d, _ in log] == [4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5]
    assert log[0][1] == "WithinBand"  # one breach of two: not yet
    assert log[2][1] == "ScaleOutCooldown"
    assert log[7][1] == "ScaleInCooldown"  # within 120 s of the last scale-out
    assert log[13][1] == "BelowLower"  # 120 s after the scale-out at t = 75 s


def test_pending_capacity_is_not_ordered_twice(make_obs: Callable[..., Observation]) -> None:
    """Steps start from `desired`, which includes pending replicas."""
    policy = ThresholdPolicy(cooldown_out_s=0)
    decision = policy.decide(make_obs(utilisation=0.95, ready=4, pending=2, desired=6))
    assert decision.desired == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"lower": 0.8, "upper": 0.7}, "must be below upper", id="inverted-band"),
        pytest.param({"lower": 0.7, "upper": 0.7}, "must be below upper", id="empty-band"),
        pytest.param({"cooldown_in_s": -5}, "greater than or equal to 0", id="negative-cooldown"),
        pytest.param({"evaluation_periods": 0}, "greater than or equal to 1", id="zero-periods"),
        pytest.param({"step_out": 1.5}, "whole numbers", id="fractional-replicas"),
    ],
)
def test_spec_rejects_impossible_parameters(data: dict, message: str) -> None:
    from policies.registry import spec_from_dict
    from sim.errors import PolicyError

    with pytest.raises(PolicyError, match=message):
        spec_from_dict({"kind": "threshold", **data})


def test_spec_builds_policy_with_its_parameters() -> None:
    policy = ThresholdSpec(upper=0.8, lower=0.2, step_unit="percent", step_out=50).build()
    assert isinstance(policy, ThresholdPolicy)
    assert (policy.upper, policy.lower, policy.step_unit, policy.step_out) == (
        0.8,
        0.2,
        "percent",
        50,
    )
