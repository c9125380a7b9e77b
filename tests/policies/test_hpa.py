"""Kubernetes HPA semantics: the documentation's worked examples, as tables and traces."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies.hpa import HpaPolicy, HpaSpec, calculate_replicas
from policies.hysteresis.config import DirectionRules, HysteresisSpec, RatePolicy
from sim.contract import Observation, PolicyContext


@pytest.mark.parametrize(
    ("kwargs", "expected", "reason"),
    [
        # kubernetes.io "Algorithm details": 200m vs 100m doubles, 50m vs 100m halves.
        pytest.param(
            dict(current=4, ready=4, usage=200, target=100), 8, "ScaleUp", id="doc-200m-doubles"
        ),
        pytest.param(
            dict(current=4, ready=4, usage=50, target=100), 2, "ScaleDown", id="doc-50m-halves"
        ),
        pytest.param(
            dict(current=4, ready=4, usage=109, target=100), 4, "WithinTolerance", id="within-0.1"
        ),
        # Kubernetes v1.33 blog: 50 replicas at 90% CPU with a 75% target -> 60.
        pytest.param(
            dict(current=50, ready=50, usage=90, target=75), 60, "ScaleUp", id="blog-50-to-60"
        ),
        pytest.param(
            dict(current=50, ready=50, usage=76, target=75, tolerance_up=0.0, tolerance_down=0.05),
            51,
            "ScaleUp",
            id="configurable-tolerance-0-up",
        ),
        pytest.param(
            dict(current=6, ready=4, usage=100, target=50, unready=2),
            8,
            "ScaleUp",
            id="unready-count-as-0-on-scale-up",
        ),
        pytest.param(
            dict(current=6, ready=4, usage=10, target=50, unready=2),
            1,
            "ScaleDown",
            id="unready-ignored-on-scale-down",
        ),
        pytest.param(
            dict(current=6, ready=4, usage=20, target=50, missing=2),
            6,
            "WithinTolerance",
            id="missing-as-100pct-on-scale-down",
        ),
        pytest.param(
            dict(current=5, ready=4, usage=10, target=50, missing=1),
            3,
            "ScaleDown",
            id="missing-scale-down-still-down",
        ),
        pytest.param(
            dict(current=4, ready=2, usage=100, target=50, missing=2),
            4,
            "WithinTolerance",
            id="missing-as-0-on-scale-up",
        ),
        pytest.param(
            dict(current=5, ready=2, usage=60, target=50, unready=3),
            5,
            "DirectionReversed",
            id="unready-reverses-direction",
        ),
        pytest.param(
            dict(current=9, ready=4, usage=10, target=50, missing=5),
            9,
            "DirectionReversed",
            id="missing-reverses-direction",
        ),
        pytest.param(
            dict(current=4, ready=4, usage=69.9999999999, target=70),
            4,
            "WithinTolerance",
            id="float-noise-quantised",
        ),
    ],
)
def test_calculate_replicas(kwargs: dict, expected: int, reason: str) -> None:
    result = calculate_replicas(**kwargs)
    assert (result.replicas, result.reason) == (expected, reason)


def test_calculate_replicas_needs_a_ready_pod() -> None:
    with pytest.raises(ValueError, match="at least one ready pod"):
        calculate_replicas(current=2, ready=0, usage=50, target=50)


def run_trace(
    policy: HpaPolicy,
    make_obs: Callable[..., Observation],
    *,
    start: int,
    steps: int,
    every_s: float,
    demand_rps: float,
    max_replicas: int = 100,
) -> list[int]:
    """Drive the policy with instant actuation: the decision becomes the next `ready`."""
    replicas = start
    seen = [replicas]
    for step in range(steps):
        obs = make_obs(
            time_s=step * every_s,
            interval_s=every_s,
            demand_rps=demand_rps,
            ready=replicas,
            desired=replicas,
            max_replicas=max_replicas,
        )
        replicas = policy.decide(obs).desired
        seen.append(replicas)
    return seen


DOC_SCALE_DOWN = HysteresisSpec(
    scale_down=DirectionRules(
        stabilization_window_s=0,
        policies=(
            RatePolicy(type="Pods", value=4, period_s=60),
            RatePolicy(type="Percent", value=10, period_s=60),
        ),
    )
)
DOC_80_TO_10 = [80, 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]


def test_doc_scale_down_80_to_10_each_minute(make_obs: Callable[..., Observation]) -> None:
    """Behavior example: Pods 4/60 s and Percent 10/60 s, Max: -8, -8 (7.2 rounds to 8), ... -4."""
    policy = HpaPolicy(target=1.0, metric="rps_per_replica", behavior=DOC_SCALE_DOWN)
    seen = run_trace(policy, make_obs, start=80, steps=15, every_s=60, demand_rps=10)
    assert seen == DOC_80_TO_10


def test_doc_scale_down_limit_holds_within_the_period(make_obs: Callable[..., Observation]) -> None:
    """Synced every 15 s, the 60 s policies still allow one step per minute."""
    policy = HpaPolicy(target=1.0, metric="rps_per_replica", behavior=DOC_SCALE_DOWN)
    seen = run_trace(policy, make_obs, start=80, steps=60, every_s=15, demand_rps=10)
    assert seen[::4] == DOC_80_TO_10
    assert seen[1:4] == [72, 72, 72]


def test_default_scale_up_doubles_or_adds_four(make_obs: Callable[..., Observation]) -> None:
    """Default scale-up: max(+100%, +4 pods) per 15 s, then the max clamp (TooManyReplicas)."""
    policy = HpaPolicy(target=1.0, metric="rps_per_replica")
    seen = run_trace(
        policy, make_obs, start=1, steps=7, every_s=15, demand_rps=150, max_replicas=100
    )
    assert seen == [1, 5, 10, 20, 40, 80, 100, 100]


def test_default_scale_down_stabilisation_300s(make_obs: Callable[..., Observation]) -> None:
    """Default scale-down window: the highest recommendation of the last 300 s wins."""
    policy = HpaPolicy(target=0.5)
    high = policy.decide(make_obs(time_s=0, utilisation=0.5, ready=10, desired=10))
    assert high.desired == 10
    held = [
        policy.decide(make_obs(time_s=t, utilisation=0.2, ready=10, desired=10))
        for t in range(15, 300, 15)
    ]
    assert {d.desired for d in held} == {10}
    assert all("ScaleDownStabilized" in d.reason for d in held)
    released = policy.decide(make_obs(time_s=300, utilisation=0.2, ready=10, desired=10))
    assert released.desired == 4


def test_select_policy_disabled_never_scales_down(make_obs: Callable[..., Observation]) -> None:
    behavior = HysteresisSpec.model_validate({"scale_down": {"select_policy": "Disabled"}})
    policy = HpaPolicy(target=0.5, behavior=behavior)
    decisions = [
        policy.decide(make_obs(time_s=t, utilisation=0.1, ready=10, desired=10))
        for t in range(0, 900, 15)
    ]
    assert {d.desired for d in decisions} == {10}


@pytest.mark.parametrize(
    ("overrides", "expected", "reason"),
    [
        pytest.param(dict(utilisation=None), 4, "FailedGetMetric", id="missing-metric-holds"),
        pytest.param(
            dict(ready=0, pending=3, desired=3, utilisation=None),
            3,
            "FailedGetMetric",
            id="none-ready",
        ),
        pytest.param(
            dict(ready=12, desired=12, max_replicas=10), 10, "AboveMaxReplicas", id="above-max"
        ),
        pytest.param(
            dict(ready=1, desired=1, min_replicas=3), 3, "BelowMinReplicas", id="below-min"
        ),
        pytest.param(
            dict(ready=0, desired=0, min_replicas=0, utilisation=None, demand_rps=2.0),
            1,
            "ScaleFromZero",
            id="scale-from-zero",
        ),
        pytest.param(
            dict(ready=0, desired=0, min_replicas=0, utilisation=None, demand_rps=0.0),
            0,
            "ScaledToZero",
            id="stay-at-zero",
        ),
        pytest.param(
            dict(ready=4, pending=2, desired=6, utilisation=1.0),
            8,
            "ScaleUp",
            id="pending-are-unready-at-0pct",
        ),
        pytest.param(
            dict(ready=10, desired=10, utilisation=1.0, max_replicas=12),
            12,
            "TooManyReplicas",
            id="clamped",
        ),
    ],
)
def test_hpa_edges(
    make_obs: Callable[..., Observation], overrides: dict, expected: int, reason: str
) -> None:
    policy = HpaPolicy(target=0.5)
    decision = policy.decide(make_obs(**overrides))
    assert decision.desired == expected
    assert reason in decision.reason


def test_startup_seeds_the_scale_down_window(make_obs: Callable[..., Observation]) -> None:
    """maybeInitScaleDownStabilizationWindow: no scale-down within 300 s of starting."""
    policy = HpaPolicy(target=0.5)
    early = [
        policy.decide(make_obs(time_s=t, utilisation=0.05, ready=8, desired=8)).desired
        for t in range(15, 315, 15)
    ]
    assert early == [8] * 20
    assert policy.decide(make_obs(time_s=315, utilisation=0.05, ready=8, desired=8)).desired == 1


def test_reset_forgets_history(
    make_obs: Callable[..., Observation], context: PolicyContext
) -> None:
    policy = HpaPolicy(target=0.5)
    policy.decide(make_obs(time_s=0, utilisation=0.9, ready=10, desired=10))
    assert policy.state.recommendations and policy.window_seeded
    policy.reset(context)
    assert policy.state.recommendations == () and not policy.window_seeded
    decision = policy.decide(make_obs(time_s=15, utilisation=0.2, ready=4, desired=4))
    assert decision.desired == 4 and "ScaleDownStabilized" in decision.reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"target": 0}, "greater than 0", id="target-zero"),
        pytest.param({"target": 70}, "fraction above 1", id="percent-not-fraction"),
        pytest.param(
            {"min_replicas": 5, "max_replicas": 2}, "min_replicas 5 > max_replicas 2", id="bounds"
        ),
        pytest.param(
            {"hysteresis": {"scale_down": {"stabilization_window_s": -1}}},
            "greater than or equal",
            id="negative-window",
        ),
    ],
)
def test_hpa_spec_rejects_impossible_parameters(data: dict, message: str) -> None:
    from policies.registry import spec_from_dict
    from sim.errors import PolicyError

    with pytest.raises(PolicyError, match=message):
        spec_from_dict({"kind": "hpa", **data})


def test_spec_partial_behavior_keeps_kubernetes_defaults() -> None:
    spec = HpaSpec.model_validate({"hysteresis": {"scale_down": {"stabilization_window_s": 60}}})
    assert spec.hysteresis is not None
    assert spec.hysteresis.scale_down.stabilization_window_s == 60
    assert spec.hysteresis.scale_down.policies == (
        RatePolicy(type="Percent", value=100, period_s=15),
    )
    assert spec.hysteresis.scale_up.policies[1] == RatePolicy(type="Pods", value=4, period_s=15)
