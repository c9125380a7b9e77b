"""AWS target tracking: proportional scale-out, gradual scale-in, warmup, DisableScaleIn."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies.aws_target_tracking import (
    AwsTargetTrackingPolicy,
    AwsTargetTrackingSpec,
    WarmupTracker,
)
from sim.contract import Observation


def feed(
    policy: AwsTargetTrackingPolicy,
    make_obs: Callable[..., Observation],
    values: list[float | None],
    *,
    start: int,
    every_s: float = 60.0,
    pending_for: int = 0,
) -> list[tuple[int, str]]:
    """Instant actuation, except new capacity stays pending for `pending_for` intervals."""
    desired = ready = start
    queue: list[tuple[int, int]] = []  # (ready at step, count)
    out = []
    for step, value in enumerate(values):
        arrived = sum(n for at, n in queue if at <= step)
        queue = [(at, n) for at, n in queue if at > step]
        ready += arrived
        pending = sum(n for _, n in queue)
        decision = policy.decide(
            make_obs(
                time_s=step * every_s,
                interval_s=every_s,
                utilisation=value,
                ready=ready,
                pending=pending,
                desired=desired,
            )
        )
        if decision.desired > desired:
            queue.append((step + 1 + pending_for, decision.desired - desired))
        elif decision.desired < desired:
            ready -= desired - decision.desired
        desired = decision.desired
        out.append((desired, decision.reason.split(":")[0]))
    return out


def test_scale_out_is_proportional_after_three_minutes(
    make_obs: Callable[..., Observation],
) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5)
    log = feed(policy, make_obs, [0.8, 0.8, 0.8], start=10)
    assert log == [(10, "OK"), (10, "OK"), (16, "AlarmHigh")]


def test_scale_out_not_double_counted_while_pending(make_obs: Callable[..., Observation]) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5)
    log = feed(policy, make_obs, [0.8] * 6, start=10, pending_for=5)
    assert [d for d, _ in log] == [10, 10, 16, 16, 16, 16]
    assert log[3][1] == "AlarmHighInFlight"


def test_scale_in_waits_15_minutes_and_steps_10_percent(
    make_obs: Callable[..., Observation],
) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5)
    log = feed(policy, make_obs, [0.2] * 25, start=20)
    desired = [d for d, _ in log]
    assert desired[:14] == [20] * 14  # AlarmLow needs 15 one-minute datapoints
    assert desired[14] == 18  # at most 10% of 20
    assert desired[15:19] == [18] * 4  # 300 s scale-in cooldown
    assert desired[19] == 17  # 10% of 18 = 1.8 rounds down to 1 (never below 1)


def test_scale_in_blocked_while_warming(make_obs: Callable[..., Observation]) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5, scale_in_after_s=60, instance_warmup_s=300)
    log = feed(policy, make_obs, [0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], start=4)
    reasons = [r for _, r in log]
    assert reasons[2] == "AlarmHigh"
    assert "ScaleInBlockedByWarmup" in reasons[3:8]
    assert reasons[-1] in {"AlarmLow", "ScaleInCooldown"}


def test_disable_scale_in(make_obs: Callable[..., Observation]) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5, disable_scale_in=True)
    log = feed(policy, make_obs, [0.1] * 30, start=10)
    assert {d for d, _ in log} == {10}
    assert log[-1][1] == "ScaleInDisabled"


def test_insufficient_data_holds_and_restarts_alarm(make_obs: Callable[..., Observation]) -> None:
    policy = AwsTargetTrackingPolicy(target=0.5)
    log = feed(policy, make_obs, [0.9, 0.9, None, 0.9, 0.9, 0.9], start=10)
    assert [r for _, r in log] == ["OK", "OK", "InsufficientData", "OK", "OK", "AlarmHigh"]


def test_requests_per_target_metric(make_obs: Callable[..., Observation]) -> None:
    policy = AwsTargetTrackingPolicy(target=2.0, metric="rps_per_replica", scale_out_after_s=60)
    decision = policy.decide(make_obs(interval_s=60, demand_rps=30.0, ready=5, desired=5))
    assert decision.desired == 15


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([(0, 4), (60, 6)], 2, id="increase-warms"),
        pytest.param([(0, 4), (60, 6), (400, 6)], 0, id="warmup-expires"),
        pytest.param([(0, 4), (60, 3)], 0, id="decrease-not-warming"),
    ],
)
def test_warmup_tracker(events: list[tuple[float, int]], expected: int) -> None:
    tracker = WarmupTracker(300)
    warming = 0
    for time_s, ready in events:
        warming = tracker.update(time_s, ready)
    assert warming == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"target": 0}, "greater than 0", id="target-zero"),
        pytest.param({"target": 50}, "fraction above 1", id="percent"),
        pytest.param({"instance_warmup_s": -1}, "greater than or equal to 0", id="negative-warmup"),
        pytest.param({"scale_in_max_fraction": 0}, "greater than 0", id="no-scale-in-step"),
    ],
)
def test_spec_rejects_impossible_parameters(data: dict, message: str) -> None:
    from policies.registry import spec_from_dict
    from sim.errors import PolicyError

    with pytest.raises(PolicyError, match=message):
        spec_from_dict({"kind": "aws-target-tracking", **data})


def test_spec_builds() -> None:
    policy = AwsTargetTrackingSpec(target=0.6, disable_scale_in=True).build()
    assert isinstance(policy, AwsTargetTrackingPolicy)
    assert policy.disable_scale_in and policy.target == 0.6
