"""PNG plots of a what-if run (matplotlib, Agg backend: no display needed).

Three figures: capacity in replicas (and GPUs) against the replicas demand needs,
with each policy's decisions marked; p95 latency over time on a linear axis against
the SLO; and cost against SLO attainment with the oracle marked. Legends sit beside
the axes, off the data. Long runs
are thinned to at most `MAX_POINTS` per line by bucketing (max for demand and
latency, so peaks stay visible; mean for capacity) before drawing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.report.headline import oracle_facts
from sim.capacity.pools import ServerlessEndpoint
from sim.contract import PRIMARY
from sim.workload.model import FloatArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from planner.whatif import WhatIfReport
    from sim.result import RunResult

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


def _legend_outside(figure: Figure, axis: Axes) -> None:
    """One legend beside the axes, never over the data."""
    handles, labels = axis.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def _replicas_per_gpu(report: WhatIfReport) -> float | None:
    """Replicas one GPU hosts, for the GPU axis; None without GPUs (CPU, serverless)."""
    pool = report.scenario.pool
    if isinstance(pool, ServerlessEndpoint) or pool.gpus <= 0:
        return None
    return float(pool.replicas_per_gpu)


def _gpu_scale(replicas_per_gpu: float) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Replicas -> GPUs and back, for a secondary axis."""

    def to_gpus(replicas: Any) -> Any:
        return replicas / replicas_per_gpu

    def to_replicas(gpus: Any) -> Any:
        return gpus * replicas_per_gpu

    return to_gpus, to_replicas


def _decision_marks(result: RunResult) -> tuple[list[float], list[float], list[float], list[float]]:
    """Hours and new desired replicas of the primary pool's scale-outs and scale-ins."""
    up_h: list[float] = []
    up_n: list[float] = []
    down_h: list[float] = []
    down_n: list[float] = []
    for record in result.decisions:
        if record.target != PRIMARY:
            continue
        hours, level = record.time_s / 3600.0, float(record.desired)
        if record.desired > record.previous:
            up_h.append(hours)
            up_n.append(level)
        else:
            down_h.append(hours)
            down_n.append(level)
    return up_h, up_n, down_h, down_n


def demand_capacity_figure(report: WhatIfReport) -> Figure:
    """Capacity in replicas against the replicas demand needs, one panel per policy.

    Demand is converted to replicas at a full batch (req/s over one replica's
    throughput, `replica_capacity_rps`), so a line above the demand is headroom and
    desired-above-ready is provisioning lag. Triangles mark the policy's decisions
    (the table of reasons is in the HTML report). A right axis reads GPUs.
    """
    rows = max(len(report.results), 1)
    # Shared y: panels compare at a glance.
    figure, axes = _new_figure(rows, 2.2, sharey=True)
    cap = report.replica_capacity_rps
    per_gpu = _replicas_per_gpu(report)
    oracle = np.asarray(report.oracle.schedule, dtype=float)
    for axis, result in zip(axes, report.results, strict=False):
        series = result.series
        hours = _hours(series.time_s)
        t_h, needed = _thin(hours, series.demand_rps / cap, "max")
        axis.plot(t_h, needed, color="#555555", lw=0.8, label="demand (replicas needed)")
        _, desired = _thin(hours, series.desired, "mean")
        axis.plot(t_h, desired, color="#ff7f0e", lw=0.9, ls=":", label="desired replicas")
        _, ready = _thin(hours, series.ready, "mean")
        axis.plot(t_h, ready, color="#1f77b4", lw=1.1, label="ready replicas")
        if len(oracle) == len(series.time_s) and len(oracle):
            _, oracle_n = _thin(hours, oracle, "mean")
            axis.plot(t_h, oracle_n, color="#2ca02c", lw=0.9, ls="--", label="oracle")
        up_h, up_n, down_h, down_n = _decision_marks(result)
        axis.scatter(up_h, up_n, marker="^", s=14, color="#d62728", label="scale-out decision")
        axis.scatter(down_h, down_n, marker="v", s=14, color="#9467bd", label="scale-in decision")
        axis.set_ylabel("replicas")
        axis.set_title(result.policy, loc="left", fontsize=10)
        if per_gpu is not None:
            gpu_axis = axis.secondary_yaxis("right", functions=_gpu_scale(per_gpu))
            gpu_axis.set_ylabel("GPUs")
    # From zero, set once all panels are drawn: the axes share y, and limits fixed on
    # the first panel would cut off a later one's peak.
    axes[0].set_ylim(bottom=0.0)
    axes[-1].set_xlabel("hours from start")
    _legend_outside(figure, axes[0])
    return figure


def latency_figure(report: WhatIfReport) -> Figure:
    """p95 latency per decision interval for each policy on a linear axis, SLO as a line."""
    figure, axes = _new_figure(1, 3.6)
    axis = axes[0]
    slo_s = report.scenario.slo.latency_s
    for result in report.results:
        t_h, p95 = _thin(_hours(result.series.time_s), result.series.p95_latency_s, "max")
        axis.plot(t_h, p95, lw=0.9, label=result.policy)
    axis.axhline(slo_s, color="#d62728", ls="--", lw=1.0, label=f"SLO {slo_s:g} s")
    # Linear from zero, so the distance to the SLO line reads as seconds of slack.
    axis.set_ylim(bottom=0.0)
    axis.set_ylabel("p95 latency (s)")
    axis.set_xlabel("hours from start")
    _legend_outside(figure, axis)
    return figure


def cost_vs_slo_figure(report: WhatIfReport) -> Figure:
    """Each policy as a point (cost, attainment); the oracle as a star at the attainment
    of its schedule replayed in the engine (predicted, for summaries without a replay)."""
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
        oracle_facts(report.oracle).attainment * 100.0,
        marker="*",
        s=220,
        color="#2ca02c",
        label="oracle",
    )
    axis.axhline(target_pct, color="#d62728", ls="--", lw=1.0, label="SLO target")
    axis.set_xlabel("cost (USD)")
    axis.set_ylabel("SLO attainment (%)")
    _legend_outside(figure, axis)
    return figure


def render_plots(report: WhatIfReport) -> dict[str, bytes]:
    """All plots as PNG bytes, keyed by file name (`PLOT_NAMES`)."""
    return {
        "demand_capacity.png": _png(demand_capacity_figure(report)),
        "latency.png": _png(latency_figure(report)),
        "cost_vs_slo.png": _png(cost_vs_slo_figure(report)),
    }
