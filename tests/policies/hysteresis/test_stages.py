"""Table tests for each hysteresis stage, one table per stage."""

from __future__ import annotations

import pytest

from policies.hysteresis.config import DirectionRules, RatePolicy
from policies.hysteresis.stages import (
    Recommendation,
    ScaleEvent,
    clamp,
    dead_band,
    rate_limit,
    record_scale_event,
    stabilise,
)


@pytest.mark.parametrize(
    ("current", "recommended", "ratio", "tol_up", "tol_down", "expected", "reason"),
    [
        pytest.param(10, 11, None, 0.1, 0.1, 10, "WithinTolerance", id="+10%-edge-inclusive"),
        pytest.param(10, 12, None, 0.1, 0.1, 12, "OutsideTolerance", id="+20%-passes"),
        pytest.param(10, 9, None, 0.1, 0.1, 10, "WithinTolerance", id="-10%-edge-inclusive"),
        pytest.param(10, 8, None, 0.1, 0.1, 8, "OutsideTolerance", id="-20%-passes"),
        pytest.param(10, 12, 1.05, 0.1, 0.1, 10, "WithinTolerance", id="explicit-ratio-wins"),
        pytest.param(10, 11, None, 0.0, 0.1, 11, "OutsideTolerance", id="zero-up-tolerance"),
        pytest.param(10, 9, None, 0.0, 0.05, 9, "OutsideTolerance", id="asymmetric-down"),
        pytest.param(0, 3, None, 0.1, 0.1, 3, "OutsideTolerance", id="from-zero-no-ratio"),
    ],
)
def test_dead_band(
    current: int,
    recommended: int,
    ratio: float | None,
    tol_up: float,
    tol_down: float,
    expected: int,
    reason: str,
) -> None:
    result = dead_band(
        current, recommended, tolerance_up=tol_up, tolerance_down=tol_down, ratio=ratio
    )
    assert (result.value, result.reason) == (expected, reason)


def _history(*pairs: tuple[float, int]) -> tuple[Recommendation, ...]:
    return tuple(Recommendation(t, r) for t, r in pairs)


@pytest.mark.parametrize(
    ("history", "now", "current", "recommended", "up_w", "down_w", "expected", "reason"),
    [
        pytest.param(
            _history((0, 10), (100, 8)),
            200,
            10,
            6,
            0,
            300,
            10,
            "ScaleDownStabilized",
            id="down-highest-in-window-wins",
        ),
        pytest.param(
            _history((0, 10), (100, 8)),
            300,
            10,
            6,
            0,
            300,
            8,
            "ScaleDownStabilized",
            id="sample-at-cutoff-excluded",
        ),
        pytest.param(
            _history((0, 10), (100, 8)),
            401,
            10,
            6,
            0,
            300,
            6,
            "ReadyForNewScale",
            id="window-expired",
        ),
        pytest.param(
            _history((0, 3), (10, 5)),
            20,
            3,
            9,
            60,
            0,
            3,
            "ScaleUpStabilized",
            id="up-lowest-in-window-wins",
        ),
        pytest.param(
            _history((0, 12)),
            10,
            10,
            14,
            0,
            300,
            14,
            "ReadyForNewScale",
            id="no-up-window-passes",
        ),
        pytest.param(
            (),
            0,
            10,
            4,
            0,
            300,
            4,
            "ReadyForNewScale",
            id="empty-history-passes",
        ),
        pytest.param(
            _history((0, 8)),
            10,
            10,
            6,
            0,
            300,
            8,
            "ScaleDownStabilized",
            id="moves-only-as-far-as-window-allows",
        ),
    ],
)
def test_stabilise(
    history: tuple[Recommendation, ...],
    now: float,
    current: int,
    recommended: int,
    up_w: float,
    down_w: float,
    expected: int,
    reason: str,
) -> None:
    result, new_history = stabilise(
        history,
        now_s=now,
        current=current,
        recommended=recommended,
        up_window_s=up_w,
        down_window_s=down_w,
    )
    assert (result.value, result.reason) == (expected, reason)
    assert new_history[-1] == Recommendation(now, recommended)
    assert all(past.time_s > now - max(up_w, down_w) for past in new_history[:-1])


K8S_UP = DirectionRules(
    policies=(
        RatePolicy(type="Percent", value=100, period_s=15),
        RatePolicy(type="Pods", value=4, period_s=15),
    )
)
K8S_DOWN = DirectionRules(policies=(RatePolicy(type="Percent", value=100, period_s=15),))
DOC_DOWN = DirectionRules(
    policies=(
        RatePolicy(type="Pods", value=4, period_s=60),
        RatePolicy(type="Percent", value=10, period_s=60),
    )
)
DOC_DOWN_MIN = DirectionRules(
    select_policy="Min",
    policies=(
        RatePolicy(type="Percent", value=10, period_s=60),
        RatePolicy(type="Pods", value=5, period_s=60),
    ),
)
DISABLED = DirectionRules(
    select_policy="Disabled", policies=(RatePolicy(type="Pods", value=4, period_s=15),)
)
UNLIMITED = DirectionRules(policies=())


def _events(*pairs: tuple[float, int]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(t, n) for t, n in pairs)


@pytest.mark.parametrize(
    ("current", "desired", "ups", "downs", "up", "down", "expected", "reason"),
    [
        pytest.param(
            1, 40, (), (), K8S_UP, K8S_DOWN, 5, "ScaleUpLimit", id="up-4-pods-beats-100pct"
        ),
        pytest.param(10, 40, (), (), K8S_UP, K8S_DOWN, 20, "ScaleUpLimit", id="up-100pct-beats-4"),
        pytest.param(10, 12, (), (), K8S_UP, K8S_DOWN, 12, "DesiredWithinRange", id="up-within"),
        pytest.param(
            20,
            40,
            _events((5, 10)),
            (),
            K8S_UP,
            K8S_DOWN,
            20,
            "ScaleUpLimit",
            id="up-period-start-counts-recent-adds",
        ),
        pytest.param(80, 10, (), (), K8S_UP, DOC_DOWN, 72, "ScaleDownLimit", id="doc-80-drops-8"),
        pytest.param(72, 10, (), (), K8S_UP, DOC_DOWN, 64, "ScaleDownLimit", id="doc-72-drops-8"),
        pytest.param(
            40, 10, (), (), K8S_UP, DOC_DOWN, 36, "ScaleDownLimit", id="doc-40-pods-policy"
        ),
        pytest.param(
            72,
            10,
            (),
            _events((0, 8)),
            K8S_UP,
            DOC_DOWN,
            72,
            "ScaleDownLimit",
            id="doc-within-period-no-more",
        ),
        pytest.param(
            80, 10, (), (), K8S_UP, DOC_DOWN_MIN, 75, "ScaleDownLimit", id="min-select-5-pods"
        ),
        pytest.param(10, 2, (), (), K8S_UP, DISABLED, 10, "ScaleDownLimit", id="down-disabled"),
        pytest.param(10, 20, (), (), DISABLED, K8S_DOWN, 10, "ScaleUpLimit", id="up-disabled"),
        pytest.param(
            10, 500, (), (), UNLIMITED, K8S_DOWN, 500, "DesiredWithinRange", id="no-policies"
        ),
        pytest.param(10, 0, (), (), K8S_UP, K8S_DOWN, 0, "DesiredWithinRange", id="down-100pct"),
    ],
)
def test_rate_limit(
    current: int,
    desired: int,
    ups: tuple[ScaleEvent, ...],
    downs: tuple[ScaleEvent, ...],
    up: DirectionRules,
    down: DirectionRules,
    expected: int,
    reason: str,
) -> None:
    result = rate_limit(
        now_s=15.0,
        current=current,
        desired=desired,
        up_events=ups,
        down_events=downs,
        scale_up=up,
        scale_down=down,
    )
    assert (result.value, result.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("value", "low", "high", "expected", "reason"),
    [
        pytest.param(12, 1, 10, 10, "TooManyReplicas", id="above-max"),
        pytest.param(0, 2, 10, 2, "TooFewReplicas", id="below-min"),
        pytest.param(5, 2, 10, 5, "WithinBounds", id="inside"),
        pytest.param(10, 2, 10, 10, "WithinBounds", id="at-max"),
        pytest.param(0, 0, 0, 0, "WithinBounds", id="zero-pool"),
    ],
)
def test_clamp(value: int, low: int, high: int, expected: int, reason: str) -> None:
    result = clamp(value, min_replicas=low, max_replicas=high)
    assert (result.value, result.reason) == (expected, reason)


def test_clamp_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="min_replicas 5 > max_replicas 2"):
        clamp(3, min_replicas=5, max_replicas=2)


def test_record_scale_event_keeps_magnitudes_and_expires() -> None:
    ups, downs = record_scale_event(
        (ScaleEvent(0, 2),), (), now_s=100, previous=5, new=3, keep_s=60
    )
    assert ups == ()
    assert downs == (ScaleEvent(100, 2),)
    ups, downs = record_scale_event(ups, downs, now_s=110, previous=3, new=7, keep_s=60)
    assert ups == (ScaleEvent(110, 4),) and downs == (ScaleEvent(100, 2),)
