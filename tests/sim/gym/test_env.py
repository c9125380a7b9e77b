"""`scaleplan/Cluster-v0`: the checkers, seeding, episode ends, residual "no change", and
constant actions that do (level mode) or do not (residual-change) run away."""

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
from sim.gym.actions import ActionMap
from sim.gym.env import ClusterEnv
from sim.gym.observation import N_FEATURES, OBS_BOUND
from sim.scenario import Scenario
from sim.workload.model import RateEnvelope, Workload
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


MODES = ["residual-change", "residual", "absolute"]


@pytest.mark.parametrize("mode", MODES)
def test_passes_gymnasium_check_env(scenario: Scenario, workload: Workload, mode: str) -> None:
    env = make(scenario, workload, action_mode=mode)
    gym_check_env(env.unwrapped, skip_render_check=True)
    assert env.spec is not None and env.spec.id == ENV_ID


@pytest.mark.parametrize("mode", MODES)
def test_passes_stable_baselines3_check_env(
    scenario: Scenario, workload: Workload, mode: str
) -> None:
    sb3_check_env(make(scenario, workload, action_mode=mode), warn=True)


@pytest.mark.parametrize(("mode", "n"), [("residual-change", 9), ("residual", 6)])
def test_spaces_and_observation_bounds(
    scenario: Scenario, workload: Workload, mode: str, n: int
) -> None:
    env = make(scenario, workload, action_mode=mode)
    obs, _ = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(n)
    assert obs.shape == (N_FEATURES,) and obs.dtype == np.float32
    for action in range(n):
        obs, *_ = env.step(action)
        assert np.all(np.abs(obs) <= OBS_BOUND)


def test_residual_change_is_the_default(scenario: Scenario, workload: Workload) -> None:
    unwrapped = make(scenario, workload).unwrapped
    assert isinstance(unwrapped, ClusterEnv)
    assert unwrapped.actions == ActionMap.default("residual-change")


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


@pytest.mark.parametrize("mode", ["residual-change", "residual"])
@pytest.mark.parametrize(("sampling", "start_h"), [("exact", 2), ("per-second", 3)])
def test_residual_no_change_reproduces_the_base_policy(
    scenario: Scenario, workload: Workload, mode: str, sampling: str, start_h: int
) -> None:
    """With the floor off and the level kept, "no change" every step is the base
    policy's run in the same engine, arrivals drawn either way (each start is a window
    where the base scales under that sampling)."""
    env = make(
        scenario,
        workload,
        action_mode=mode,
        floor_utilisation=None,
        level_range=(1.0, 1.0),
        episode_sampling=sampling,
    )
    unwrapped = env.unwrapped
    assert isinstance(unwrapped, ClusterEnv)
    no_change = unwrapped.actions.no_change
    start_s = start_h * 3600.0
    _, info = env.reset(seed=4, options={"start_s": start_s})
    desired, proposals, truncated = [], [], False
    while not truncated:
        _, _, _, truncated, step_info = env.step(no_change)
        desired.append(step_info["desired"])
        proposals.append(step_info["base_desired"])
    # the env's window: one interval past the episode, for the last decision's traffic
    window = slice_window(workload, start_s, start_s + EPISODE_S + scenario.decision_interval_s)
    plain = FluidEngine(unwrapped.engine.settings).run(
        scenario, window, ThresholdPolicy(), seed=info["run_seed"]
    )
    expected = plain.series.desired[: len(desired)].astype(int).tolist()
    assert desired == expected
    assert len(set(expected)) > 1  # the base policy did scale in this window
    assert unwrapped._loop is not None

    def changes(records: Any) -> list[tuple[float, int, int]]:
        return [(r.time_s, r.previous, r.desired) for r in records if r.time_s < EPISODE_S]

    assert changes(unwrapped._loop.records) == changes(plain.decisions)


def test_other_actions_move_away_from_the_proposal(scenario: Scenario, workload: Workload) -> None:
    env = make(scenario, workload, action_mode="residual", floor_utilisation=None)
    env.reset(seed=9)
    _, _, _, _, info = env.step(5)  # x1.5 of the proposal
    assert info["desired"] > info["base_desired"]
    for action, expected in [(0, 4), (4, 2)]:  # hold; twice the base's scale-in
        env = make(
            scenario,
            workload,
            floor_utilisation=None,
            level_range=(1.0, 1.0),
            episode_sampling="exact",  # request by request: this start's first proposal is 3
        )
        env.reset(seed=9, options={"start_s": 0.0})  # 4 replicas, demand for fewer
        _, _, _, _, info = env.step(action)
        assert (info["base_desired"], info["desired"]) == (3, expected)


def peak_desired(env: gym.Env[Any, Any], action: int) -> int:
    """The highest desired capacity of a long episode taking `action` every interval."""
    env.reset(seed=0, options={"start_s": 1800.0})
    peak, truncated = 0, False
    while not truncated:
        _, _, _, truncated, info = env.step(action)
        peak = max(peak, info["desired"])
    return peak


@pytest.mark.parametrize("floor", [0.9, None], ids=["floor", "no-floor"])
def test_no_constant_action_compounds_in_residual_change(
    roomy_scenario: Scenario, workload: Workload, floor: float | None
) -> None:
    """Issue 10 on a 2,000-replica pool over eight hours (960 decisions): every constant
    residual-change action peaks within a small multiple of the base alone (the
    threshold preset, which holds at the current capacity inside its band); in the
    level mode any factor above 1 compounds to the pool's maximum."""
    kwargs: dict[str, Any] = {"level_range": (1.0, 1.0), "floor_utilisation": floor}

    def long_env(mode: str) -> gym.Env[Any, Any]:
        return make_cluster_env(
            scenario=roomy_scenario, workload=workload, base_policy=ThresholdPolicy(),
            episode_s=8 * 3600.0, action_mode=mode, **kwargs,
        )  # fmt: skip

    change = long_env("residual-change")
    base_peak = peak_desired(change, ActionMap.default("residual-change").no_change)
    assert 4 < base_peak < 100  # the base does scale on this wave
    peaks = [peak_desired(change, action) for action in range(ActionMap.default().n)]
    assert max(peaks) <= 3 * base_peak, peaks
    level = long_env("residual")
    level_map = ActionMap.default("residual")
    assert peak_desired(level, level_map.no_change) == base_peak
    for action in range(level_map.no_change + 1, level_map.n):
        assert peak_desired(level, action) == 2000  # x1.1 and up: the pool's maximum


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


def test_per_second_episodes_are_the_default_and_keep_the_envelopes_mean(
    scenario: Scenario, workload: Workload
) -> None:
    """Per-second counts (the fluid engine's sampling of long runs) by default: an
    episode's arrivals keep the window's mean, differ from the exact draw's, and
    repeat with the seed; an unknown sampling is refused."""
    totals = {}
    for sampling in ("per-second", "exact"):
        env = make(scenario, workload, level_range=(1.0, 1.0), episode_sampling=sampling)
        unwrapped = env.unwrapped
        assert isinstance(unwrapped, ClusterEnv)
        env.reset(seed=5, options={"start_s": 3600.0})
        assert unwrapped._run is not None
        totals[sampling] = unwrapped._run.inputs.arrivals.copy()
    default = make(scenario, workload, level_range=(1.0, 1.0)).unwrapped
    assert isinstance(default, ClusterEnv)
    assert default.engine.settings.exact_sampling_max_requests == 0
    window = slice_window(workload, 3600.0, 3600.0 + EPISODE_S + scenario.decision_interval_s)
    assert isinstance(window, RateEnvelope)
    expected = float(np.sum(window.rate_rps) * window.bin_s)
    per_second, exact = totals["per-second"], totals["exact"]
    assert per_second.sum() == pytest.approx(expected, rel=0.05)
    assert exact.sum() == pytest.approx(expected, rel=0.05)
    assert not np.array_equal(per_second, exact)
    again = make(scenario, workload, level_range=(1.0, 1.0))
    again.reset(seed=5, options={"start_s": 3600.0})
    assert np.array_equal(again.unwrapped._run.inputs.arrivals, per_second)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="episode_sampling"):
        make(scenario, workload, episode_sampling="poisson")
