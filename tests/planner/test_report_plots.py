"""The report's figures: replicas and GPUs, a linear latency axis, legends off the data."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from planner.report.plots import (
    cost_vs_slo_figure,
    demand_capacity_figure,
    latency_figure,
    render_plots,
)
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.whatif import WhatIfReport, run_whatif
from sim.contract import PRIMARY


@pytest.fixture(scope="module")
def real_report() -> WhatIfReport:
    scenario = resolve_scenario(
        None, WorkloadOverrides(duration_h=0.5), policies=["hpa", "aws-target-tracking"]
    )
    return run_whatif(scenario, engine="fluid", workers=1)


def _legends_clear_of_axes(figure: Figure) -> None:
    """Legends belong to the figure and lie outside every data area."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    assert figure.legends, "no legend"
    data_axes = figure.axes
    for axis in data_axes:
        assert axis.get_legend() is None, "legend drawn inside the axes"
    for legend in figure.legends:
        box = legend.get_window_extent(renderer)
        for axis in data_axes:
            area = axis.get_window_extent(renderer)
            assert not Bbox.intersection(box, area), "legend overlaps the data"


def test_capacity_in_replicas_with_demand_converted(real_report: WhatIfReport) -> None:
    figure = demand_capacity_figure(real_report)
    figure.draw_without_rendering()  # secondary axes take their limits when drawn
    panels = [axis for axis in figure.axes if axis.get_title(loc="left")]
    assert [axis.get_title(loc="left") for axis in panels] == ["hpa", "aws-target-tracking"]
    for axis, result in zip(panels, real_report.results, strict=True):
        assert axis.get_ylabel() == "replicas"
        lines = {line.get_label(): line for line in axis.get_lines()}
        demand = np.asarray(lines["demand (replicas needed)"].get_ydata(), dtype=float)
        expected = result.series.demand_rps / real_report.replica_capacity_rps
        np.testing.assert_allclose(demand, expected)  # 120 points: no thinning
        ready = np.asarray(lines["ready replicas"].get_ydata(), dtype=float)
        np.testing.assert_allclose(ready, result.series.ready)
        # Every decision is marked, and every mark lies inside the (shared) y range.
        marks = [np.asarray(c.get_offsets(), dtype=float) for c in axis.collections]
        points = np.concatenate([m for m in marks if len(m)])
        primary = [r for r in result.decisions if r.target == PRIMARY]
        assert len(points) == len(primary) > 0
        low, high = axis.get_ylim()
        assert low == 0.0 and high >= points[:, 1].max()
        # A second y axis reads GPUs: one GPU per replica on g5.xlarge, same scale.
        (gpu_axis,) = axis.child_axes
        assert gpu_axis.get_ylabel() == "GPUs"
        assert gpu_axis.get_ylim() == pytest.approx(axis.get_ylim())
    _legends_clear_of_axes(figure)


def test_latency_axis_is_linear_with_the_slo_line(real_report: WhatIfReport) -> None:
    figure = latency_figure(real_report)
    axis = figure.axes[0]
    assert axis.get_yscale() == "linear"
    assert axis.get_ylim()[0] == 0.0
    slo_s = real_report.scenario.slo.latency_s
    slo_lines = [line for line in axis.get_lines() if line.get_label() == f"SLO {slo_s:g} s"]
    assert len(slo_lines) == 1
    assert set(np.asarray(slo_lines[0].get_ydata(), dtype=float)) == {slo_s}
    _legends_clear_of_axes(figure)


def test_oracle_star_at_its_replayed_attainment(real_report: WhatIfReport) -> None:
    figure = cost_vs_slo_figure(real_report)
    axis = figure.axes[0]
    star = next(c for c in axis.collections if c.get_label() == "oracle")
    (x, y), *_ = np.asarray(star.get_offsets(), dtype=float)
    assert x == pytest.approx(real_report.oracle.cost_usd)
    assert y == pytest.approx(real_report.oracle.attainment * 100.0)
    _legends_clear_of_axes(figure)


def test_render_plots_gives_three_pngs(real_report: WhatIfReport) -> None:
    plots = render_plots(real_report)
    assert sorted(plots) == ["cost_vs_slo.png", "demand_capacity.png", "latency.png"]
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for data in plots.values())
