"""Shared by the training tests: a small trace and scenario to train on."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def write_scenario(directory: Path, hours: int = 8) -> Path:
    rng = np.random.default_rng(4)
    rows = ["timestamp,value"]
    for i in range(hours * 12):  # 5-minute bins
        level = 3.0 * (1 + 0.6 * math.sin(2 * math.pi * i / 36)) * (3 if rng.random() < 0.05 else 1)
        rows.append(f"{i * 300},{level:.3f}")
    (directory / "wave.csv").write_text("\n".join(rows) + "\n")
    path = directory / "wave.yaml"
    path.write_text(
        """
name: wave
description: a wave with spikes on a small pool
workload: {format: rate-csv, path: wave.csv, bin_s: 300}
pool: {kind: gpu-node-pool, instance_type: g5.xlarge, min_replicas: 1, max_replicas: 16,
       initial_replicas: 4}
slo: {latency_s: 40.0, target_attainment: 0.9}
decision_interval_s: 30
policies: [threshold]
seed: 3
"""
    )
    return path
