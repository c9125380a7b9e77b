"""Why each policy scaled: decisions from every engine, the CSV, the HTML timeline."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.report.decisions import CSV_COLUMNS, decisions_csv, reason_kind
from planner.report.html import MAX_DECISION_ROWS, render_html
from planner.runs import scenario_inputs
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.whatif import WhatIfReport, run_whatif
from policies.registry import resolve
from sim.capacity.pools import ServerlessEndpoint
from sim.control import ActuationRecord
from sim.engines import make_engine
from sim.result import RunResult
from sim.scenario import Scenario

runner = CliRunner()


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("ScaleUp: utilisation ratio 1.257, recommended 11, current 8", "ScaleUp"),
        ("ScaleDown,ScaleDownStabilized: utilisation ratio 0.700", "ScaleDown,ScaleDownStabilized"),
        ("AlarmHigh: utilisation 0.995 vs target 0.5 -> 16", "AlarmHigh"),
        ("fallback: reactive (no history) 11.0 rps -> 9", "fallback"),
        ("fixed at 3", "fixed at"),
        ("scheduled forecast seasonal hour 3 -> 5", "scheduled forecast seasonal hour"),
        ("AboveUpper: 1.00 > 0.7; clamped 40->32 (TooManyReplicas)", "AboveUpper"),
        ("", "(no reason)"),
    ],
)
def test_reason_kind(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


def _short_default(hours: float = 0.25) -> Scenario:
    return resolve_scenario(None, WorkloadOverrides(duration_h=hours))


def _check_chain(result: RunResult, start: int, interval_s: float) -> None:
    """Records follow each other: each starts where the previous one left the target."""
    assert result.decisions, f"{result.policy} made no decision"
    level = start
    for record in result.decisions:
        assert record.previous == level and record.desired != record.previous
        assert record.time_s % interval_s == 0
        assert record.reason
        level = record.desired
    assert result.scaling_actions == len(result.decisions)


@pytest.mark.parametrize("engine", ["fluid", "des"])
def test_every_engine_hands_back_its_decisions(engine: str) -> None:
    scenario = _short_default()
    workload, history = scenario_inputs(scenario)
    for name in ("hpa", "threshold"):
        result = make_engine(engine).run(
            scenario, workload, resolve(name).build(), seed=0, history=history
        )
        _check_chain(result, scenario.pool.start_replicas, scenario.decision_interval_s)


@pytest.mark.parametrize("engine", ["fluid", "des"])
def test_serverless_engines_hand_back_decisions(engine: str) -> None:
    base = _short_default()
    scenario = Scenario.model_validate(
        {**base.model_dump(), "pool": ServerlessEndpoint(max_replicas=200).model_dump()}
    )
    workload, history = scenario_inputs(scenario)
    result = make_engine(engine).run(
        scenario, workload, resolve("fixed:3").build(), seed=0, history=history
    )
    assert [(r.previous, r.desired, r.reason) for r in result.decisions] == [(0, 3, "fixed at 3")]


@pytest.fixture(scope="module")
def real_report() -> WhatIfReport:
    scenario = resolve_scenario(
        None, WorkloadOverrides(duration_h=0.5), policies=["hpa", "threshold", "fixed:8"]
    )
    return run_whatif(scenario, engine="fluid", workers=1)


def test_csv_has_every_decision_of_every_policy(real_report: WhatIfReport) -> None:
    rows = list(csv.DictReader(io.StringIO(decisions_csv(real_report.results))))
    assert rows and tuple(rows[0]) == CSV_COLUMNS
    for result in real_report.results:
        mine = [row for row in rows if row["policy"] == result.policy]
        assert len(mine) == len(result.decisions)
        for row, record in zip(mine, result.decisions, strict=True):
            assert float(row["time_s"]) == record.time_s
            assert (int(row["previous"]), int(row["desired"])) == (
                record.previous,
                record.desired,
            )
            assert int(row["change"]) == record.desired - record.previous
            assert row["reason"] == record.reason and row["kind"] == reason_kind(record.reason)
    # fixed:8 starts at the pool's initial 8 replicas and never changes them.
    assert not [row for row in rows if row["policy"] == "fixed:8"]


def test_html_timeline_lists_reasons_and_caps_long_runs(real_report: WhatIfReport) -> None:
    page = render_html(real_report, {})
    assert '<section id="decisions">' in page
    hpa = real_report.results[0]
    assert f"hpa: {len(hpa.decisions)} capacity changes (" in page
    kinds = Counter(reason_kind(record.reason) for record in hpa.decisions)
    assert "ScaleUp" in kinds
    for kind, count in kinds.items():
        assert f"{kind} &times;{count}" in page
    for record in hpa.decisions:
        assert f"<td>{record.previous} &rarr; {record.desired}</td>" in page
    assert "fixed:8: no capacity changes" in page
    many = tuple(
        ActuationRecord(15.0 * i, "pool", 8 + i % 2, 9 - i % 2, f"Flip: step {i} <b>")
        for i in range(MAX_DECISION_ROWS + 100)
    )
    long_run = replace(real_report, results=(replace(hpa, decisions=many),))
    long_page = render_html(long_run, {})
    assert f"first {MAX_DECISION_ROWS} of {len(many)} decisions" in long_page
    assert long_page.count("<td>Flip: step ") == MAX_DECISION_ROWS
    assert "<b>" not in long_page.split('id="decisions"')[1]  # reasons are escaped


def test_cli_writes_the_decisions_csv(tiny_scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "decisions.csv"
    result = runner.invoke(
        app,
        ["simulate", "--scenario", str(tiny_scenario), "--policies", "hpa,fixed:4",
         "--decisions", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert rows and {row["policy"] for row in rows} == {"hpa"}  # fixed:4 starts at 4
    assert all(row["reason"] for row in rows)


def test_cli_refuses_an_unwritable_decisions_path_before_running(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "decisions.csv"
    json_out = tmp_path / "out.json"
    result = runner.invoke(
        app,
        ["simulate", "--scenario", str(tiny_scenario), "--decisions", str(target),
         "--json", str(json_out)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--decisions" in result.output and "does not exist" in result.output
    assert not target.parent.exists() and not json_out.exists()
