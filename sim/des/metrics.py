"""Per-interval metrics the policy observes and the run reports.

The engine samples these at every decision tick: arrivals since the last tick,
the p95 latency of the requests that finished in between, and utilisation as the
busy share of ready batch slots, integrated exactly over the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from sim.result import TimeSeries

#: Small samples are ranked in pure Python: numpy's per-call overhead would
#: dominate a tick at low traffic.
_NUMPY_FROM = 256


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation (numpy's default method); NaN if empty."""
    n = len(values)
    if n == 0:
        return math.nan
    if n >= _NUMPY_FROM:
        return float(np.quantile(np.asarray(values, dtype=np.float64), q))
    ordered = sorted(values)
    position = q * (n - 1)
    low = int(position)
    high = min(low + 1, n - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def observed_s(missing: tuple[tuple[float, float], ...], start_s: float, end_s: float) -> float:
    """Seconds of [start_s, end_s) outside the workload's missing-data intervals."""
    if not missing:  # the common case, once per decision tick
        return max(0.0, end_s - start_s)
    gap_s = sum(max(0.0, min(end_s, b) - max(start_s, a)) for a, b in missing)
    return max(0.0, end_s - start_s - gap_s)


class SeriesRecorder:
    """Collects one row per decision tick and freezes them into a `TimeSeries`.

    A row holds `TimeSeries`'s fields in their declared order.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[float, ...]] = []

    def add(
        self,
        time_s: float,
        demand_rps: float,
        ready: int,
        desired: int,
        pending: int,
        p95_latency_s: float,
        cost_usd: float,
    ) -> None:
        self._rows.append((time_s, demand_rps, ready, desired, pending, p95_latency_s, cost_usd))

    def freeze(self) -> TimeSeries:
        width = len(fields(TimeSeries))
        columns = np.array(self._rows, dtype=np.float64).reshape(-1, width).T.copy()
        return TimeSeries(*columns)


def latency_summary(
    latency_s: Sequence[float], outcome: bytearray, slo_s: float, served_code: int
) -> tuple[float, float, float, int]:
    """(p50, p95, p99, count within SLO) over served requests; NaNs if none served."""
    served_mask = np.frombuffer(outcome, dtype=np.uint8) == served_code
    served = np.asarray(latency_s, dtype=np.float64)[served_mask]
    if served.size == 0:
        return math.nan, math.nan, math.nan, 0
    p50, p95, p99 = np.quantile(served, [0.5, 0.95, 0.99])
    return float(p50), float(p95), float(p99), int(np.count_nonzero(served <= slo_s))
