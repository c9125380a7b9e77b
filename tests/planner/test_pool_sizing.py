"""A trace alone sizes its pool: enough replicas for its busiest minute at the SLO."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.inputs import build_scenario_workload
from planner.pool_sizing import PEAK_MARGIN, size_pool
from planner.run_setup import prepare_run, trace_warnings
from planner.scenario_input import ClusterOverrides, WorkloadOverrides
from planner.whatif import run_whatif
from sim.scenario import BUNDLED_DIR
from sim.workload import load_trace

FIXTURES = BUNDLED_DIR / "fixtures"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("azure_conv.csv", "azure-llm"), ("azure_code.csv", "azure-llm")],
    ids=["conv", "code"],
)
def test_the_sized_pool_carries_the_trace_at_the_slo(name: str, fmt: str) -> None:
    """A fleet of the replicas the busiest minute needs meets the SLO on the whole trace."""
    setup = prepare_run(None, WorkloadOverrides(trace=FIXTURES / name, trace_format=fmt))
    sizing = setup.sizing
    assert sizing is not None and sizing.slo_reachable
    scenario = setup.scenario
    assert scenario.workload.scale_mean_rps is None
    assert scenario.pool.max_replicas >= sizing.replicas_at_peak * PEAK_MARGIN
    peak_fleet = scenario.model_copy(update={"policies": [f"fixed:{sizing.replicas_at_peak}"]})
    report = run_whatif(peak_fleet)
    (run,) = report.results
    assert run.slo_attainment >= scenario.slo.target_attainment


def test_user_bounds_win_over_the_sized_ones() -> None:
    overrides = WorkloadOverrides(trace=FIXTURES / "azure_conv.csv", trace_format="azure-llm")
    setup = prepare_run(None, overrides, cluster=ClusterOverrides(max_replicas=3))
    assert setup.sizing is not None
    assert (setup.scenario.pool.min_replicas, setup.scenario.pool.max_replicas) == (1, 3)
    assert setup.scenario.pool.start_replicas <= 3


def test_a_scenario_file_keeps_its_pool(tiny_scenario: Path) -> None:
    trace = tiny_scenario.parent / "rates.csv"
    setup = prepare_run(tiny_scenario, WorkloadOverrides(trace=trace, trace_format="rate-csv"))
    assert setup.sizing is None
    assert setup.scenario.pool.max_replicas == 8


def test_sizing_grows_with_the_rate() -> None:
    overrides = WorkloadOverrides(trace=FIXTURES / "azure_conv.csv", trace_format="azure-llm")
    base = prepare_run(None, overrides).scenario
    tenfold = WorkloadOverrides(
        trace=FIXTURES / "azure_conv.csv", trace_format="azure-llm", scale_mean_rps=55.3
    )
    larger = prepare_run(None, tenfold).scenario
    assert larger.pool.max_replicas > 5 * base.pool.max_replicas
    workload = build_scenario_workload(larger)
    again = size_pool(larger, workload)
    assert again.max_replicas == larger.pool.max_replicas


def test_implausible_traces_are_warned_about(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.csv"
    sparse.write_text("".join(f"{i * 3000}\n" for i in range(100)))  # 100 requests in 3.5 days
    warnings = trace_warnings(load_trace(sparse, "requests-csv"), "sparse.csv")
    assert any("--time-unit ms" in w for w in warnings)
    busy = tmp_path / "busy.csv"
    busy.write_text("0,200000\n60,300000\n")
    assert any(
        "averages 250,000 req/s" in w for w in trace_warnings(load_trace(busy, "rate-csv"), "b")
    )
    assert trace_warnings(load_trace(FIXTURES / "azure_conv.csv", "azure-llm"), "conv") == []
