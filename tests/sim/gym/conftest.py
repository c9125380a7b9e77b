"""A small scenario for the env: twelve hours of a wave with spikes on a 16-replica pool."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sim.scenario import Scenario, scenario_from_dict
from sim.workload.model import Workload


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def write_wave(path: Path, hours: float = 12.0, seed: int = 1) -> Path:
    """A 5-minute rate-csv: a six-hour wave around 3 req/s with random 3x spikes."""
    rng = np.random.default_rng(seed)
    lines = ["timestamp,value"]
    for i in range(int(hours * 12)):
        t = i * 300
        level = 3.0 * (1 + 0.6 * math.sin(2 * math.pi * t / (6 * 3600)))
        if rng.random() < 0.05:
            level *= 3
        lines.append(f"{t},{level:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def wave_scenario(directory: Path, max_replicas: int = 16) -> Scenario:
    trace = write_wave(directory / "wave.csv")
    data = {
        "name": "wave",
        "description": "a wave with spikes on a small GPU pool",
        "workload": {"format": "rate-csv", "path": str(trace), "bin_s": 300},
        "pool": {
            "kind": "gpu-node-pool",
            "instance_type": "g5.xlarge",
            "min_replicas": 1,
            "max_replicas": max_replicas,
            "initial_replicas": 4,
        },
        "slo": {"latency_s": 40.0, "target_attainment": 0.9},
        "decision_interval_s": 30,
        "policies": ["threshold"],
        "seed": 3,
    }
    return scenario_from_dict(data, "test scenario", directory)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return wave_scenario(tmp_path_factory.mktemp("wave"))


@pytest.fixture(scope="module")
def roomy_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The same wave on a pool with room for a runaway (up to 2,000 replicas)."""
    return wave_scenario(tmp_path_factory.mktemp("roomy"), max_replicas=2000)


@pytest.fixture(scope="module")
def workload(scenario: Scenario) -> Workload:
    from sim.workload import build_workload

    return build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
