"""Policies end to end in the SimPy engine on the bundled default scenario (30 minutes)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.registry import resolve
from sim.des import DesEngine
from sim.result import RunResult
from sim.scenario import Scenario, load_default_scenario
from sim.workload import build_workload
from sim.workload.model import Workload


@pytest.fixture(scope="module")
def half_hour() -> tuple[Scenario, Workload]:
    scenario = load_default_scenario()
    window = scenario.workload.model_copy(update={"duration_h": 0.5})
    scenario = scenario.model_copy(update={"workload": window})
    return scenario, build_workload(scenario.workload, scenario.resolve_path)


def run(setup: tuple[Scenario, Workload], name: str, seed: int = 1) -> RunResult:
    scenario, workload = setup
    return DesEngine().run(scenario, workload, resolve(name).build(), seed=seed)


@pytest.mark.parametrize("name", ["hpa", "aws-target-tracking", "threshold", "step", "scheduled"])
def test_policy_runs_within_bounds(half_hour: tuple[Scenario, Workload], name: str) -> None:
    result = run(half_hour, name)
    pool = half_hour[0].pool
    assert result.arrivals > 0 and result.served > 0
    assert result.series.desired.min() >= pool.min_replicas
    assert result.series.desired.max() <= pool.max_replicas
    assert result.scaling_actions >= 1
    assert 0.0 < result.slo_attainment <= 1.0


def test_hpa_beats_a_peak_provisioned_fleet_on_cost(half_hour: tuple[Scenario, Workload]) -> None:
    hpa = run(half_hour, "hpa")
    fixed = run(half_hour, "fixed")
    assert hpa.cost_usd < fixed.cost_usd
    assert hpa.slo_attainment >= half_hour[0].slo.target_attainment


def test_same_seed_same_result(half_hour: tuple[Scenario, Workload]) -> None:
    first, second = run(half_hour, "hpa", seed=7), run(half_hour, "hpa", seed=7)
    assert first.cost_usd == second.cost_usd
    assert first.slo_attainment == second.slo_attainment
    np.testing.assert_array_equal(first.series.desired, second.series.desired)
