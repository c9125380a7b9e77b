"""`planner simulate` end to end through the CLI: table, JSON schema, flags, report, plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner import pool_sizing
from planner.cli import app
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload import load_trace

runner = CliRunner()

ROW_KEYS = {
    "policy",
    "cost_usd",
    "gpu_hours",
    "slo_attainment",
    "p50_latency_s",
    "p95_latency_s",
    "p99_latency_s",
    "dropped",
    "scaling_actions",
    "cost_vs_oracle",
    "meets_slo",
}


def resolve_scenario_model(document: dict[str, Any]) -> Scenario:
    """The `Scenario` a `--json` document's `scenario` block describes."""
    return Scenario.model_validate(document)


def simulate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["simulate", *args])
    return result.exit_code, result.output


def simulate_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    code, output = simulate(*args, "--json", str(out))
    assert code == 0, output
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_default_run_prints_a_table_with_the_oracle() -> None:
    code, output = simulate()
    assert code == 0, output
    assert "oracle (offline optimum)" in output
    assert "engine fluid" in output


def test_json_schema_and_ranges_on_the_default_scenario(tmp_path: Path) -> None:
    document = simulate_json(tmp_path)
    assert set(document) >= {"scenario", "engine", "seed", "oracle", "results"}
    assert document["engine"] == "fluid"
    assert document["scenario"]["name"] == "default"
    assert set(document["oracle"]) >= {"cost_usd", "gpu_hours"}
    oracle_cost = document["oracle"]["cost_usd"]
    assert oracle_cost > 0 and document["oracle"]["gpu_hours"] > 0
    target = document["scenario"]["slo"]["target_attainment"]
    policies = [row["policy"] for row in document["results"]]
    assert policies == document["scenario"]["policies"]
    for row in document["results"]:
        assert set(row) >= ROW_KEYS
        assert 0.0 <= row["slo_attainment"] <= 1.0
        assert row["cost_usd"] > 0 and row["gpu_hours"] > 0
        assert row["cost_vs_oracle"] == pytest.approx(row["cost_usd"] / oracle_cost)
        assert row["meets_slo"] == (row["slo_attainment"] >= target)
        assert row["p50_latency_s"] <= row["p95_latency_s"] <= row["p99_latency_s"]
        assert row["dropped"] >= 0 and row["scaling_actions"] >= 0


def test_policies_seed_and_engine_flags(tiny_scenario: Path, tmp_path: Path) -> None:
    document = simulate_json(
        tmp_path,
        "--scenario", str(tiny_scenario),
        "--policies", "hpa,fixed:4",
        "--seed", "7",
        "--engine", "des",
        "--duration-h", "0.5",
    )  # fmt: skip
    assert document["engine"] == "des"
    assert document["seed"] == 7
    assert [row["policy"] for row in document["results"]] == ["hpa", "fixed:4"]


def test_trace_and_window_flags_override_the_scenario(tiny_scenario: Path, tmp_path: Path) -> None:
    trace = tiny_scenario.parent / "rates.csv"
    document = simulate_json(
        tmp_path,
        "--trace", str(trace),
        "--trace-format", "rate-csv",
        "--bin-s", "60",
        "--start-h", "0.5",
        "--duration-h", "1",
        "--scale-mean-rps", "3",
        "--policies", "threshold",
        "--workers", "1",
    )  # fmt: skip
    workload = document["scenario"]["workload"]
    assert workload["format"] == "rate-csv"
    assert Path(workload["path"]) == trace.resolve()
    assert (workload["start_h"], workload["duration_h"], workload["scale_mean_rps"]) == (
        0.5,
        1.0,
        3.0,
    )
    # A trace without a scenario sizes its own pool (not the bundled 2-32 replicas).
    pool = document["scenario"]["pool"]
    assert (pool["min_replicas"], pool["max_replicas"]) != (2, 32)
    assert document["scenario"]["name"] == "rates"


def test_a_trace_alone_runs_at_its_own_rate_named_after_it(tmp_path: Path) -> None:
    """The bundled scenario's 12 req/s, name and pool do not leak into a trace's run."""
    trace = BUNDLED_DIR / "fixtures" / "azure_code.csv"
    document = simulate_json(
        tmp_path, "--trace", str(trace), "--trace-format", "azure-llm", "--policies", "fixed:2"
    )
    scenario = document["scenario"]
    assert scenario["name"] == "azure_code"
    assert "conv" not in scenario["description"]
    workload = scenario["workload"]
    assert workload["scale_mean_rps"] is None and workload["tokens"] is None
    raw = load_trace(trace, "azure-llm")
    pool = scenario["pool"]
    sizing = pool_sizing.size_pool(resolve_scenario_model(scenario), raw)
    assert (pool["min_replicas"], pool["max_replicas"], pool["initial_replicas"]) == (
        sizing.min_replicas,
        sizing.max_replicas,
        sizing.initial_replicas,
    )
    assert pool["max_replicas"] >= sizing.replicas_at_peak * pool_sizing.PEAK_MARGIN


def test_cluster_flags_override_pool_slo_and_interval(tiny_scenario: Path, tmp_path: Path) -> None:
    document = simulate_json(
        tmp_path,
        "--scenario", str(tiny_scenario),
        "--policies", "hpa",
        "--instance-type", "g5.2xlarge",
        "--min-replicas", "2",
        "--max-replicas", "5",
        "--slo-latency-s", "30",
        "--slo-target", "0.8",
        "--decision-interval-s", "60",
    )  # fmt: skip
    scenario = document["scenario"]
    pool = scenario["pool"]
    assert (pool["instance_type"], pool["min_replicas"], pool["max_replicas"]) == (
        "g5.2xlarge",
        2,
        5,
    )
    assert pool["initial_replicas"] == 4  # the file's 4 lies inside the new bounds
    assert scenario["slo"] == {"latency_s": 30.0, "target_attainment": 0.8}
    assert scenario["decision_interval_s"] == 60.0
    assert document["results"][0]["meets_slo"] == (document["results"][0]["slo_attainment"] >= 0.8)


def test_seeds_give_mean_and_interval_over_single_seed_runs(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    args = ("--scenario", str(tiny_scenario), "--policies", "hpa,fixed:3", "--duration-h", "0.5")
    document = simulate_json(tmp_path, *args, "--seed", "4", "--seeds", "3")
    assert document["seeds"] == [4, 5, 6]
    singles = [simulate_json(tmp_path, *args, "--seed", str(seed)) for seed in (4, 5, 6)]
    for run, single in zip(document["runs"], singles, strict=True):
        assert run["results"] == single["results"]
    costs = [single["results"][0]["cost_usd"] for single in singles]
    hpa = document["summary"]["policies"][0]
    assert hpa["policy"] == "hpa"
    assert hpa["cost_usd"]["mean"] == pytest.approx(sum(costs) / 3)
    assert hpa["cost_usd"]["ci95_low"] <= hpa["cost_usd"]["mean"] <= hpa["cost_usd"]["ci95_high"]
    assert hpa["seeds_meeting_slo"] == sum(s["results"][0]["meets_slo"] for s in singles)
    code, output = simulate(*args, "--seeds", "2")
    assert code == 0, output
    assert "2 seeds (3-4)" in output and "seeds meeting SLO" in output


def test_same_seed_same_results(tiny_scenario: Path, tmp_path: Path) -> None:
    args = ("--scenario", str(tiny_scenario), "--policies", "hpa,threshold", "--seed", "5")
    first = simulate_json(tmp_path, *args)
    second = simulate_json(tmp_path, *args)
    assert first == second


def test_report_and_plots_are_written_and_self_contained(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    plots = tmp_path / "plots" / "nested"
    code, output = simulate(
        "--scenario", str(tiny_scenario),
        "--policies", "hpa,threshold",
        "--report", str(report),
        "--plot-dir", str(plots),
    )  # fmt: skip
    assert code == 0, output
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('src="data:image/png;base64,') == 3
    for external in ('src="http', "src='http", "<script", "<link", "url("):
        assert external not in page
    assert "hpa" in page and "threshold" in page and "oracle" in page
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["cost_vs_slo.png", "demand_capacity.png", "latency.png"]
    for png in plots.iterdir():
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
