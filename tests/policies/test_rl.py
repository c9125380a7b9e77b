"""The learned policy: bundle round trip, `rl:PATH` in both engines, and bad bundles.

Tiny PPO models (256 env steps) are trained once per module in the real env: one in
the `residual-change` mode new training uses, one in the level (`residual`) mode
that bundles written before it recorded.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from typer.testing import CliRunner

from planner.cli import app
from policies.bundle import PolicyBundle, read_bundle, write_bundle
from policies.registry import resolve
from policies.rl import RlSpec, rl_spec_from_bundle
from policies.threshold import ThresholdSpec
from sim.des.engine import DesEngine
from sim.errors import PolicyError
from sim.fluid.engine import FluidEngine
from sim.gym import make_cluster_env
from sim.gym.actions import DEFAULT_CHANGE_FACTORS, DEFAULT_NUDGES, ActionMap
from sim.gym.observation import N_FEATURES
from sim.scenario import Scenario, load_scenario
from sim.workload import build_workload
from sim.workload.ops import slice_window

runner = CliRunner()


def write_trace(path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows = ["timestamp,value"]
    for i in range(6 * 12):  # six hours of 5-minute bins
        level = 3.0 * (1 + 0.6 * math.sin(2 * math.pi * i / 36)) * (3 if rng.random() < 0.05 else 1)
        rows.append(f"{i * 300},{level:.3f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def scenario_yaml(directory: Path) -> Path:
    trace = write_trace(directory / "wave.csv")
    path = directory / "wave.yaml"
    path.write_text(
        f"""
name: wave
description: six hours of a wave with spikes on a small pool
workload: {{format: rate-csv, path: {trace}, bin_s: 300}}
pool: {{kind: gpu-node-pool, instance_type: g5.xlarge, min_replicas: 1, max_replicas: 16,
        initial_replicas: 4}}
slo: {{latency_s: 40.0, target_attainment: 0.9}}
decision_interval_s: 30
policies: [threshold]
seed: 3
"""
    )
    return path


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("rl")
    path = scenario_yaml(directory)
    scenario = load_scenario(path)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=0)
    # the level mode, as bundles written before residual-change record it
    model = tiny_model(scenario, workload, "residual")
    spec = RlSpec(name="rl-test", algo="ppo", base=ThresholdSpec(), action_mode="residual")
    written = write(directory / "bundles", spec, {"model.zip": saved(model)})
    change_model = tiny_model(scenario, workload, "residual-change")
    change_spec = RlSpec(
        name="rl-change", algo="ppo", base=ThresholdSpec(), action_mode="residual-change",
        factors=DEFAULT_CHANGE_FACTORS, nudges=DEFAULT_NUDGES,
    )  # fmt: skip
    change = write(directory / "change", change_spec, {"model.zip": saved(change_model)})
    return {"dir": directory, "yaml": path, "scenario": scenario, "workload": workload,
            "model": model, "bundle": written, "spec": spec, "change_bundle": change,
            "change_spec": change_spec}  # fmt: skip


def tiny_model(scenario: Scenario, workload: Any, mode: str) -> PPO:
    env = make_cluster_env(
        scenario=scenario,
        workload=workload,
        base_policy=ThresholdSpec().build(),
        episode_s=3600.0,
        action_mode=mode,
    )
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    return model


def saved(model: PPO) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def write(root: Path, spec: RlSpec, files: dict[str, bytes], version: int = 1) -> Path:
    bundle = PolicyBundle(
        name=spec.display_name(),
        version=version,
        spec=spec,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        files=files,
    )
    return write_bundle(bundle, root)


def test_bundle_round_trip(setting: dict[str, Any]) -> None:
    bundle = read_bundle(setting["bundle"])
    assert bundle.spec == setting["spec"]
    resolved = resolve(f"rl:{setting['bundle']}")
    assert isinstance(resolved, RlSpec)
    assert resolved.bundle_path == str(setting["bundle"].resolve())
    assert resolve(f"bundle:{setting['bundle']}") == resolved
    loaded = PPO.load(io.BytesIO(bundle.files["model.zip"]), device="cpu")
    observations = np.random.default_rng(0).uniform(-2, 2, size=(32, N_FEATURES))
    ours = setting["model"].predict(observations.astype(np.float32), deterministic=True)[0]
    theirs = loaded.predict(observations.astype(np.float32), deterministic=True)[0]
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("bundle", "name"), [("bundle", "rl-test"), ("change_bundle", "rl-change")],
    ids=["residual", "residual-change"],
)  # fmt: skip
@pytest.mark.parametrize("engine", [FluidEngine(), DesEngine()], ids=["fluid", "des"])
def test_learned_policy_runs_in_both_engines(
    setting: dict[str, Any], engine: Any, bundle: str, name: str
) -> None:
    scenario: Scenario = setting["scenario"]
    window = slice_window(setting["workload"], 3600.0, 2 * 3600.0)
    policy = resolve(f"rl:{setting[bundle]}").build()
    result = engine.run(scenario, window, policy, seed=1)
    assert result.policy == name
    assert result.arrivals > 0 and 0.0 <= result.slo_attainment <= 1.0
    assert result.cost_usd > 0
    # the same policy object, reset by the engine, decides identically on a second run
    again = engine.run(scenario, window, policy, seed=1)
    assert again.cost_usd == result.cost_usd


def test_simulate_accepts_rl_path(setting: dict[str, Any]) -> None:
    result = runner.invoke(
        app,
        ["simulate", "--scenario", str(setting["yaml"]), "--duration-h", "1",
         "--policies", f"threshold,rl:{setting['bundle']}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rl-test" in result.output


def test_bundle_of_another_observation_layout(setting: dict[str, Any], tmp_path: Path) -> None:
    spec = setting["spec"].model_copy(update={"layout_version": 99})
    path = write(tmp_path, spec, {"model.zip": b"unused"})
    with pytest.raises(PolicyError, match="observation layout v99"):
        rl_spec_from_bundle(path)
    result = runner.invoke(
        app, ["simulate", "--scenario", str(setting["yaml"]), "--policies", f"rl:{path}"]
    )
    assert result.exit_code == 2
    assert "observation layout v99" in result.output and "Traceback" not in result.output


def test_bundle_of_another_schema_version(setting: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(setting["bundle"], copy)
    manifest = copy / "bundle.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 7
    manifest.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match="bundle schema_version 7 is not supported"):
        resolve(f"rl:{copy}")


def test_missing_model_file(setting: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(setting["bundle"], copy)
    (copy / "model.zip").unlink()
    with pytest.raises(PolicyError, match=r"'model\.zip' listed in bundle\.json is missing"):
        resolve(f"rl:{copy}")
    unlisted = write(tmp_path / "unlisted", setting["spec"], {})
    with pytest.raises(PolicyError, match=r"has no model file 'model\.zip'"):
        resolve(f"rl:{unlisted}")


def test_not_a_model_and_not_an_rl_bundle(setting: dict[str, Any], tmp_path: Path) -> None:
    garbage = write(tmp_path / "garbage", setting["spec"], {"model.zip": b"not a zip"})
    with pytest.raises(PolicyError, match="not a readable PPO model"):
        resolve(f"rl:{garbage}").build()
    plain = PolicyBundle(
        name="threshold", version=1, spec=ThresholdSpec(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    path = write_bundle(plain, tmp_path / "plain")
    with pytest.raises(PolicyError, match="not a learned policy"):
        resolve(f"rl:{path}")
    with pytest.raises(PolicyError, match="needs its bundle"):
        setting["spec"].build()


def test_a_bundle_from_before_residual_change_loads_in_the_level_mode(
    setting: dict[str, Any], tmp_path: Path
) -> None:
    """A manifest without `nudges` (written before the field existed) loads as it was
    trained: the level mode's six actions, and decides as the model it holds."""
    copy = tmp_path / "v1"
    shutil.copytree(setting["bundle"], copy)
    manifest = copy / "bundle.json"
    data = json.loads(manifest.read_text())
    del data["spec"]["nudges"]
    manifest.write_text(json.dumps(data))
    spec = rl_spec_from_bundle(copy)
    assert spec.action_map() == ActionMap.default("residual")
    window = slice_window(setting["workload"], 3600.0, 2 * 3600.0)
    old = FluidEngine().run(setting["scenario"], window, spec.build(), seed=1)
    now = FluidEngine().run(
        setting["scenario"], window, resolve(f"rl:{setting['bundle']}").build(), seed=1
    )
    assert [r.desired for r in old.decisions] == [r.desired for r in now.decisions]


def test_a_model_of_another_action_count_is_refused(
    setting: dict[str, Any], tmp_path: Path
) -> None:
    """A residual-change model (9 actions) under a level-mode spec (6) fails to load."""
    content = (setting["change_bundle"] / "model.zip").read_bytes()
    path = write(tmp_path, setting["spec"], {"model.zip": content})
    with pytest.raises(PolicyError, match=r"9 actions; .* the spec 6 actions"):
        resolve(f"rl:{path}").build()
