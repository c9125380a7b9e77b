"""The history an episode hands its base policy ends where the episode starts.

A rate envelope is cut at whole bins; an episode drawn to start inside a bin used
to get a window from that bin's start and a history to its end, one bin inside the
run, and a forecasting base refused it on a dated trace ("history overlaps the run
by 300s": reactive fallback in most episodes of ServeGen training).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policies.predictive.policy import PredictivePolicy
from policies.predictive.spec import PredictiveSpec
from sim.errors import ScenarioError
from sim.gym import make_cluster_env
from sim.workload import build_workload
from sim.workload.model import RateEnvelope
from tests.sim.gym.conftest import wave_scenario

DAY_S = 86_400.0
START = datetime(2026, 1, 5, tzinfo=UTC)


def write_dated_wave(path: Path, days: int) -> None:
    """Five-minute bins with UTC timestamps (so the workload knows its epoch)."""
    lines = ["timestamp,value"]
    for i in range(days * 288):
        level = 3.0 * (1 + 0.6 * math.sin(2 * math.pi * i / 72))
        lines.append(f"{(START + timedelta(seconds=300 * i)).isoformat()},{level:.3f}")
    path.write_text("\n".join(lines) + "\n")


def predictive_env(tmp_path: Path, **env: float) -> tuple[PredictivePolicy, Any]:
    """Six dated days on the wave scenario's pool, predictive (the trace's 5-minute bins) as
    the base, five days of history an episode; `env` overrides the env's arguments."""
    scenario = wave_scenario(tmp_path)
    write_dated_wave(tmp_path / "wave.csv", days=6)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
    assert isinstance(workload, RateEnvelope) and workload.epoch_s == START.timestamp()
    base = PredictiveSpec(bin_s=300.0, models=("ets-add",)).build()
    assert isinstance(base, PredictivePolicy)
    arguments = {"episode_s": 3600.0, "history_s": 5 * DAY_S, **env}
    made = make_cluster_env(scenario=scenario, workload=workload, base_policy=base, **arguments)
    return base, made


@pytest.mark.parametrize("offset_s", [0.0, 123.0, 299.0])
def test_a_forecasting_base_fits_on_the_history_before_any_episode_start(
    tmp_path: Path, offset_s: float
) -> None:
    base, env = predictive_env(tmp_path)
    env.reset(seed=0, options={"start_s": 5 * DAY_S + offset_s})
    assert base.fallback is None, base.fallback
    assert base.forecast is not None
    env.close()


def test_episodes_start_after_the_history_their_base_needs(tmp_path: Path) -> None:
    _, env = predictive_env(tmp_path, earliest_start_s=4 * DAY_S)
    starts = [env.reset(seed=seed)[1]["start_s"] for seed in range(8)]
    assert min(starts) >= 4 * DAY_S
    assert len(set(starts)) == len(starts)  # still drawn, not pinned
    env.close()
    with pytest.raises(ScenarioError, match="after the 120 h of history"):
        predictive_env(tmp_path, episode_s=24 * 3600.0, earliest_start_s=5 * DAY_S)


def test_the_history_a_base_needs_follows_its_forecaster() -> None:
    from planner.train.config import TrainConfig
    from planner.train.learn import earliest_start_s
    from policies.anomaly import AnomalySpec
    from policies.registry import resolve
    from policies.spillover import SpilloverSpec

    four_days = 4 * DAY_S  # min_history_days 2 + backtest_days 2
    assert PredictiveSpec().history_needed_s() == four_days
    assert PredictiveSpec(min_history_days=3, backtest_days=1).history_needed_s() == four_days
    assert AnomalySpec().history_needed_s() == four_days
    assert SpilloverSpec(base="recent").history_needed_s() == 0.0
    assert resolve("threshold").history_needed_s() == 0.0
    # waited for only when the config hands that much history to each episode
    week = TrainConfig(algo="ppo", timesteps=10, base="predictive", history_h=7 * 24.0)
    none = TrainConfig(algo="ppo", timesteps=10, base="predictive", history_h=0.0)
    assert (earliest_start_s(week), earliest_start_s(none)) == (four_days, 0.0)
