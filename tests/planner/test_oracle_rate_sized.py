"""The oracle's rate-sized starts (`sim.oracle.rate_sized`) size what the predictive
policy's own `Sizer` sizes, for the true rates of the windows ahead."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from policies.predictive.sizing import Sizer
from sim.oracle.rate_sized import RateSizing, rate_sized_requests, window_rates

SIZING = RateSizing(
    mean_service_s=9.57, max_batch=16, slo_latency_s=25.0, slo_target=0.95,
    min_replicas=2, max_replicas=40,
)  # fmt: skip


def bursty_arrivals(seed: int, seconds: int) -> np.ndarray:
    """Poisson seconds around a rate that steps every few minutes (0 to 60 req/s)."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0.0, 60.0, size=seconds // 200 + 1)
    return rng.poisson(np.repeat(steps, 200)[:seconds]).astype(np.float64)


def by_hand(arrivals: np.ndarray, window_s: int, u: float, ticks: int, lead_s: float) -> list[int]:
    """Each tick: the Sizer's replicas for the highest window rate in [t, t + lead]."""
    sizer = Sizer(
        SIZING.mean_service_s, SIZING.slo_latency_s, SIZING.slo_target, SIZING.max_batch,
        SIZING.max_replicas, grid_step=1e-12, max_utilisation=u,
    )  # fmt: skip
    rates = [
        arrivals[start : start + window_s].mean() for start in range(0, len(arrivals), window_s)
    ]
    found = []
    for tick in range(ticks):
        now = 15.0 * tick
        first = min(int(now // window_s), len(rates) - 1)
        last = min(int((now + lead_s) // window_s), len(rates) - 1)
        need = sizer.replicas(max(rates[first : last + 1]))
        found.append(min(max(need, SIZING.min_replicas), SIZING.max_replicas))
    return found


@pytest.mark.parametrize(
    ("seed", "window_s", "u"), [(0, 90, 0.9), (1, 45, 0.6), (2, 180, 1.0), (3, 600, 0.84)]
)
def test_the_requests_are_the_sizers_for_the_windows_ahead(
    seed: int, window_s: int, u: float
) -> None:
    arrivals = bursty_arrivals(seed, 3_700)  # the last window is shorter
    ticks, lead_s = 3_700 // 15, 270.0
    windows = window_rates(arrivals, window_s, SIZING)
    got = rate_sized_requests(windows, SIZING, u, tick_s=15.0, ticks=ticks, lead_s=lead_s)
    assert got.tolist() == by_hand(arrivals, window_s, u, ticks, lead_s)


def test_a_higher_cap_never_asks_for_more_and_past_one_asks_for_less() -> None:
    arrivals = bursty_arrivals(4, 3_600)
    windows = window_rates(arrivals, 90, SIZING)
    caps = (0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5)
    plans = [
        rate_sized_requests(windows, SIZING, u, tick_s=15.0, ticks=240, lead_s=270.0) for u in caps
    ]
    for lower, higher in itertools.pairwise(plans):
        assert (higher <= lower).all()
    assert plans[-1].sum() < plans[3].sum()  # u = 1.5 below the Erlang C sizing (u = 1)
    assert all(((plan >= 2) & (plan <= 40)).all() for plan in plans)
