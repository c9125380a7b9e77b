"""The observation history: a ring buffer whose views behave like the list they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.contract import MetricHistory, MetricSample, window_demand_rps
from sim.fluid.quiet_kernel import window_demand

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


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 12),
    before=st.integers(0, 30),
    values=st.lists(demands, min_size=0, max_size=40),
)
def test_extending_is_appending_each_sample(
    capacity: int, before: int, values: list[float | None]
) -> None:
    """`extend` (a quiet span's samples, a slice at a time, wrapping round the ring and
    longer than it) leaves the buffer as appending them one by one does."""
    one, bulk = MetricHistory(capacity), MetricHistory(capacity)
    for k in range(before):
        for history in (one, bulk):
            history.append(15.0 * (k + 1), float(k), 0.5, 1, 2)
    times = [15.0 * (before + k + 1) for k in range(len(values))]
    utilisations = [0.1 * k for k in range(len(values))]
    readies = list(range(len(values)))
    for time_s, demand, utilisation, ready in zip(
        times, values, utilisations, readies, strict=True
    ):
        one.append(time_s, demand, utilisation, ready, 7)
    bulk.extend(times, values, utilisations, readies, 7)
    for name, value in vars(one).items():
        assert np.array_equal(np.asarray(getattr(bulk, name)), np.asarray(value), equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(
    demand=st.lists(demands, min_size=1, max_size=30),
    steps=st.lists(st.sampled_from([0, 7, 8, 15]), min_size=30, max_size=30),
    window_s=st.sampled_from([1.0, 15.0, 30.0, 45.0, 60.0, 61.0, 300.0]),
)
def test_the_engines_window_mean_is_the_observations_bit_for_bit(
    demand: list[float | None], steps: list[int], window_s: float
) -> None:
    """The mean demand a band watches in the fluid kernel (`window_demand`) is the one the
    observation at that tick reads from its history (`window_demand_rps`), as the same
    float: on intervals of uneven length, empty ones (no sample) and missing demand."""
    bounds = np.cumsum([0, *steps[: len(demand)]]).astype(np.int64)
    demand_at = np.array([math.nan if d is None else d for d in demand])
    history = MetricHistory(64)
    for i, current in enumerate(demand):
        t1 = float(bounds[i + 1])
        if bounds[i + 1] <= bounds[i]:
            continue  # an empty interval: no decision, no sample
        expected = window_demand_rps(history.view(), t1, current, window_s)
        got = window_demand(i, bounds, demand_at, window_s)
        assert (math.isnan(got) and expected is None) or got == expected
        history.append(t1, current, None, 1, 1)
