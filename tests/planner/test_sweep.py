"""Sweeps on the local process executor: grid expansion, validation, CSV and JSON output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.scenario_input import ClusterOverrides
from planner.sweep import SweepRow, load_sweep
from planner.sweep_report import group_rows
from sim.errors import PolicyError, ScenarioError

runner = CliRunner()

SWEEP = """
scenarios: [tiny.yaml]
policies: [threshold, hpa]
grid:
  threshold: {{upper: [0.6, 0.8]}}
  hpa: {{hysteresis.scale_down.stabilization_window_s: [{window}]}}
seeds: [0, 1]
duration_h: 0.5
"""


def write_sweep(directory: Path, text: str = SWEEP.format(window=60)) -> Path:
    path = directory / "sweep.yaml"
    path.write_text(text)
    return path


def test_grid_expands_in_order_with_dotted_fields(tiny_scenario: Path) -> None:
    plan = load_sweep(write_sweep(tiny_scenario.parent))
    labels = [(case.policy_label, case.seed) for case in plan.cases]
    assert labels == [
        ("threshold[upper=0.6]", 0),
        ("threshold[upper=0.6]", 1),
        ("threshold[upper=0.8]", 0),
        ("threshold[upper=0.8]", 1),
        ("hpa[hysteresis.scale_down.stabilization_window_s=60]", 0),
        ("hpa[hysteresis.scale_down.stabilization_window_s=60]", 1),
    ]
    hpa = plan.cases[-1].spec
    assert hpa.hysteresis is not None
    assert hpa.hysteresis.scale_down.stabilization_window_s == 60
    assert plan.cases[0].scenario.workload.duration_h == 0.5


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("policies: [threshold]\ngrid: {threshold: {uper: [0.5]}}", PolicyError, "uper"),
        ("policies: [threshold]\ngrid: {threshold: {upper: [2.0]}}", PolicyError, "upper"),
        ("policies: [threshold]\ngrid: {hpa: {target: [0.5]}}", PolicyError, "not in"),
        ("policies: [threshold]\ngrid: {threshold: {upper: []}}", ScenarioError, "empty"),
        ("policies: []", ScenarioError, "policies"),
        ("policies: [threshold]\nseeds: one", ScenarioError, "seeds"),
        ("policies: [threshold]\nseeds: [-1]", ScenarioError, "seeds"),
        ("policies: [spillover]\nduration_h: 0.5", PolicyError, "spillover"),
        ("policies: [warp-drive]", PolicyError, "warp-drive"),
        ("policies: [threshold]\nscenarios: [missing.yaml]", ScenarioError, "missing.yaml"),
        ("{unclosed", ScenarioError, "not valid YAML"),
    ],
    ids=[
        "misspelt-field",
        "invalid-value",
        "grid-for-absent-policy",
        "empty-axis",
        "no-policies",
        "bad-seeds",
        "negative-seed",
        "policy-misfits-scenario",
        "unknown-policy",
        "missing-scenario",
        "malformed-yaml",
    ],
)
def test_bad_sweep_files_are_user_errors(
    tmp_path: Path, text: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        load_sweep(write_sweep(tmp_path, text))


def test_local_sweep_writes_csv_and_json(tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    csv_path, json_path = directory / "rows.csv", directory / "rows.json"
    result = runner.invoke(
        app,
        [
            "sweep", str(write_sweep(directory)),
            "--backend", "local", "--workers", "2",
            "--csv", str(csv_path), "--json", str(json_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(json_path.read_text())
    assert len(rows) == 6
    assert {row["policy"] for row in rows} == {
        "threshold[upper=0.6]",
        "threshold[upper=0.8]",
        "hpa[hysteresis.scale_down.stabilization_window_s=60]",
    }
    for row in rows:
        assert 0.0 <= row["slo_attainment"] <= 1.0
        assert row["cost_vs_oracle"] > 0
        assert row["scenario"] == "tiny.yaml"
    table = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [r["policy"] for r in table] == [r["policy"] for r in rows]
    assert table[0]["params"] == "upper=0.6"


def test_sweep_with_a_bad_grid_exits_2_and_writes_nothing(tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    spec = write_sweep(directory, SWEEP.format(window=-5))
    result = runner.invoke(app, ["sweep", str(spec), "--json", str(directory / "rows.json")])
    assert result.exit_code == 2
    assert "stabilization_window_s" in result.output
    assert not (directory / "rows.json").exists()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--backend", "local", "--address", "auto"], "--address applies only"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["--backend", "dask"], "dask"),
    ],
    ids=["address-without-ray", "unreachable-ray", "unknown-backend"],
)
def test_bad_backend_flags_exit_2(tiny_scenario: Path, flags: list[str], fragment: str) -> None:
    spec = write_sweep(tiny_scenario.parent)
    result = runner.invoke(app, ["sweep", str(spec), *flags])
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_sweep_table_has_parameter_columns_and_aggregates_seeds(tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    json_path = directory / "rows.json"
    result = runner.invoke(
        app,
        [
            "sweep", str(write_sweep(directory)), "--workers", "1", "--json", str(json_path),
            "--max-replicas", "6", "--slo-target", "0.85",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(json_path.read_text())
    groups = group_rows([SweepRow(**row) for row in rows])
    assert [(g.policy, g.params, len(g.rows)) for g in groups] == [
        ("threshold", {"upper": 0.6}, 2),
        ("threshold", {"upper": 0.8}, 2),
        ("hpa", {"hysteresis.scale_down.stabilization_window_s": 60}, 2),
    ]
    costs = [row["cost_usd"] for row in rows[:2]]
    assert groups[0].interval(lambda r: r.cost_usd).mean == pytest.approx(sum(costs) / 2)
    table = result.output
    assert "3 configurations x 2 seeds" in table
    assert "upper" in table and "stabilization_window_s" in table
    assert table.count("tiny.yaml") == 3  # one row per configuration, not per seed
    plan = load_sweep(write_sweep(directory), ClusterOverrides(max_replicas=6, slo_target=0.85))
    assert plan.cases[0].scenario.pool.max_replicas == 6
    assert plan.cases[0].scenario.slo.target_attainment == 0.85


class _Recording:
    """An executor that records the tasks it is handed and runs none of them."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: list[object] = []

    def map(self, fn, items, on_done=None):  # type: ignore[no-untyped-def]
        self.tasks += list(items)
        raise RuntimeError("recorded")


def test_each_oracle_is_verified_in_the_sweeps_engine_on_its_cases_seed(
    tiny_scenario: Path,
) -> None:
    from planner.runs import OracleTask
    from planner.sweep import run_sweep

    plan = load_sweep(write_sweep(tiny_scenario.parent, SWEEP.format(window=60) + "engine: des\n"))
    executor = _Recording()
    with pytest.raises(RuntimeError, match="recorded"):
        run_sweep(plan, executor)  # type: ignore[arg-type]
    oracles = [task for task in executor.tasks if isinstance(task, OracleTask)]
    assert sorted((task.engine, task.seed) for task in oracles) == [("des", 0), ("des", 1)]
