"""`planner tune`: a few seeded trials on short windows, a bundle that simulate can run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.inputs import build_scenario_workload
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.tune import (
    INFEASIBLE_PENALTY,
    Score,
    objective_value,
    tune_policy,
    windowed,
)
from policies.bundle import read_bundle
from policies.registry import resolve
from sim.errors import ScenarioError
from sim.scenario import BUNDLED_DIR
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
    assert set(first.trial_params or {}) == {
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
    scores = manifest["scores"]
    if scores["winner"] == "tuned":
        assert manifest["spec"]["upper"] == pytest.approx(manifest["fitted_params"]["upper"])
    else:  # the defaults were kept: the bundle says so and holds the preset's values
        assert manifest["fitted_params"] == {} and scores["winner_reason"]
        assert manifest["spec"]["upper"] == 0.7
    # The last word of the last line is the bundle written, and it resolves as bundle:PATH.
    assert result.output.strip().splitlines()[-1].split()[-1] == str(bundle)
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
    # The --out root and the bundle's folder resolve to the latest version (v2).
    for named in (root, root / "threshold-tuned"):
        assert resolve(f"bundle:{named}") == read_bundle(root / "threshold-tuned" / "v2").spec


def test_windows_share_the_scenarios_scale_factor(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario, WorkloadOverrides(scale_mean_rps=6.0))
    raw = resolve_scenario(tiny_scenario)
    factor = 6.0 / mean_rps(build_scenario_workload(raw))
    for window in [(0.0, 0.5), (1.0, 0.5)]:
        scaled = build_scenario_workload(windowed(scenario, window))
        unscaled = build_scenario_workload(windowed(raw, window))
        assert mean_rps(scaled) == pytest.approx(mean_rps(unscaled) * factor, rel=1e-9)


def _objective(score: Score | None, target: float) -> float:
    assert score is not None
    ratio = score.cost_vs_oracle if score.cost_vs_oracle is not None else score.cost_usd
    return objective_value(ratio, score.slo_attainment, target)


@pytest.mark.parametrize("seed", [1, 5])
def test_a_tuned_result_worse_than_the_defaults_never_wins(tiny_scenario: Path, seed: int) -> None:
    scenario = resolve_scenario(tiny_scenario)
    target = scenario.slo.target_attainment
    outcome = tune_policy(
        scenario, "threshold", trials=2, train_window_h=(0.0, 1.0), eval_window_h=(1.0, 1.0),
        seed=seed,
    )  # fmt: skip
    if outcome.winner == "tuned":
        assert _objective(outcome.train, target) <= _objective(outcome.train_default, target)
        assert _objective(outcome.eval_tuned, target) <= _objective(outcome.eval_default, target)
    else:
        assert outcome.winner_reason
        assert outcome.best_params == {}
        assert outcome.tuned_spec.model_copy(update={"name": None}) == outcome.base_spec


def test_tune_prints_the_simulate_line_that_reproduces_its_eval_rows(tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    result = runner.invoke(
        app,
        [
            "tune", "--policy", "threshold", "--scenario", str(tiny_scenario),
            "--trials", "2", "--train-h", "0:1", "--eval-h", "1:2", "--seed", "3",
            "--out", str(directory / "b"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("planner simulate"))
    args = shlex.split(line.strip())[1:]
    out = directory / "reproduce.json"
    again = runner.invoke(app, [*args, "--json", str(out)])
    assert again.exit_code == 0, again.output
    rows = {row["policy"]: row for row in json.loads(out.read_text())["results"]}
    manifest = json.loads((directory / "b" / "threshold-tuned" / "v1" / "bundle.json").read_text())
    scores = manifest["scores"]
    for name, key in (("threshold", "eval_default"), ("threshold-tuned", None)):
        key = key or ("eval_tuned" if scores["winner"] == "tuned" else "eval_default")
        assert rows[name]["cost_usd"] == pytest.approx(scores[key]["cost_usd"], rel=1e-12)
        assert rows[name]["slo_attainment"] == pytest.approx(scores[key]["slo_attainment"])


def test_nothing_meeting_the_slo_exits_3_without_a_bundle(tiny_scenario: Path) -> None:
    root = tiny_scenario.parent / "bundles"
    args = [
        "tune", "--policy", "threshold", "--scenario", str(tiny_scenario), "--trials", "1",
        "--train-h", "0:0.5", "--eval-h", "1:1.5", "--slo-latency-s", "0.5", "--out", str(root),
    ]  # fmt: skip
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3, refused.output
    assert "no bundle" in refused.output and "--allow-infeasible" in refused.output
    assert not root.exists() or not any(root.rglob("bundle.json"))
    allowed = runner.invoke(app, [*args, "--allow-infeasible"])
    assert allowed.exit_code == 0, allowed.output
    assert (root / "threshold-tuned" / "v1" / "bundle.json").is_file()


def test_tune_on_a_trace_alone_sizes_the_pool_like_simulate(tmp_path: Path) -> None:
    trace = BUNDLED_DIR / "fixtures" / "azure_conv.csv"
    result = runner.invoke(
        app,
        [
            "tune", "--policy", "hpa", "--trace", str(trace), "--trace-format", "azure-llm",
            "--trials", "1", "--train-h", "0:0.5", "--eval-h", "0.5:0.95", "--allow-infeasible",
            "--out", str(tmp_path / "b"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pool sized from the trace" in result.output
    manifest = json.loads((tmp_path / "b" / "hpa-tuned" / "v1" / "bundle.json").read_text())
    assert manifest["training_window"]["source"] == str(trace.resolve())
