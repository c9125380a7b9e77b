"""Properties of the composed stages over arbitrary recommendation sequences (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.hysteresis import HysteresisSpec, run_stages
from policies.hysteresis.pipeline import HysteresisState
from policies.hysteresis.stages import Recommendation, stabilise

recommendations = st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(recs=recommendations, start=st.integers(min_value=0, max_value=200))
def test_default_behavior_invariants(recs: list[int], start: int) -> None:
    """Kubernetes defaults, decisions every 15 s: bounds, scale-up rate, down window."""
    spec = HysteresisSpec()
    state = HysteresisState()
    low, high = 0, 150
    current = min(start, high)
    history: list[tuple[float, int]] = []
    for step, rec in enumerate(recs):
        now = step * 15.0
        staged = run_stages(
            spec,
            state,
            now_s=now,
            current=current,
            recommended=rec,
            min_replicas=low,
            max_replicas=high,
        )
        state = staged.state
        value = staged.value
        history.append((now, rec))
        assert low <= value <= high
        # At most max(+100%, +4 pods) per 15 s period.
        assert value <= max(2 * current, current + 4)
        # Never below the highest recommendation of the last 300 s, unless already there.
        window_max = max(r for t, r in history if t > now - 300.0)
        assert value >= min(current, window_max, high)
        current = value


@settings(max_examples=100, deadline=None)
@given(recs=recommendations)
def test_unlimited_spec_follows_the_recommendation(recs: list[int]) -> None:
    """With no tolerance, windows or rate policies, the stages only clamp."""
    spec = HysteresisSpec.model_validate(
        {
            "scale_up": {"tolerance": 0, "policies": []},
            "scale_down": {"tolerance": 0, "stabilization_window_s": 0, "policies": []},
        }
    )
    state = HysteresisState()
    current = 1
    for step, rec in enumerate(recs):
        staged = run_stages(
            spec,
            state,
            now_s=step * 15.0,
            current=current,
            recommended=rec,
            min_replicas=1,
            max_replicas=100,
        )
        assert staged.value == min(max(rec, 1), 100)
        state, current = staged.state, staged.value


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 5.0, 15.0, 30.0]), st.integers(0, 40)),
        min_size=1,
        max_size=40,
    ),
    up_window_s=st.sampled_from([0.0, 15.0, 60.0, 300.0]),
    down_window_s=st.sampled_from([0.0, 15.0, 60.0, 300.0]),
    current=st.integers(0, 40),
)
def test_stabilise_is_its_definition(
    steps: list[tuple[float, int]], up_window_s: float, down_window_s: float, current: int
) -> None:
    """The stage's shortcuts (one window read per direction, the head dropped without a
    bisection, the window's maximum without one) against the rule as written: start at
    `current`, rise at most to the lowest recommendation of the up window, fall at most
    to the highest of the down window (a window holds times after now - window; gaps of
    0 s put several recommendations at one time, on the window's edge too)."""
    history: tuple[Recommendation, ...] = ()
    now_s = 0.0
    for gap_s, recommended in steps:
        now_s += gap_s
        (value, reason), new_history = stabilise(
            history,
            now_s=now_s,
            current=current,
            recommended=recommended,
            up_window_s=up_window_s,
            down_window_s=down_window_s,
        )
        ups = [r.replicas for r in history if r.time_s > now_s - up_window_s]
        downs = [r.replicas for r in history if r.time_s > now_s - down_window_s]
        expected = min(max(current, min([recommended, *ups])), max([recommended, *downs]))
        assert value == expected
        assert (reason == "ReadyForNewScale") == (expected == recommended)
        keep_s = max(up_window_s, down_window_s)
        kept = tuple(r for r in history if r.time_s > now_s - keep_s)
        assert new_history == (*kept, Recommendation(now_s, recommended))
        history, current = new_history, value
