"""The residual detector: its compiled step (what a band's quiet readings go through)
is its Python one, bit for bit, and its window statistics are the window's."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.detector import ANOMALOUS, UNFOLLOWED, ResidualDetector
from sim.fluid.detector_kernel import commit_reading, score_reading

demands = st.floats(0.0, 500.0)


def _python_step(detector: ResidualDetector, time_s: float, observed: float) -> bool:
    """What `AnomalyPolicy` does with a reading without a forecast: follow the baseline,
    score the residual against it when the baseline is positive."""
    previous = detector.follow(observed)
    if previous <= 0.0:
        return False
    return detector.score(time_s, observed / previous - 1.0)[1]


@settings(max_examples=200, deadline=None)
@given(
    observed=st.lists(demands, min_size=1, max_size=150),
    window_s=st.sampled_from([60.0, 300.0, 900.0]),
    threshold=st.sampled_from([0.5, 1.0, 3.0]),
    capacity=st.sampled_from([4, 16, 64]),
)
def test_the_compiled_step_is_the_python_step_bit_for_bit(
    observed: list[float], window_s: float, threshold: float, capacity: int
) -> None:
    """A reading the compiled step keeps, or finds anomalous, changes the detector as the
    Python step does (an anomaly stays out of the window); one that would overflow the
    window changes nothing, and the Python step grows the window."""
    python = ResidualDetector(window_s, 3, 0.02, threshold, 0.1, capacity)
    compiled = ResidualDetector(window_s, 3, 0.02, threshold, 0.1, capacity)
    for detector in (python, compiled):
        detector.reset(0.1)
    scratch = np.zeros(8)
    left = 0
    for k, demand in enumerate(observed):
        time_s = 15.0 * (k + 1)
        compiled.export()
        before = compiled.state.copy()
        verdict = score_reading(
            compiled.times, compiled.values, compiled.state, compiled.params, time_s, demand,
            scratch,
        )  # fmt: skip
        if verdict == UNFOLLOWED:
            left += 1
            assert np.array_equal(compiled.state, before, equal_nan=True)
            grown = python.times.shape[0]
            assert not _python_step(python, time_s, demand) and python.times.shape[0] > grown
            # the policy decides such a reading itself: the Python step, on both
            compiled.adopt()
            _python_step(compiled, time_s, demand)
            compiled.times, compiled.values = python.times.copy(), python.values.copy()
            compiled.head = python.head
            continue
        commit_reading(compiled.times, compiled.values, compiled.state, time_s, scratch)
        compiled.adopt()
        previous = demand if python.baseline is None else python.baseline
        assert _python_step(python, time_s, demand) == (verdict == ANOMALOUS)
        if verdict == ANOMALOUS:  # the demand it implies, as the policy sizes it
            implied = python.implied(demand, previous, demand / previous - 1.0)
            assert scratch[7] == implied or (implied != implied and scratch[7] != scratch[7])
        for name in ("head", "count", "shift", "total", "total_sq", "baseline"):
            ours, theirs = getattr(compiled, name), getattr(python, name)
            assert ours == theirs or (ours != ours and theirs != theirs), name  # (NaN: both)
        kept = [(python.head + j) % python.times.shape[0] for j in range(python.count)]
        assert np.array_equal(compiled.times[kept], python.times[kept])
        assert np.array_equal(compiled.values[kept], python.values[kept], equal_nan=True)


def test_an_anomaly_stays_out_of_the_window() -> None:
    """A surge scores high and is kept out, so it keeps scoring high while it lasts."""
    detector = ResidualDetector(600.0, 5, 0.02, 3.0)
    detector.reset(0.05)
    flags = [_python_step(detector, 15.0 * (k + 1), 10.0 + 0.1 * (k % 3)) for k in range(40)]
    assert not any(flags)
    count = detector.count
    surge = [_python_step(detector, 15.0 * (41 + k), 30.0) for k in range(4)]
    assert all(surge)
    assert detector.count <= count + 0  # (old residuals may leave; none of the surge joins)
    assert math.isfinite(detector.total)
