"""`planner tune`: a few seeded trials on short windows, a bundle that simulate can run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.inputs import build_scenario_workload
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.tune import INFEASIBLE_PENALTY, objective_value, tune_policy, windowed
from sim.errors import ScenarioError
from sim.workload import mean_rps

runner = CliRunner()


@pytest.mark.parametrize(
    ("ratio", "attainment", "expected"),
    [
        (1.5, 0.95, 1.5),
        (1.5, 0.99, 1.5),
        (1.0, 0.90, 1.0 + INFEASIBLE_PENALTY + 5.0),
        (3.0, 0.0, 3.0 + INFEASIBLE_PENALTY + 95.0),
    ],
    ids=["at-target", "above-target", "small-shortfall", "total-miss"],
)
def test_objective_penalises_infeasible_trials(
    ratio: float, attainment: float, expected: float
) -> None:
    assert objective_value(ratio, attainment, 0.95) == pytest.approx(expected)


def test_same_seed_same_tuning(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario)
    kwargs = {"trials": 4, "train_window_h": (0.0, 0.75), "eval_window_h": (1.0, 0.5), "seed": 11}
    first = tune_policy(scenario, "threshold", **kwargs)  # type: ignore[arg-type]
    second = tune_policy(scenario, "threshold", **kwargs)  # type: ignore[arg-type]
    assert first.best_params == second.best_params
    assert first.eval_tuned == second.eval_tuned
    assert set(first.best_params) == {
        "upper", "lower", "step_out", "step_in", "cooldown_out_s", "cooldown_in_s"
    }  # fmt: skip
    assert first.trials == 4 and 0 <= first.feasible_trials <= 4


def test_overlapping_windows_are_refused(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario)
    with pytest.raises(ScenarioError, match="overlap"):
        tune_policy(
            scenario, "threshold", trials=1, train_window_h=(0.0, 1.0), eval_window_h=(0.5, 1.0)
        )


def test_tune_writes_a_bundle_that_simulate_runs(tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    root = directory / "bundles"
    result = runner.invoke(
        app,
        [
            "tune", "--policy", "threshold", "--scenario", str(tiny_scenario),
            "--trials", "3", "--train-h", "0:1", "--eval-h", "1:2", "--seed", "2",
            "--out", str(root),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = root / "threshold-tuned" / "v1"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["spec"]["kind"] == "threshold"
    assert manifest["spec"]["name"] == "threshold-tuned"
    assert manifest["spec"]["upper"] == pytest.approx(manifest["fitted_params"]["upper"])
    assert manifest["training_window"]["start_s"] == 0.0
    assert manifest["training_window"]["end_s"] == 3600.0
    assert manifest["scores"]["trials"] == 3
    assert set(manifest["scores"]["eval_tuned"]) >= {"cost_usd", "slo_attainment"}
    assert "optuna" not in manifest["versions"] or manifest["versions"]["optuna"]

    out = directory / "compare.json"
    compare = runner.invoke(
        app,
        [
            "simulate", "--scenario", str(tiny_scenario),
            "--policies", f"threshold,bundle:{bundle}", "--json", str(out),
        ],
    )  # fmt: skip
    assert compare.exit_code == 0, compare.output
    rows = json.loads(out.read_text())["results"]
    assert [row["policy"] for row in rows] == ["threshold", "threshold-tuned"]

    again = runner.invoke(
        app,
        [
            "tune", "--policy", "threshold", "--scenario", str(tiny_scenario),
            "--trials", "1", "--train-h", "0:1", "--eval-h", "1:2", "--out", str(root),
        ],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (root / "threshold-tuned" / "v2" / "bundle.json").is_file()  # never overwritten


def test_windows_share_the_scenarios_scale_factor(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario, WorkloadOverrides(scale_mean_rps=6.0))
    raw = resolve_scenario(tiny_scenario)
    factor = 6.0 / mean_rps(build_scenario_workload(raw))
    for window in [(0.0, 0.5), (1.0, 0.5)]:
        scaled = build_scenario_workload(windowed(scenario, window))
        unscaled = build_scenario_workload(windowed(raw, window))
        assert mean_rps(scaled) == pytest.approx(mean_rps(unscaled) * factor, rel=1e-9)
