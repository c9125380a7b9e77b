"""The oracle: DP exactness, bounds, the zero-delay limit, and its replay in the engine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sim.contract import PolicyContext
from sim.errors import PolicyError, ScenarioError
from sim.fluid import FluidEngine
from sim.oracle import OracleResult, solve_oracle
from sim.oracle.dp import attained, dp_pass, schedule_cost
from sim.oracle.solve import _per_interval_lower, _problem
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


def _tiny(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    n_int, n_lvl = 6, 4
    table = np.sort(rng.uniform(0.0, 1.0, (n_int, n_lvl)), axis=1).astype(np.float32)
    return {
        "price": 1.0,
        "switch": float(rng.uniform(0.5, 3.0)),
        "nodes": np.arange(1, n_lvl + 1, dtype=np.int64),
        "table": table,
        "counts": rng.uniform(5.0, 20.0, n_int),
        "lower": np.zeros(n_int, dtype=np.int64),
        "upper": np.full(n_int, n_lvl - 1, dtype=np.int64),
        "start": int(rng.integers(0, n_lvl)),
    }


def _brute(t: dict, mu: float) -> tuple[float, np.ndarray]:  # type: ignore[type-arg]
    best, best_path = np.inf, None
    n_int, n_lvl = t["table"].shape
    for tail in itertools.product(range(n_lvl), repeat=n_int - 1):
        path = np.array((t["start"], *tail), dtype=np.int32)
        if np.any(path < t["lower"]) or np.any(path > t["upper"]):
            continue
        cost = schedule_cost(t["price"], t["switch"], t["nodes"], path)
        value = cost - mu * attained(t["table"], t["counts"], path)
        if value < best - 1e-9:
            best, best_path = value, path
    assert best_path is not None
    return best, best_path


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mu", [0.0, 0.05, 0.3, 2.0])
def test_dp_equals_brute_force_over_all_schedules(seed: int, mu: float) -> None:
    t = _tiny(seed)
    choice = np.zeros(t["table"].shape, dtype=np.int16)
    path = np.zeros(t["table"].shape[0], dtype=np.int32)
    cost, got = dp_pass(
        t["price"], t["switch"], t["nodes"], t["table"], t["counts"], mu,
        t["lower"], t["upper"], t["start"], choice, path,
    )  # fmt: skip
    best, _ = _brute(t, mu)
    assert cost - mu * got == pytest.approx(best, abs=1e-6)
    assert path[0] == t["start"]


def test_dp_respects_per_interval_bounds() -> None:
    t = _tiny(11)
    t["lower"] = np.array([0, 2, 2, 0, 0, 3])
    t["lower"][0] = t["start"]
    t["upper"] = np.array([t["start"], 3, 3, 3, 1, 3])
    choice = np.zeros(t["table"].shape, dtype=np.int16)
    path = np.zeros(6, dtype=np.int32)
    cost, _ = dp_pass(
        t["price"], t["switch"], t["nodes"], t["table"], t["counts"], 0.0,
        t["lower"], t["upper"], t["start"], choice, path,
    )  # fmt: skip
    best, _ = _brute(t, 0.0)
    assert cost == pytest.approx(best)
    assert np.all(path >= t["lower"]) and np.all(path <= t["upper"])


@pytest.fixture(scope="module")
def half_hour() -> tuple[Scenario, Workload, OracleResult]:
    scenario = _scenario()
    workload = _workload(scenario)
    return scenario, workload, solve_oracle(scenario, workload)


def test_oracle_is_never_above_a_feasible_constant_schedule(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    scenario, workload, result = half_hour
    p = _problem(scenario, workload, None)
    need = scenario.slo.target_attainment * p.counts.sum()
    feasible_constant = []
    for level in range(len(p.level_nodes)):
        flat = np.clip(level, p.lower, p.upper).astype(np.int32)
        if attained(p.table, p.counts, flat) >= need:
            feasible_constant.append(
                schedule_cost(p.price_per_interval, p.switch_cost, p.level_nodes, flat)
            )
    assert feasible_constant, "the test scenario must admit a constant schedule"
    assert result.cost_usd <= min(feasible_constant) + 1e-9
    assert result.predicted_attainment >= scenario.slo.target_attainment - 1e-9
    per_interval = solve_oracle(scenario, workload, mode="per-interval")
    assert result.cost_usd <= per_interval.cost_usd + 1e-9


def test_zero_delay_and_no_billing_minimum_give_the_per_interval_lower_bound() -> None:
    scenario = _scenario(node_boot_s=0, image_pull_s=0, model_load_s=0, billing_min_s=0)
    workload = _workload(scenario)
    result = solve_oracle(scenario, workload, mode="per-interval")
    p = _problem(scenario, workload, None)
    assert p.switch_cost == 0.0
    lowest = _per_interval_lower(p, scenario.slo.target_attainment)
    bound = p.price_per_interval * float(p.level_nodes[lowest].sum())
    assert result.cost_usd == pytest.approx(bound, rel=1e-12)
    assert np.array_equal(result.nodes, p.level_nodes[lowest])


def test_oracle_meets_the_slo_when_replayed_in_the_fluid_engine(
    half_hour: tuple[Scenario, Workload, OracleResult],
) -> None:
    scenario, workload, result = half_hour
    run = FluidEngine().run(scenario, workload, result.replay_policy(), seed=0)
    assert run.slo_attainment >= scenario.slo.target_attainment
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
        mode="aggregate",
        multiplier_usd=0.0,
        chosen="lagrangian",
        solve_s=0.0,
    )
    assert result.desired_at_ticks().tolist() == [2, 6, 6, 6, 6, 2, 2, 2]


def test_unreachable_target_is_a_scenario_error() -> None:
    scenario = _scenario().model_copy(
        update={"slo": _scenario().slo.model_copy(update={"latency_s": 2.0})}
    )
    with pytest.raises(ScenarioError, match="no capacity schedule reaches"):
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
    assert run.slo_attainment >= scenario.slo.target_attainment
