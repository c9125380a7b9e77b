"""`Sizer.highest_rate` is the edge of what a count carries: a part in 10^6 inside it
the sizing asks for no more, a part outside for more. The fluid engine's bands rest on
both sides (a demand within it keeps a count, one beyond it renews a count's hold)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.predictive.sizing import Sizer

MARGIN = 1e-6


@settings(max_examples=120, deadline=None)
@given(
    service_s=st.floats(0.5, 20.0),
    slo_factor=st.floats(1.2, 10.0),
    target=st.sampled_from([0.9, 0.95, 0.99]),
    batch=st.integers(1, 16),
    max_replicas=st.integers(4, 400),
    cap=st.sampled_from([1.0, 0.85, 0.7]),
    counts=st.lists(st.integers(1, 400), min_size=1, max_size=5),
)
def test_a_count_carries_every_rate_to_its_highest_and_none_beyond(
    service_s: float,
    slo_factor: float,
    target: float,
    batch: int,
    max_replicas: int,
    cap: float,
    counts: list[int],
) -> None:
    sizer = Sizer(service_s, service_s * slo_factor, target, batch, max_replicas,
                  max_utilisation=cap)  # fmt: skip
    for count in counts:
        highest = sizer.highest_rate(count)
        if count > max_replicas:
            assert highest == math.inf
            continue
        if highest == 0.0:
            assert sizer.replicas(1e-6) > count
            continue
        inside, beyond = highest * (1.0 - MARGIN), highest * (1.0 + MARGIN)
        assert sizer.replicas(inside) <= count
        assert sizer.replicas(beyond) > count
        # and so for every rate below and above (the sizing does not fall as rates rise)
        for share in (0.1, 0.5, 0.9, 0.99):
            assert sizer.replicas(inside * share) <= count
        for factor in (1.01, 1.5, 3.0):
            assert sizer.replicas(beyond * factor) > count


def test_max_rate_can_sit_a_grid_step_below_the_highest_rate() -> None:
    """Why the bands use `highest_rate`: `max_rate` probes exp(step x log_step), whose
    step rounds up to the next, and so can return the step below the edge. Measured on
    the 14-day what-if's sizing (g5.xlarge, SLO 25 s at 0.95): 8 replicas carry 10.89
    req/s, `max_rate(8)` says 10.78."""
    found = []
    for service_s in (2.0, 3.7, 5.3):
        sizer = Sizer(service_s, 25.0, 0.95, 4, 64)
        for count in range(1, 40):
            low, high = sizer.max_rate(count), sizer.highest_rate(count)
            assert low <= high
            if low < high:
                found.append((service_s, count))
    assert found, "max_rate was exact at every count tried"
