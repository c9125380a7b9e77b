"""Sweeps on a real local Ray (two CPUs), checked against the same cases run in-process.

One module, one small grid: starting Ray costs about ten seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from typer.testing import CliRunner

from planner.cli import app
from planner.executor import RayExecutor
from planner.sweep import load_sweep, run_case

runner = CliRunner()

SWEEP = """
scenarios: [tiny.yaml]
policies: [threshold, aws-target-tracking]
grid:
  threshold: {upper: [0.6, 0.8]}
seeds: [0]
duration_h: 0.5
"""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_executor_maps_in_order(local_ray: None) -> None:
    executor = RayExecutor()
    assert executor.map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
    assert executor.map(abs, [-4]) == [4]
    executor.close()
    assert ray.is_initialized()  # it did not start this Ray, so it leaves it running


def test_ray_sweep_matches_in_process_runs(local_ray: None, tiny_scenario: Path) -> None:
    directory = tiny_scenario.parent
    spec = directory / "sweep.yaml"
    spec.write_text(SWEEP)
    out = directory / "rows.json"
    result = runner.invoke(app, ["sweep", str(spec), "--backend", "ray", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    expected = [run_case(case).to_json() for case in load_sweep(spec).cases]
    assert [row["policy"] for row in rows] == [
        "threshold[upper=0.6]",
        "threshold[upper=0.8]",
        "aws-target-tracking",
    ]
    for row, reference in zip(rows, expected, strict=True):
        assert row["cost_vs_oracle"] is not None
        row.pop("cost_vs_oracle")
        reference.pop("cost_vs_oracle")
        assert row == reference
