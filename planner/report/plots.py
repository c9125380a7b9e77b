"""PNG plots of a what-if run (matplotlib, Agg backend: no display needed).

Three figures: demand against serving capacity per policy, p95 latency over time
against the SLO, and cost against SLO attainment with the oracle marked. Long runs
are thinned to at most `MAX_POINTS` per line by bucketing (max for demand and
latency, so peaks stay visible; mean for capacity) before drawing.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np

from sim.workload.model import FloatArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from planner.whatif import WhatIfReport

MAX_POINTS = 1500
PLOT_NAMES = ("demand_capacity.png", "latency.png", "cost_vs_slo.png")


def _bucket(values: FloatArray, size: int, how: str) -> FloatArray:
    """Aggregate consecutive `size`-long runs of `values` (NaN-aware)."""
    if size <= 1:
        return values
    usable = (len(values) // size) * size
    if usable == 0:
        return values
    blocks = values[:usable].reshape(-1, size)
    finite = np.isfinite(blocks)
    filled_low = np.where(finite, blocks, -np.inf)
    if how == "max":
        out = filled_low.max(axis=1)
        return np.where(finite.any(axis=1), out, np.nan)
    counts = finite.sum(axis=1)
    sums = np.where(finite, blocks, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _thin(time_s: FloatArray, values: FloatArray, how: str) -> tuple[FloatArray, FloatArray]:
    size = max(1, math.ceil(len(time_s) / MAX_POINTS))
    return _bucket(time_s, size, "mean"), _bucket(values, size, how)


def _hours(time_s: FloatArray) -> FloatArray:
    return np.asarray(time_s, dtype=float) / 3600.0


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _new_figure(rows: int, height_in: float, *, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    # Figure() directly (not pyplot) keeps no global state and needs no backend switch.
    figure = Figure(figsize=(10, height_in * rows), layout="constrained")
    axes = figure.subplots(rows, 1, squeeze=False, sharex=True, sharey=sharey)
    return figure, [axis for row in axes for axis in row]


def demand_capacity_png(report: WhatIfReport) -> bytes:
    """Demand against desired and ready capacity, one panel per policy.

    Capacity is in req/s at a full batch (replicas x one replica's throughput), so
    the gap between the lines is headroom, and desired-above-ready is provisioning lag.
    """
    rows = max(len(report.results), 1)
    # Shared y: panels compare at a glance.
    figure, axes = _new_figure(rows, 2.2, sharey=True)
    cap = report.replica_capacity_rps
    oracle = np.asarray(report.oracle.schedule, dtype=float)
    for axis, result in zip(axes, report.results, strict=False):
        series = result.series
        t_h, demand = _thin(_hours(series.time_s), series.demand_rps, "max")
        _, ready = _thin(_hours(series.time_s), series.ready * cap, "mean")
        axis.plot(t_h, demand, color="#555555", lw=0.8, label="demand")
        _, desired = _thin(_hours(series.time_s), series.desired * cap, "mean")
        axis.plot(t_h, desired, color="#ff7f0e", lw=0.9, ls=":", label="desired capacity")
        axis.plot(t_h, ready, color="#1f77b4", lw=1.1, label="ready capacity")
        if len(oracle) == len(series.time_s) and len(oracle):
            _, oracle_rps = _thin(_hours(series.time_s), oracle * cap, "mean")
            axis.plot(t_h, oracle_rps, color="#2ca02c", lw=0.9, ls="--", label="oracle")
        axis.set_ylabel("req/s")
        axis.set_title(result.policy, loc="left", fontsize=10)
        axis.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours from start")
    return _png(figure)


def latency_png(report: WhatIfReport) -> bytes:
    """p95 latency per decision interval for each policy, with the SLO as a line."""
    figure, axes = _new_figure(1, 3.6)
    axis = axes[0]
    for result in report.results:
        t_h, p95 = _thin(_hours(result.series.time_s), result.series.p95_latency_s, "max")
        axis.plot(t_h, p95, lw=0.9, label=result.policy)
    axis.axhline(report.scenario.slo.latency_s, color="#d62728", ls="--", lw=1.0, label="SLO")
    axis.set_yscale("log")
    axis.set_ylabel("p95 latency (s)")
    axis.set_xlabel("hours from start")
    axis.legend(loc="upper right", fontsize=8)
    return _png(figure)


def cost_vs_slo_png(report: WhatIfReport) -> bytes:
    """Each policy as a point (cost, attainment); the oracle as a star at its predicted
    attainment (the capacity model's, at least the target)."""
    figure, axes = _new_figure(1, 4.0)
    axis = axes[0]
    for result in report.results:
        axis.scatter(result.cost_usd, result.slo_attainment * 100.0, s=40)
        axis.annotate(
            result.policy,
            (result.cost_usd, result.slo_attainment * 100.0),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    target_pct = report.scenario.slo.target_attainment * 100.0
    axis.scatter(
        report.oracle.cost_usd,
        report.oracle.predicted_attainment * 100.0,
        marker="*",
        s=220,
        color="#2ca02c",
        label="oracle",
    )
    axis.axhline(target_pct, color="#d62728", ls="--", lw=1.0, label="SLO target")
    axis.set_xlabel("cost (USD)")
    axis.set_ylabel("SLO attainment (%)")
    axis.legend(loc="lower right", fontsize=8)
    return _png(figure)


def render_plots(report: WhatIfReport) -> dict[str, bytes]:
    """All plots as PNG bytes, keyed by file name (`PLOT_NAMES`)."""
    return {
        "demand_capacity.png": demand_capacity_png(report),
        "latency.png": latency_png(report),
        "cost_vs_slo.png": cost_vs_slo_png(report),
    }
