"""The observation history: a ring buffer whose views behave like the list they replace."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.contract import MetricHistory, MetricSample

demands = st.one_of(st.none(), st.just(math.nan), st.floats(0.0, 1e4))


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 12),
    values=st.lists(demands, min_size=0, max_size=40),
    window=st.tuples(st.floats(-20, 700), st.floats(-20, 700)),
)
def test_views_and_windowed_sums_match_a_plain_list(
    capacity: int, values: list[float | None], window: tuple[float, float]
) -> None:
    history = MetricHistory(capacity)
    model: list[MetricSample] = []
    for k, demand in enumerate(values):
        time_s = 15.0 * (k + 1)
        history.append(time_s, demand, 0.5, k, k + 1)
        clean = None if demand is None or math.isnan(demand) else demand
        model.append(MetricSample(time_s, clean, 0.5, k, k + 1))
    view = history.view()
    kept = model[-capacity:] if model else []
    assert len(view) == len(kept)
    assert list(view) == kept
    if kept:
        assert view[-1] == kept[-1] and view[0] == kept[0]
    after, before = window
    inside = [
        s.demand_rps for s in kept
        if after < s.time_s < before and s.demand_rps is not None
    ]  # fmt: skip
    total, count = view.demand_sum(after, before)
    assert count == len(inside)
    assert total == sum(inside)  # added oldest first, as the fluid engine adds them


def test_a_view_is_a_snapshot_and_fails_loudly_once_overwritten() -> None:
    history = MetricHistory(3)
    history.append(15.0, 1.0, None, 1, 1)
    early = history.view()
    history.append(30.0, 2.0, None, 1, 1)
    assert len(early) == 1 and early[0].demand_rps == 1.0  # later appends are not seen
    for k in range(3):
        history.append(45.0 + 15 * k, 3.0, None, 1, 1)
    with pytest.raises(IndexError, match="stale"):
        early[0]


def test_times_must_increase() -> None:
    history = MetricHistory(4)
    history.append(15.0, 1.0, None, 1, 1)
    with pytest.raises(ValueError, match="must increase"):
        history.append(15.0, 1.0, None, 1, 1)


def test_observation_replace_matches_dataclasses_replace() -> None:
    import dataclasses

    from sim.contract import Observation

    base = Observation(15.0, 15.0, 2.0, 0.5, 0, 3, 1, 3, 1, 10, 2.0)
    assert base.replace(min_replicas=2, max_replicas=5) == dataclasses.replace(
        base, min_replicas=2, max_replicas=5
    )
    assert base.replace() == base
    with pytest.raises(TypeError, match="no field"):
        base.replace(maximum=3)
