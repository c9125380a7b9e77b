"""The oracle's model and DP: the backlog dynamics, the DP against brute force, its replay."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sim.contract import PolicyContext
from sim.errors import PolicyError, ScenarioError
from sim.fluid import FluidEngine
from sim.oracle import OracleResult, build_problem, solve_oracle
from sim.oracle.dp import evaluate_path, interval_outcome, schedule_cost
from sim.oracle.problem import Problem, level_grid
from sim.oracle.solve import optimal_path
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload
from sim.workload.model import Workload


def _scenario(**pool: object) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "oracle-test",
            "workload": {
                "format": "azure-llm",
                "path": "package:azure_conv.csv",
                "scale_mean_rps": 12.0,
                "duration_h": 0.5,
            },
            "pool": {
                "kind": "gpu-node-pool",
                "min_replicas": 2,
                "max_replicas": 24,
                "initial_replicas": 8,
                "node_boot_s": 125,
                "image_pull_s": 90,
                "model_load_s": 60,
                **pool,
            },
            "slo": {"latency_s": 25.0, "target_attainment": 0.95},
            "decision_interval_s": 15,
            "base_dir": str(BUNDLED_DIR),
        }
    )


def _workload(scenario: Scenario) -> Workload:
    return build_workload(scenario.workload, scenario.resolve_path, seed=0)


_W = np.array([[0.5, 0.3, 0.2]])
_BUDGETS = np.array([[20.0, 10.0, -1.0]])
_RANGES = np.array([[20.0, 10.0, 0.8]])


def _outcome(count: float, backlog: float, throughput: float, stationary: float = 0.9):
    return interval_outcome(count, 15.0, backlog, throughput, stationary, _W, _BUDGETS, _RANGES, 0)


def test_a_stable_interval_without_backlog_has_the_stationary_attainment() -> None:
    assert _outcome(30.0, 0.0, 4.0, 0.93) == (pytest.approx(30.0 * 0.93), 0.0)


@pytest.mark.parametrize("count", [10.0, 60.0, 200.0])
@pytest.mark.parametrize("backlog", [0.0, 5.0, 80.0, 400.0])
@pytest.mark.parametrize("throughput", [0.5, 3.0, 12.0])
def test_backlog_is_conserved_and_hurts(count: float, backlog: float, throughput: float) -> None:
    att, carried = _outcome(count, backlog, throughput)
    assert 0.0 <= att <= count + 1e-9
    # what was queued or arrived and was not served stays queued
    assert carried == pytest.approx(max(0.0, backlog + count - throughput * 15.0))
    more_att, _ = _outcome(count, backlog + 50.0, throughput)
    assert more_att <= att + 1e-9  # more backlog never helps
    faster_att, faster_carried = _outcome(count, backlog, throughput * 2.0)
    assert faster_carried <= carried
    assert faster_att >= att - 1e-9


def test_a_short_burst_is_partly_served_from_the_queue_not_lost() -> None:
    """The case the per-interval oracle got wrong (it counted such an interval as all
    lost): a 15 s burst at 4x the slots queues 0..135 requests, waits of 0..45 s; a
    stratum affording w seconds is met while the queue is under 3 x w requests."""
    att, carried = _outcome(4 * 45.0, 0.0, 3.0)
    assert carried == pytest.approx(4 * 45.0 - 45.0)
    assert att == pytest.approx(180.0 * (0.5 * 60.0 / 135.0 + 0.3 * 30.0 / 135.0))
    drained, after = _outcome(10.0, carried, 12.0)
    assert after == 0.0 and drained > 0.0


def test_level_grid_is_every_count_or_geometric_above() -> None:
    assert level_grid(2, 9, 4).tolist() == list(range(2, 10))
    big = level_grid(1, 4000, 16, limit=128)
    assert len(big) <= 128 and big[0] == 1 and big[-1] == 4000 and 16 in big
    assert np.all(np.diff(big) >= 1)
    assert big[:20].tolist() == list(range(1, 21))  # every count at the low end
    steps = big[1:] / big[:-1]
    assert steps[big[:-1] >= 25].max() < 1.08  # above, a step costs a few per cent at most


def _small_problem(seed: int) -> Problem:
    scenario = _scenario(max_replicas=6, min_replicas=1, initial_replicas=2)
    workload = _workload(scenario)
    p = build_problem(scenario, workload, None)
    rng = np.random.default_rng(seed)
    n_int = 7
    counts = rng.choice([0.0, 10.0, 30.0, 90.0, 200.0], n_int)
    return dataclasses.replace(
        p,
        counts=counts,
        lengths=np.full(n_int, 15.0),
        table=p.table[:n_int],
        block_of=p.block_of[:n_int],
        lower=np.zeros(n_int, dtype=np.int64),
        upper=np.full(n_int, len(p.level_nodes) - 1, dtype=np.int64),
        grid=np.concatenate([[0.0], np.geomspace(1.0, 4 * 200.0, 40)]),
        attained_by_multiplier={},
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mu", [0.0, 0.002, 0.02])
def test_dp_path_is_within_a_hair_of_brute_force(seed: int, mu: float) -> None:
    """Every schedule of a tiny problem, evaluated on the exact (unrounded) model: the
    DP's path, also evaluated exactly, is optimal up to its interpolation error."""
    p = _small_problem(seed)
    p = dataclasses.replace(p, lower=p.lower.copy(), upper=p.upper.copy())
    p.lower[0] = p.upper[0] = p.start
    n_int, n_lvl = len(p.counts), len(p.level_nodes)

    def objective(path: np.ndarray) -> float:
        cost = schedule_cost(p.price_per_interval, p.switch_cost, p.level_nodes, path)
        return cost - mu * evaluate_path(path, p.model)

    best = min(
        objective(np.array((p.start, *tail), dtype=np.int32))
        for tail in itertools.product(range(n_lvl), repeat=n_int - 1)
    )
    path = optimal_path(p, mu)
    assert path[0] == p.start
    scale = p.price_per_interval * float(p.level_nodes.max()) * n_int
    assert objective(path) <= best + 0.02 * scale


@pytest.fixture(scope="module")
def half_hour() -> tuple[Scenario, Workload, OracleResult]:
    scenario = _scenario()
    workload = _workload(scenario)
    return scenario, workload, solve_oracle(scenario, workload)


def test_model_optimum_is_never_above_a_constant_that_reaches_the_target(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    scenario, workload, result = half_hour
    p = build_problem(scenario, workload, None)
    need = scenario.slo.target_attainment * p.counts.sum()
    reaching = []
    for level in range(len(p.level_nodes)):
        flat = np.clip(level, p.lower, p.upper).astype(np.int32)
        if evaluate_path(flat, p.model) >= need:
            reaching.append(schedule_cost(p.price_per_interval, p.switch_cost, p.level_nodes, flat))
    assert reaching, "the test scenario must admit a constant schedule"
    assert result.reachable
    assert result.cost_usd <= min(reaching) + 1e-9
    assert result.predicted_attainment >= scenario.slo.target_attainment - 1e-9


def test_a_higher_target_never_costs_less(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    scenario, workload, _ = half_hour
    p = build_problem(scenario, workload, None)
    costs = [
        solve_oracle(scenario, workload, target=t, problem=p).cost_usd for t in (0.9, 0.95, 0.98)
    ]
    assert costs == sorted(costs)


def test_oracle_meets_the_slo_when_replayed_in_the_fluid_engine(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    scenario, workload, result = half_hour
    run = FluidEngine().run(scenario, workload, result.replay_policy(), seed=0)
    # the model's plan, unverified, lands near the target (the planner verifies it)
    assert run.slo_attainment >= scenario.slo.target_attainment - 0.01
    # the replay pays what the DP planned, up to the end-of-run billing minimum
    assert run.cost_usd == pytest.approx(result.cost_usd, rel=0.02)


def test_replay_requests_capacity_one_lead_ahead() -> None:
    result = OracleResult(
        interval_s=15.0,
        replicas=np.array([2, 2, 2, 6, 6, 2, 2, 2]),
        nodes=np.array([2, 2, 2, 6, 6, 2, 2, 2]),
        lead_s=30.0,
        cost_usd=0.0,
        gpu_hours=0.0,
        predicted_attainment=1.0,
        target=0.95,
        reachable=True,
        multiplier_usd=0.0,
        chosen="lagrangian",
        solve_s=0.0,
    )
    assert result.desired_at_ticks().tolist() == [2, 6, 6, 6, 6, 2, 2, 2]


def test_an_unreachable_target_is_an_answer_not_an_error() -> None:
    scenario = _scenario().model_copy(
        update={"slo": _scenario().slo.model_copy(update={"latency_s": 2.0})}
    )
    result = solve_oracle(scenario, _workload(scenario))
    assert not result.reachable and result.chosen == "max"
    assert result.predicted_attainment < scenario.slo.target_attainment


def test_a_serverless_main_pool_has_no_capacity_schedule() -> None:
    scenario = Scenario.model_validate(
        {
            **_scenario().model_dump(exclude={"pool", "base_dir"}),
            "pool": {"kind": "serverless"},
            "base_dir": str(BUNDLED_DIR),
        }
    )
    with pytest.raises(ScenarioError, match="serverless endpoint scales itself"):
        solve_oracle(scenario, _workload(scenario))


def test_oracle_is_not_a_policy_name() -> None:
    from policies.registry import resolve

    with pytest.raises(PolicyError, match="offline optimum"):
        resolve("oracle")


def test_replay_policy_needs_nothing_but_its_schedule(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    """The replay runs like any policy: the context it gets carries no future."""
    scenario, workload, result = half_hour
    policy = result.replay_policy()
    assert not hasattr(PolicyContext, "future") and not hasattr(PolicyContext, "scenario")
    run = FluidEngine().run(scenario, workload, policy, seed=0)
    assert run.policy == "oracle"
    assert run.slo_attainment >= scenario.slo.target_attainment - 0.01
