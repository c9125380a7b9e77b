"""Shared by the RL benchmarks: env throughput, the training run, and the printout.

Not a benchmark itself. `env_steps_per_s` measures `scaleplan/Cluster-v0` alone
and in gymnasium's `SyncVectorEnv`; `train_and_report` runs the `planner train`
pipeline (in this process) and prints the held-back table and one JSON line.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
from machine_info import machine
from rich.console import Console

from planner.executor import LocalExecutor
from planner.runs import scenario_inputs
from planner.train.config import HOUR_S, TrainConfig
from planner.train.evaluate import Evaluation
from planner.train.pipeline import TrainOutcome, Windows, train_policy
from planner.train.report import train_table
from planner.train.windows import cut
from policies.registry import resolve
from sim.gym import make_cluster_env
from sim.gym.actions import DEFAULT_ACTION_MODE, ActionMap, ActionMode
from sim.gym.env import EpisodeSampling
from sim.scenario import Scenario

PACKAGES = ("scaleplan", "numpy", "numba", "torch", "gymnasium", "stable-baselines3")


def env_steps_per_s(
    scenario: Scenario,
    window_h: tuple[float, float],
    base: str,
    steps: int,
    n_envs: int = 4,
    action_mode: ActionMode = DEFAULT_ACTION_MODE,
    episode_h: float = 1.0,
    episode_sampling: EpisodeSampling = "per-second",
) -> dict[str, float]:
    """Env steps per second with random actions: one env, and `n_envs` in SyncVectorEnv.

    Episode starts (cutting, rescaling and sampling a window) are included, as in
    training; episodes are one hour by default so several starts fall inside the
    measurement.
    """
    train = cut(scenario, {"train": window_h})["train"]
    workload, _ = scenario_inputs(train)

    def make() -> gym.Env[Any, Any]:
        return make_cluster_env(
            scenario=train,
            workload=workload,
            base_policy=resolve(base).build(),
            episode_s=episode_h * HOUR_S,
            action_mode=action_mode,
            episode_sampling=episode_sampling,
        )

    rng = np.random.default_rng(0)
    single = make()
    n_actions = ActionMap.default(action_mode).n
    single.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = single.step(int(rng.integers(n_actions)))
        if terminated or truncated:
            single.reset()
    single_rate = steps / (time.perf_counter() - started)
    vector = gym.vector.SyncVectorEnv([make for _ in range(n_envs)])
    vector.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps // n_envs):
        vector.step(rng.integers(n_actions, size=n_envs))  # autoreset inside
    vector_rate = (steps // n_envs) * n_envs / (time.perf_counter() - started)
    return {"single": single_rate, f"sync_vector_{n_envs}": vector_rate}


def train_and_report(
    scenario: Scenario,
    config: TrainConfig,
    *,
    train_h: tuple[float, float],
    eval_h: tuple[float, float],
    seeds: list[int],
    eval_seeds: list[int],
    tune_trials: int,
    console: Console,
) -> tuple[TrainOutcome, float]:
    """Run the pipeline locally (one process per training seed) and print the table."""
    started = time.perf_counter()
    with LocalExecutor(max_workers=min(len(seeds), 2)) as executor:
        outcome = train_policy(
            scenario,
            config,
            windows=Windows.split(train_h, eval_h),
            seeds=seeds,
            eval_seeds=eval_seeds,
            tune_trials=tune_trials,
            executor=executor,
        )
    wall_s = time.perf_counter() - started
    console.print(train_table(outcome))
    return outcome, wall_s


def summary(evaluation: Evaluation) -> dict[str, Any]:
    return {
        score.name: {
            "cost_usd_mean": round(score.cost_mean, 2),
            "cost_usd_std": round(score.cost_std, 2),
            "cost_vs_oracle": score.cost_vs_oracle,
            "attainment_mean": round(score.attainment_mean, 4),
            "attainment_std": round(score.attainment_std, 4),
            "seeds_meeting_slo": score.seeds_meeting_slo,
        }
        for score in evaluation.scores
    }


def print_json(figures: dict[str, Any]) -> None:
    figures.update(
        {
            "load_avg_1m": os.getloadavg()[0],
            **machine(PACKAGES),
        }
    )
    print(json.dumps(figures))
