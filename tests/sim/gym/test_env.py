"""`scaleplan/Cluster-v0`: the checkers, seeding, episode ends, and residual "no change"."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from policies.threshold import ThresholdPolicy
from sim.errors import ScenarioError
from sim.fluid.engine import FluidEngine
from sim.gym import ENV_ID, make_cluster_env
from sim.gym.env import ClusterEnv
from sim.gym.observation import N_FEATURES, OBS_BOUND
from sim.scenario import Scenario
from sim.workload.model import Workload
from sim.workload.ops import slice_window

EPISODE_S = 3600.0


def make(scenario: Scenario, workload: Workload, **kwargs: Any) -> gym.Env[Any, Any]:
    return make_cluster_env(
        scenario=scenario,
        workload=workload,
        base_policy=ThresholdPolicy(),
        episode_s=EPISODE_S,
        **kwargs,
    )


def rollout(env: gym.Env[Any, Any], seed: int, actions: list[int]) -> list[Any]:
    obs, info = env.reset(seed=seed)
    trace: list[Any] = [obs, info["start_s"], info["level"]]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace += [obs, reward, terminated, truncated, info["desired"]]
    return trace


def test_passes_gymnasium_check_env(scenario: Scenario, workload: Workload) -> None:
    env = make(scenario, workload)
    gym_check_env(env.unwrapped, skip_render_check=True)
    assert env.spec is not None and env.spec.id == ENV_ID


def test_passes_stable_baselines3_check_env(scenario: Scenario, workload: Workload) -> None:
    sb3_check_env(make(scenario, workload), warn=True)


def test_spaces_and_observation_bounds(scenario: Scenario, workload: Workload) -> None:
    env = make(scenario, workload)
    obs, _ = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(6)
    assert obs.shape == (N_FEATURES,) and obs.dtype == np.float32
    for action in range(6):
        obs, *_ = env.step(action)
        assert np.all(np.abs(obs) <= OBS_BOUND)


def test_same_seed_same_episode_other_seed_another(scenario: Scenario, workload: Workload) -> None:
    actions = [int(a) for a in np.random.default_rng(5).integers(0, 6, size=40)]
    first = rollout(make(scenario, workload), 11, actions)
    again = rollout(make(scenario, workload), 11, actions)
    other = rollout(make(scenario, workload), 12, actions)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    assert first[1] != other[1]  # another offset


def test_time_limit_truncates_and_nothing_terminates(
    scenario: Scenario, workload: Workload
) -> None:
    env = make(scenario, workload)
    env.reset(seed=3)
    steps = int(EPISODE_S // scenario.decision_interval_s)
    for step in range(steps):
        _, _, terminated, truncated, _ = env.step(2)
        assert not terminated
        assert truncated == (step == steps - 1)


def test_residual_no_change_reproduces_the_base_policy(
    scenario: Scenario, workload: Workload
) -> None:
    """With the floor off and the level kept, "no change" every step is the base policy's run."""
    env = make(scenario, workload, floor_utilisation=None, level_range=(1.0, 1.0))
    unwrapped = env.unwrapped
    assert isinstance(unwrapped, ClusterEnv)
    no_change = unwrapped.actions.no_change
    start_s = 2 * 3600.0
    _, info = env.reset(seed=4, options={"start_s": start_s})
    desired, proposals, truncated = [], [], False
    while not truncated:
        _, _, _, truncated, step_info = env.step(no_change)
        desired.append(step_info["desired"])
        proposals.append(step_info["base_desired"])
    window = slice_window(workload, start_s, start_s + EPISODE_S)
    plain = FluidEngine().run(scenario, window, ThresholdPolicy(), seed=info["run_seed"])
    expected = plain.series.desired[: len(desired)].astype(int).tolist()
    assert desired == expected
    assert len(set(expected)) > 1  # the base policy did scale in this window
    assert unwrapped._loop is not None
    assert len(unwrapped._loop.records) == plain.scaling_actions


def test_other_actions_move_away_from_the_proposal(scenario: Scenario, workload: Workload) -> None:
    env = make(scenario, workload, floor_utilisation=None)
    env.reset(seed=9)
    _, _, _, _, info = env.step(5)  # x1.5 of the proposal
    assert info["desired"] > info["base_desired"]


def test_trace_too_short_for_an_episode(scenario: Scenario, workload: Workload) -> None:
    short = slice_window(workload, 0.0, 1800.0)
    with pytest.raises(ScenarioError, match=r"too short for one 1\.00 h episode"):
        ClusterEnv(scenario, short, ThresholdPolicy(), episode_s=EPISODE_S)


def test_sync_vector_env_steps_several_episodes(scenario: Scenario, workload: Workload) -> None:
    vector = gym.vector.SyncVectorEnv([lambda: make(scenario, workload) for _ in range(3)])
    obs, _ = vector.reset(seed=[1, 2, 3])
    assert obs.shape == (3, N_FEATURES)
    obs, rewards, terminated, truncated, _ = vector.step(np.array([0, 2, 5]))
    assert rewards.shape == (3,) and not terminated.any() and not truncated.any()
    assert np.all(rewards < 0)  # every step costs something
