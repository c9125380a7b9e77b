"""`planner.oracle_bounds.requests_bill_floor` is a floor: no replay of the requests bills less,
in either engine, on scenarios drawn at random (node pools and ASGs, several replicas to
a node, spot nodes reclaimed and replaced, node failures)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.oracle_bounds import requests_bill_floor
from sim.engines import make_engine
from sim.replay import SchedulePolicy
from sim.scenario import Scenario
from sim.workload.build import build_workload
from tests.planner.test_oracle_properties import random_scenario


def varied_pool(scenario: Scenario, rng: np.random.Generator) -> Scenario:
    """The scenario with a pool that packs one to four replicas on a node, and buys a
    share of its nodes as spot (cheaper, reclaimed at a high hazard) or has them fail."""
    pool = scenario.pool.model_copy(
        update={
            "replicas_per_gpu": int(rng.integers(1, 5)),
            "spot_share": float(rng.choice([0.0, 0.5, 1.0])),
            "spot_interruption_per_h": float(rng.choice([0.0, 4.0])),
            "node_failure_per_h": float(rng.choice([0.0, 2.0])),
        }
    )
    return scenario.model_copy(update={"pool": pool})


def random_requests(scenario: Scenario, rng: np.random.Generator, ticks: int) -> np.ndarray:
    """Piecewise-constant requests within the pool's bounds, with steps up and down."""
    pool = scenario.pool
    cuts = np.sort(rng.choice(np.arange(1, ticks), size=5, replace=False))
    requests = np.empty(ticks, dtype=np.int64)
    for part in np.split(np.arange(ticks), cuts):
        requests[part] = int(rng.integers(pool.min_replicas, pool.max_replicas + 1))
    return requests


@pytest.mark.parametrize(
    ("seed", "engine"), [(seed, "fluid") for seed in range(8)] + [(100, "des"), (101, "des")]
)
def test_no_replay_bills_less_than_its_requests_floor(seed: int, engine: str) -> None:
    rng = np.random.default_rng(seed)
    scenario = varied_pool(random_scenario(seed), rng)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=seed)
    tick_s = scenario.decision_interval_s
    ticks = int(np.ceil(workload.duration_s / tick_s))
    runner = make_engine(engine)
    for _ in range(3):
        requests = random_requests(scenario, rng, ticks)
        run = runner.run(scenario, workload, SchedulePolicy(requests), seed=seed)
        floor = requests_bill_floor(scenario, requests, tick_s, workload.duration_s)
        assert floor > 0.0
        assert run.cost_usd >= floor, (requests.tolist(), run.cost_usd, floor)
