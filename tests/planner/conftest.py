"""Small scenarios and traces for the planner tests (minutes of traffic, a few replicas)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: A two-hour rate trace (one bin per minute) with a ramp, in rate-csv format.
RATE_BINS = 120


def write_rate_csv(path: Path, bins: int = RATE_BINS, base_rps: float = 2.0) -> Path:
    lines = ["timestamp,value"]
    for minute in range(bins):
        # A ramp up and down, so scaling policies have something to do.
        level = base_rps * (1.0 + 2.0 * min(minute, bins - minute) / bins)
        lines.append(f"{minute * 60},{level:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


SCENARIO = """
name: tiny
description: two hours of a ramp on a small GPU pool
workload: {{format: rate-csv, path: {trace}, bin_s: 60}}
pool:
  kind: gpu-node-pool
  instance_type: g5.xlarge
  min_replicas: 1
  max_replicas: 8
  initial_replicas: 4
slo: {{latency_s: 40.0, target_attainment: 0.9}}
decision_interval_s: 30
policies: [{policies}]
seed: 3
"""


def write_scenario(
    directory: Path, policies: str = "fixed", trace: str = "rates.csv", name: str = "tiny.yaml"
) -> Path:
    write_rate_csv(directory / "rates.csv")
    path = directory / name
    path.write_text(SCENARIO.format(trace=trace, policies=policies))
    return path


@pytest.fixture
def tiny_scenario(tmp_path: Path) -> Path:
    """A scenario file with a two-hour rate-csv trace next to it."""
    return write_scenario(tmp_path)
