"""`planner train`: the bundle it writes, determinism, Ray, and bad input.

Small runs: an eight-hour trace, one-hour episodes, a few hundred PPO/DQN steps.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import torch
from stable_baselines3 import DQN, PPO
from typer.testing import CliRunner

from planner.cli import app
from planner.train.config import TrainConfig, TrainJob
from planner.train.learn import make_spec, train_model
from planner.tune import windowed
from policies.registry import resolve
from sim.gym.actions import DEFAULT_CHANGE_FACTORS, DEFAULT_FACTORS, DEFAULT_NUDGES, ActionMap
from sim.scenario import load_scenario
from tests.planner.train.conftest import write_scenario

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def train_args(scenario: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--algo", "ppo", "--scenario", str(scenario), "--timesteps", "256",
        "--episode-h", "1", "--train-h", "0:6", "--eval-h", "6:8", "--tune-trials", "2",
        "--out", str(out), *extra,
    ]  # fmt: skip


def test_train_writes_a_bundle_usable_as_a_policy(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    result = runner.invoke(app, train_args(scenario, tmp_path / "bundles"))
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "bundles" / "rl-ppo-threshold" / "v1"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["spec"]["kind"] == "rl" and manifest["spec"]["layout_version"] == 1
    # new training adjusts the base's change (issue 10), and the bundle says so
    assert manifest["spec"]["action_mode"] == "residual-change"
    assert manifest["spec"]["factors"] == list(DEFAULT_CHANGE_FACTORS)
    assert manifest["spec"]["nudges"] == list(DEFAULT_NUDGES)
    fitted = manifest["fitted_params"]
    assert (fitted["action_mode"], fitted["nudges"]) == ("residual-change", list(DEFAULT_NUDGES))
    assert manifest["spec"]["bundle_path"] is None
    assert set(manifest["files"]) == {"model.zip"}
    assert {"torch", "gymnasium", "stable-baselines3"} <= set(manifest["versions"])
    held_back = manifest["scores"]["held_back"]
    assert held_back["seeds"] == [0, 1, 2, 3, 4]
    assert set(held_back["policies"]) == {
        "rl-ppo",
        "threshold-tuned",
        "threshold",
        "predictive",
        "hpa",
    }
    for score in held_back["policies"].values():
        assert len(score["cost_usd"]) == 5 and score["cost_usd_std"] >= 0
    assert held_back["oracle_cost_usd"] > 0
    assert manifest["training_window"]["end_s"] == pytest.approx(0.8 * 6 * 3600)
    assert "calibrated_threshold" in manifest["fitted_params"]
    for engine in ("des", "fluid"):
        simulated = runner.invoke(
            app,
            ["simulate", "--scenario", str(scenario), "--start-h", "6", "--duration-h", "1",
             "--policies", f"rl:{bundle}", "--engine", engine],
        )  # fmt: skip
        assert simulated.exit_code == 0, simulated.output
        assert "rl-ppo-threshold" in simulated.output


def test_tune_base_trains_on_the_tuned_base(tmp_path: Path) -> None:
    """`--tune-base`: the base family is calibrated on the training window first and
    the bundle's learned policy adjusts that tuned base, not the preset."""
    scenario = write_scenario(tmp_path)
    out = tmp_path / "bundles"
    result = runner.invoke(app, train_args(scenario, out, "--base", "hpa", "--tune-base"))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "rl-ppo-hpa" / "v1" / "bundle.json").read_text())
    base = manifest["spec"]["base"]
    assert base["kind"] == "hpa" and base["name"] == "hpa-tuned"
    preset = resolve("hpa").model_dump(mode="json")
    assert {k: v for k, v in base.items() if k != "name"} != {
        k: v for k, v in preset.items() if k != "name"
    }  # tuned parameters, not the preset's


@pytest.mark.parametrize(
    ("kwargs", "factors", "nudges"),
    [
        ({}, DEFAULT_CHANGE_FACTORS, DEFAULT_NUDGES),
        ({"action_mode": "residual"}, DEFAULT_FACTORS, ()),
        ({"action_mode": "absolute"}, DEFAULT_FACTORS, ()),
        ({"factors": (0.0, 1.0), "nudges": ()}, (0.0, 1.0), ()),
    ],
    ids=["default", "residual", "absolute", "given"],
)
def test_config_names_the_actions_it_trains_with(
    kwargs: dict[str, Any], factors: tuple[float, ...], nudges: tuple[float, ...]
) -> None:
    config = TrainConfig(algo="ppo", timesteps=1, **kwargs)
    assert (config.factors, config.nudges) == (factors, nudges)
    assert config.actions == ActionMap(config.action_mode, factors, nudges)
    assert make_spec(config, "rl").action_map() == config.actions


def test_config_rejects_actions_its_mode_cannot_take() -> None:
    with pytest.raises(ValueError, match="only to the residual-change mode"):
        TrainConfig(algo="ppo", timesteps=1, action_mode="residual", nudges=(0.1,))
    with pytest.raises(ValueError, match="must be positive"):
        TrainConfig(algo="ppo", timesteps=1, action_mode="residual", factors=(0.0, 1.0))


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_same_seed_same_model(tmp_path: Path, algo: str) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    job = TrainJob(
        TrainConfig(algo=algo, timesteps=300, episode_h=1.0),
        seed=5,
        train_scenario=windowed(scenario, (0.0, 5.0)),
        validation_scenario=windowed(scenario, (5.0, 1.0)),
    )
    first, second = train_model(job), train_model(job)
    assert first.validation_cost_usd == second.validation_cost_usd
    assert first.validation_attainment == second.validation_attainment
    load = PPO.load if algo == "ppo" else DQN.load
    a = load(io.BytesIO(first.model_zip)).policy.state_dict()
    b = load(io.BytesIO(second.model_zip)).policy.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "sac"], "unknown --algo 'sac'; use one of: ppo, dqn"),
        (["--base", "oracle"], "unknown --base 'oracle'"),
        (["--action-mode", "level"], "unknown --action-mode 'level'; use one of: residual-change"),
        (["--episode-h", "6"], "too short for one 6 h episode"),
        (["--eval-h", "6:20"], "window [6 h, 20 h) lies outside"),
        (["--eval-h", "4:8"], "overlap; the evaluation window must be held back"),
    ],
    ids=["algo", "base", "action-mode", "short-trace", "outside-trace", "overlap"],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "bundles"
    base = train_args(scenario, out)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[base.index(flag) + 1] = value
        else:
            base += [flag, value]
    result = runner.invoke(app, base)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_trains_seeds_in_parallel_and_keeps_the_best(local_ray: None, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    args = train_args(scenario, tmp_path / "bundles", "--backend", "ray", "--seeds", "2")
    args[args.index("--timesteps") + 1] = "128"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "bundles/rl-ppo-threshold/v1/bundle.json").read_text())
    validation = manifest["scores"]["validation"]
    assert set(validation["seeds"]) == {"0", "1"}
    oracle, target = validation["oracle_cost_usd"], manifest["scores"]["slo_target"]

    def rank(seed: str) -> float:
        score = validation["seeds"][seed]
        ratio = score["cost_usd"] / oracle
        shortfall = max(0.0, target - score["slo_attainment"])
        return ratio if shortfall == 0 else ratio + 10 + 100 * shortfall

    assert validation["best_seed"] == int(min(validation["seeds"], key=rank))
    assert manifest["fitted_params"]["seed"] == validation["best_seed"]
