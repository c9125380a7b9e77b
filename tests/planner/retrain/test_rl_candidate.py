"""The RL challenger of `planner retrain`: budget, bundle, warm start from the champion.

An eight-hour trace of 5-minute bins on a small pool; the candidate trains on the
first six hours for a few seconds, and runs on the last two.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from planner.retrain.rl_candidate import (
    Deadline,
    RlCandidate,
    candidate_config,
    train_rl_candidate,
    warm_start,
)
from planner.runs import RunTask, engine_named, execute_run, scenario_inputs
from planner.train.learn import learned_policy, new_model, training_envs
from planner.train.windows import cut
from policies.bundle import PolicyBundle, read_bundle, write_bundle
from policies.registry import resolve
from policies.rl import MODEL_FILE, RlSpec
from policies.threshold import ThresholdSpec
from sim.errors import ScenarioError, UserInputError
from sim.scenario import Scenario, load_scenario
from tests.planner.train.conftest import write_scenario

TRAIN_H = (0.0, 6.0)
HOLDOUT_H = (6.0, 2.0)
BUDGET_S = 4.0
#: Past the budget: the last update (started when it was predicted to fit), saving the
#: model and writing the bundle. Generous, since the test machine's cores are shared.
SLACK_S = 1.5


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return load_scenario(write_scenario(tmp_path_factory.mktemp("wave")))


@pytest.fixture(scope="module")
def champion(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> RlCandidate:
    """A candidate trained from scratch, the champion of the warm-start tests."""
    candidate = train_rl_candidate(
        scenario,
        TRAIN_H,
        budget_s=BUDGET_S,
        seed=0,
        out_root=tmp_path_factory.mktemp("bundles"),
        base_spec=ThresholdSpec(upper=0.6, name="threshold-tuned"),
    )
    assert candidate is not None
    return candidate


def test_learns_within_the_budget_on_the_training_window(champion: RlCandidate) -> None:
    assert champion.wall_s <= BUDGET_S + SLACK_S
    assert champion.timesteps > 0
    assert champion.warm_started_from is None and champion.notes == ()
    bundle = read_bundle(champion.bundle_dir)
    assert set(bundle.files) == {MODEL_FILE}
    assert bundle.fitted_params["timesteps"] == champion.timesteps
    assert bundle.fitted_params["gradient_updates"] > 0
    window = bundle.training_window
    assert window is not None and (window.start_s, window.end_s) == (0.0, TRAIN_H[1] * 3600)
    assert isinstance(bundle.spec, RlSpec)
    assert bundle.spec.base == ThresholdSpec(upper=0.6, name="threshold-tuned")


def test_the_bundle_runs_as_a_policy_on_the_holdout(
    champion: RlCandidate, scenario: Scenario
) -> None:
    spec = champion.spec
    assert isinstance(spec, RlSpec) and spec.bundle_path == str(champion.bundle_dir.resolve())
    holdout = cut(scenario, {"holdout": HOLDOUT_H})["holdout"]
    result = execute_run(RunTask(holdout, spec, seed=1))
    assert result.policy == spec.display_name() == "rl-ppo-threshold"
    assert result.cost_usd > 0 and 0.0 <= result.slo_attainment <= 1.0
    assert resolve(f"rl:{champion.bundle_dir}") == spec


def test_warm_start_loads_the_champions_weights(champion: RlCandidate, scenario: Scenario) -> None:
    assert isinstance(champion.spec, RlSpec)
    config = candidate_config(champion.spec.base, "ppo", TRAIN_H, budget_s=2.0)
    env = training_envs(config, cut(scenario, {"train": TRAIN_H})["train"])
    model, note = warm_start(champion.bundle_dir, config, env, seed=7)
    assert model is not None and note == ""
    saved = PPO.load(io.BytesIO(read_bundle(champion.bundle_dir).files[MODEL_FILE]))
    before, loaded = saved.policy.state_dict(), model.policy.state_dict()
    assert before.keys() == loaded.keys()
    assert all(torch.equal(before[key], loaded[key]) for key in before)
    assert model.num_timesteps == saved.num_timesteps > 0
    assert model.env is env and model.n_steps == config.hyperparameters["n_steps"]


def test_continues_the_champion_and_says_so(
    champion: RlCandidate, scenario: Scenario, tmp_path: Path
) -> None:
    assert isinstance(champion.spec, RlSpec)
    candidate = train_rl_candidate(
        scenario,
        TRAIN_H,
        budget_s=3.0,
        seed=1,
        out_root=tmp_path,
        base_spec=champion.spec.base,
        champion_bundle=champion.bundle_dir,
    )
    assert candidate is not None
    assert candidate.warm_started_from == str(champion.bundle_dir) and candidate.notes == ()
    fitted = read_bundle(candidate.bundle_dir).fitted_params
    before = read_bundle(champion.bundle_dir).fitted_params["timesteps_total"]
    assert fitted["timesteps_total"] == before + candidate.timesteps > before
    assert fitted["warm_started_from"] == str(champion.bundle_dir)


def with_spec(champion: RlCandidate, root: Path, **update: object) -> Path:
    """A copy of the champion's bundle with its spec changed."""
    bundle = read_bundle(champion.bundle_dir)
    copy = bundle.model_copy(update={"spec": bundle.spec.model_copy(update=update), "version": 1})
    return write_bundle(copy, root)


@pytest.mark.parametrize(
    ("update", "why"),
    [
        ({"layout_version": 0}, "the champion's model has observation layout v0, this build v1"),
        ({"algo": "dqn"}, "the champion's model is DQN, not PPO"),
        ({"action_mode": "absolute"}, "the champion's actions are absolute"),
        (
            {"action_mode": "residual", "factors": (0.8, 1.0, 1.5), "nudges": ()},
            "the champion's actions are residual [0.8, 1.0, 1.5] nudges [], the candidate's "
            "residual-change [0.0, 0.5, 1.0, 1.5, 2.0] nudges [-0.25, -0.1, 0.1, 0.25]",
        ),
        (
            {"factors": (0.5, 1.0, 2.0)},
            "the champion's actions are residual-change [0.5, 1.0, 2.0]",
        ),
        (
            {"nudges": (0.1,)},
            "the champion's actions are residual-change [0.0, 0.5, 1.0, 1.5, 2.0] nudges [0.1]",
        ),
        ({"model_file": "other.zip"}, "the champion's bundle has no model file 'other.zip'"),
    ],
    ids=["layout", "algo", "action-mode", "level-mode", "factors", "nudges", "no-model"],
)
def test_an_incompatible_champion_is_not_loaded(
    champion: RlCandidate, scenario: Scenario, tmp_path: Path, update: dict[str, object], why: str
) -> None:
    config = candidate_config(ThresholdSpec(), "ppo", TRAIN_H, budget_s=2.0)
    env = training_envs(config, cut(scenario, {"train": TRAIN_H})["train"])
    model, note = warm_start(with_spec(champion, tmp_path, **update), config, env, seed=0)
    assert model is None and note.startswith(why)


def test_a_heuristic_champion_is_not_loaded(scenario: Scenario, tmp_path: Path) -> None:
    bundle = PolicyBundle(name="hpa", version=1, spec=resolve("hpa"), created_at=datetime.now(UTC))
    config = candidate_config(ThresholdSpec(), "ppo", TRAIN_H, budget_s=2.0)
    env = training_envs(config, cut(scenario, {"train": TRAIN_H})["train"])
    model, note = warm_start(write_bundle(bundle, tmp_path), config, env, seed=0)
    assert model is None and note == "the champion is a 'hpa' policy, not a learned one"


def test_falls_back_to_scratch_with_a_note(
    champion: RlCandidate, scenario: Scenario, tmp_path: Path
) -> None:
    other_layout = with_spec(champion, tmp_path / "champion", layout_version=0)
    candidate = train_rl_candidate(
        scenario,
        TRAIN_H,
        budget_s=2.5,
        seed=0,
        out_root=tmp_path / "out",
        champion_bundle=other_layout,
    )
    assert candidate is not None and candidate.warm_started_from is None
    assert candidate.notes[0] == (
        "the champion's model has observation layout v0, this build v1: trained from scratch"
    )
    fitted = read_bundle(candidate.bundle_dir).fitted_params
    assert fitted["timesteps_total"] == candidate.timesteps  # not the champion's count
    assert fitted["notes"] == list(candidate.notes)
    assert isinstance(candidate.spec, RlSpec) and candidate.spec.base == ThresholdSpec()


def test_no_budget_trains_and_writes_nothing(scenario: Scenario, tmp_path: Path) -> None:
    for budget_s in (0.0, -1.0):
        out = tmp_path / "out"
        assert (
            train_rl_candidate(scenario, TRAIN_H, budget_s=budget_s, seed=0, out_root=out) is None
        )
        assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"window": (6.0, 10.0)}, ScenarioError, r"window \[6 h, 16 h\) lies outside"),
        ({"algo": "sac"}, UserInputError, "unknown RL algorithm 'sac'"),
        ({"base_spec": "champion"}, UserInputError, "base must be a heuristic policy"),
    ],
    ids=["window-outside", "algo", "learned-base"],
)
def test_bad_input_fails_before_writing(
    champion: RlCandidate,
    scenario: Scenario,
    tmp_path: Path,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    window = kwargs.pop("window", TRAIN_H)
    if kwargs.get("base_spec") == "champion":
        kwargs["base_spec"] = champion.spec
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        train_rl_candidate(scenario, window, budget_s=2.0, seed=0, out_root=out, **kwargs)  # type: ignore[arg-type]
    assert not out.exists()


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # (event, clock) -> what the callback answers at each step; the stop is at t = 10
        ([("rollout", 0.0), ("step", 1.0), ("step", 9.9), ("step", 10.0)], [True, True, False]),
        # iterations of 3 s: the rollout starting at 6 s ends by 9 s, the one at 9 s would not
        (
            [("rollout", 0.0), ("step", 1.0), ("rollout", 3.0), ("step", 3.1),
             ("rollout", 6.0), ("step", 6.1), ("rollout", 9.0), ("step", 9.1)],
            [True, True, True, False],
        ),
        # only a rollout's first step is judged against the iteration's length
        (
            [("rollout", 0.0), ("rollout", 2.0), ("step", 2.1), ("step", 9.0), ("step", 10.0)],
            [True, True, False],
        ),
    ],
    ids=["clock", "next-rollout-would-not-fit", "mid-rollout"],
)  # fmt: skip
def test_deadline(events: list[tuple[str, float]], expected: list[bool]) -> None:
    deadline = Deadline(stop_at=10.0)
    answers = []
    for event, now in events:
        if event == "rollout":
            deadline.rollout_started(now)
        else:
            answers.append(deadline.keep_going(now))
    assert answers == expected


def test_an_untrained_candidate_scales_as_its_base(scenario: Scenario) -> None:
    """AWARE's bootstrapping: with the floor off, a model that keeps the base's proposal
    every interval runs exactly as the base policy, scale-ins included."""
    base = ThresholdSpec(upper=0.6, cooldown_in_s=60.0)
    config = replace(candidate_config(base, "ppo", TRAIN_H, budget_s=2.0), floor_utilisation=None)
    model = new_model(config, training_envs(config, cut(scenario, {"train": TRAIN_H})["train"]), 0)
    holdout = cut(scenario, {"holdout": HOLDOUT_H})["holdout"]
    workload, history = scenario_inputs(holdout)
    learned = engine_named("fluid").run(
        holdout, workload, learned_policy(model, config), seed=2, history=history
    )
    plain = engine_named("fluid").run(holdout, workload, base.build(), seed=2, history=history)
    assert [r.desired for r in learned.decisions] == [r.desired for r in plain.decisions]
    assert all(r.reason.startswith("base x1 -> ") for r in learned.decisions)
    assert any(r.desired < r.previous for r in plain.decisions)  # the base did scale in
    assert learned.cost_usd == plain.cost_usd
