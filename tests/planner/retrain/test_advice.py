"""What would help when no policy meets the SLO: every remedy is an engine run.

The scenario: two hours on an EC2 ASG whose instances take 300 s to boot and 120 s
to load the model, hit by a flash crowd (6x the base rate within two minutes). The
presets miss a 0.95 SLO there because capacity arrives seven minutes late; the tests
check that each remedy's figures are the ones a direct run of the changed scenario
measures, and that faster starts really raise the attainment.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from planner.executor import LocalExecutor
from planner.pool_sizing import replicas_for
from planner.retrain.advice import MAX_SPECS, Remedy, patched, sufficient, what_would_help
from planner.retrain.pool_changes import escalations, needed_replicas, pool_changes
from planner.runs import OracleTask, RunTask, execute_run, run_task, scenario_inputs
from policies.registry import resolve
from sim.capacity.pools import Ec2AutoScalingGroup
from sim.engine import token_profile
from sim.scenario import Scenario, scenario_from_dict

SEED = 1

FLASH_CROWD: dict[str, Any] = {
    "name": "flash-crowd-slow-boot",
    "workload": {
        "format": "synthetic",
        "synthetic": {
            "kind": "flash-crowd", "duration_h": 2, "bin_s": 60, "base_rps": 2.0,
            "params": {"at_h": 0.75, "peak_factor": 6.0, "rise_s": 120, "decay_s": 1800},
        },
    },
    "pool": {
        "kind": "ec2-asg", "instance_type": "g5.xlarge", "min_replicas": 1,
        "max_replicas": 32, "initial_replicas": 2, "instance_boot_s": 300, "model_load_s": 120,
    },
    "slo": {"latency_s": 25.0, "target_attainment": 0.95},
    "decision_interval_s": 15,
}  # fmt: skip


def scenario(
    pool: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    *,
    whole_pool: dict[str, Any] | None = None,
) -> Scenario:
    """The flash-crowd scenario, with pool fields set (or the whole pool, and the workload,
    replaced)."""
    data = copy.deepcopy(FLASH_CROWD)
    data["pool"] = whole_pool or {**data["pool"], **(pool or {})}
    if workload is not None:
        data["workload"] = workload
    return scenario_from_dict(data, "test scenario", Path("."))


def direct(pool: dict[str, Any], policy: str) -> tuple[float, float]:
    """(attainment, cost) of one run of `policy` on the scenario with `pool` set by hand."""
    result = execute_run(RunTask(scenario(pool), resolve(policy), SEED))
    return result.slo_attainment, result.cost_usd


@pytest.fixture(scope="module")
def hpa_remedies() -> list[Remedy]:
    return what_would_help(scenario(), [resolve("hpa")], seed=SEED)


def only(remedies: list[Remedy], field: str) -> Remedy:
    (found,) = [remedy for remedy in remedies if field in remedy.scenario_patch]
    return found


def test_the_default_pool_misses_the_slo() -> None:
    attainment, _ = direct({}, "hpa")
    assert attainment < 0.95 - 0.1


def test_a_warm_pool_raises_the_attainment_the_engine_measures(
    hpa_remedies: list[Remedy],
) -> None:
    warm = only(hpa_remedies, "warm_pool_size")
    size = warm.scenario_patch["warm_pool_size"]
    assert warm.change.startswith(f"warm pool of {size} instances")
    base_attainment, base_cost = direct({}, "hpa")
    attainment, cost = direct({"warm_pool_size": size}, "hpa")
    assert warm.policy == "hpa"
    assert warm.slo_attainment == attainment
    assert warm.cost_usd == cost
    assert warm.baseline_attainment == base_attainment
    assert warm.extra_cost_usd == pytest.approx(cost - base_cost, abs=1e-12)
    assert warm.slo_attainment > base_attainment + 0.1
    assert warm.meets_slo == (attainment >= 0.95)


def test_a_halved_delay_is_the_halved_scenario_run(hpa_remedies: list[Remedy]) -> None:
    halved = only(hpa_remedies, "instance_boot_s")
    assert halved.scenario_patch == {"instance_boot_s": 150.0, "model_load_s": 60.0}
    assert halved.change == "provisioning delay halved (instance boot 150 s, model load 60 s)"
    base_attainment, base_cost = direct({}, "hpa")
    attainment, cost = direct({"instance_boot_s": 150, "model_load_s": 60}, "hpa")
    assert (halved.slo_attainment, halved.cost_usd) == (attainment, cost)
    assert halved.extra_cost_usd == pytest.approx(cost - base_cost, abs=1e-12)
    assert attainment > base_attainment + 0.05


def test_a_floor_at_the_needed_quantile_meets_the_slo_here(hpa_remedies: list[Remedy]) -> None:
    floor = only(hpa_remedies, "min_replicas")
    replicas = floor.scenario_patch["min_replicas"]
    # initial_replicas (2) would lie below the new floor: the patch raises it too
    assert floor.scenario_patch == {"min_replicas": replicas, "initial_replicas": replicas}
    attainment, cost = direct(floor.scenario_patch, "hpa")
    assert (floor.slo_attainment, floor.cost_usd) == (attainment, cost)
    assert floor.meets_slo and attainment >= 0.95
    assert sufficient(hpa_remedies) == floor  # the only one that meets it


def step_workload(off_rps: float, on_rps: float) -> dict[str, Any]:
    """Half an hour at `on_rps`, half an hour at `off_rps`, for four hours."""
    return {
        "format": "synthetic",
        "synthetic": {
            "kind": "on-off", "duration_h": 4, "bin_s": 60, "base_rps": 1.0,
            "params": {"on_s": 1800, "off_s": 1800, "on_factor": on_rps, "off_factor": off_rps},
        },
    }  # fmt: skip


def test_the_warm_pool_covers_the_largest_rise_within_one_delay() -> None:
    """A step from 1 to 9 req/s: the rise is the step's need, on 4-GPU nodes in 4s."""
    pool = {"instance_type": "g5.12xlarge", "max_replicas": 64}
    case = scenario(pool, step_workload(1.0, 9.0))
    workload, _ = scenario_inputs(case)
    service = case.pool.service
    service_s = service.mean_service_s(token_profile(workload), service.max_batch)
    low, _ = replicas_for(case, 1.0, service_s)
    high, _ = replicas_for(case, 9.0, service_s)
    # the rates are rounded up by at most 1 % before the queueing solve: not across a step here
    assert low == replicas_for(case, 1.01, service_s)[0]
    assert high == replicas_for(case, 9.09, service_s)[0]
    changes = pool_changes(case, workload)
    warm = next(change for change in changes if "warm_pool_size" in change.patch)
    assert isinstance(case.pool, Ec2AutoScalingGroup) and case.pool.replicas_per_node == 4
    assert warm.patch == {"warm_pool_size": math.ceil((high - low) / 4)}
    assert f"is {high - low}," in warm.basis
    # on half the minutes the need is the high one: its 95 % quantile is the floor
    floor = next(change for change in changes if "min_replicas" in change.patch)
    assert floor.patch["min_replicas"] == high


def spikes(on_s: float, factor: float) -> Scenario:
    """Four hours at 1 req/s with a spike of `factor` x for `on_s` every half hour: too
    short for any boot to catch, too rare for the 95 % quantile floor to cover."""
    workload = step_workload(1.0, factor)
    workload["synthetic"]["params"].update({"on_s": on_s, "off_s": 1800 - on_s})
    return scenario(None, workload)


@pytest.fixture(scope="module")
def spike_remedies() -> list[Remedy]:
    return what_would_help(spikes(90, 12.0), [resolve("hpa")], seed=SEED)


def test_when_no_single_change_is_enough_the_advice_escalates_until_one_is(
    spike_remedies: list[Remedy],
) -> None:
    *missed, enough, lowest = spike_remedies
    assert len(missed) == 4  # warm pool, halved delay, 95 % floor, all three at once
    assert not any(remedy.meets_slo for remedy in missed)
    assert enough.meets_slo and lowest.meets_slo
    single_floor = only(missed[:3], "min_replicas").scenario_patch["min_replicas"]
    together = missed[3].scenario_patch
    assert together == {**missed[0].scenario_patch, **missed[1].scenario_patch,
                        **missed[2].scenario_patch}  # fmt: skip
    assert missed[3].change == " + ".join(remedy.change for remedy in missed[:3])
    # the next stage: the speed-ups with the floor at the 97.5 % quantile of the need
    case = spikes(90, 12.0)
    needed = needed_replicas(case, scenario_inputs(case)[0])
    higher = math.ceil(float(np.quantile(needed, 0.975)))
    assert higher > single_floor
    assert enough.scenario_patch["min_replicas"] == higher
    assert "the 97.5% quantile" in enough.basis
    attainment, cost = direct_on(case, enough.scenario_patch, "hpa")
    assert (enough.slo_attainment, enough.cost_usd) == (attainment, cost)
    # then the floor between the one that missed and the one that met, bisected: the
    # smallest that meets, one above the all-at-once stage's floor that missed
    floor = lowest.scenario_patch["min_replicas"]
    assert together["min_replicas"] < floor < higher
    assert lowest.scenario_patch == {**together, "min_replicas": floor, "initial_replicas": floor}
    assert f"floor of {floor} replicas" in lowest.change and "bisected" in lowest.basis
    assert lowest.cost_usd < enough.cost_usd and sufficient(spike_remedies) == lowest
    assert direct_on(case, lowest.scenario_patch, "hpa") == (
        lowest.slo_attainment, lowest.cost_usd,
    )  # fmt: skip
    below = {**lowest.scenario_patch, "min_replicas": floor - 1, "initial_replicas": floor - 1}
    assert direct_on(case, below, "hpa")[0] < 0.95


def test_escalations_end_at_the_busiest_minute_and_skip_repeats() -> None:
    """A 60 s spike: the 95 % floor is the pool's minimum (no headroom change); the
    escalations are the two speed-ups together, then with the 97.5 % floor, then the
    busiest minute's need (here the same floor: that stage is left out)."""
    case = spikes(60, 9.0)
    workload = scenario_inputs(case)[0]
    singles = pool_changes(case, workload)
    assert [next(iter(change.patch)) for change in singles] == [
        "warm_pool_size", "instance_boot_s",
    ]  # fmt: skip
    stages = escalations(case, workload, singles)
    busiest = int(np.nanmax(needed_replicas(case, workload)))
    assert stages[0].patch == {**singles[0].patch, **singles[1].patch}
    assert stages[-1].patch["min_replicas"] == busiest
    patches = [stage.patch for stage in stages]
    assert all(patches.count(patch) == 1 for patch in patches)
    for stage in stages:
        assert patched(case, stage.patch).pool.kind == "ec2-asg"


def direct_on(case: Scenario, pool: dict[str, Any], policy: str) -> tuple[float, float]:
    result = execute_run(RunTask(patched(case, pool), resolve(policy), SEED))
    return result.slo_attainment, result.cost_usd


def test_an_infeasible_pool_gets_the_maximum_the_oracle_needs() -> None:
    small = scenario({"max_replicas": 4})
    oracle = run_task(OracleTask(small, seed=SEED)).oracle
    assert not oracle.feasible and oracle.needed_max_replicas is not None
    needed = oracle.needed_max_replicas
    remedies = what_would_help(small, [resolve("hpa")], seed=SEED, oracle=oracle)
    headroom = only(remedies, "max_replicas")
    assert headroom.scenario_patch["max_replicas"] == needed
    assert f"max replicas 4 -> {needed}" in headroom.change
    attainment, cost = direct(headroom.scenario_patch, "hpa")
    assert (headroom.slo_attainment, headroom.cost_usd) == (attainment, cost)
    assert headroom.slo_attainment > headroom.baseline_attainment


def test_runs_are_bounded_to_the_best_three_specs() -> None:
    names = ["hpa", "aws-target-tracking", "step", "threshold", "fixed"]
    remedies = what_would_help(scenario(), [resolve(name) for name in names], seed=SEED)
    assert MAX_SPECS == 3
    assert len(remedies) == 3 * 3
    assert [remedy.policy for remedy in remedies[:3]] == names[:3]
    assert {remedy.policy for remedy in remedies} == set(names[:3])


def test_an_executor_gives_the_same_remedies(hpa_remedies: list[Remedy]) -> None:
    with LocalExecutor(max_workers=1) as executor:
        mapped = what_would_help(scenario(), [resolve("hpa")], seed=SEED, executor=executor)
    assert mapped == hpa_remedies


def test_a_gpu_node_pool_gets_a_pre_pulled_image_and_halved_steps() -> None:
    case = scenario(whole_pool={"kind": "gpu-node-pool", "max_replicas": 32, "model_load_s": 120})
    changes = pool_changes(case, scenario_inputs(case)[0])
    assert [next(iter(change.patch)) for change in changes] == [
        "image_pull_s", "node_boot_s", "min_replicas",
    ]  # fmt: skip
    assert changes[0].patch == {"image_pull_s": 0.0}
    assert changes[1].patch == {
        "node_boot_s": {"kind": "lognormal", "mean_s": 60.0, "cv": 0.2},
        "image_pull_s": {"kind": "lognormal", "mean_s": 45.0, "cv": 0.3},
        "model_load_s": 60.0,
    }
    for change in changes:  # every patch is a pool a user could write
        assert patched(case, change.patch).pool.kind == "gpu-node-pool"


def test_a_serverless_endpoint_gets_a_shorter_cold_start_and_a_floor() -> None:
    case = scenario(whole_pool={"kind": "serverless"})
    changes = pool_changes(case, scenario_inputs(case)[0])
    assert [change.patch.keys() for change in changes] == [{"cold_start_s"}, {"min_replicas"}]
    # Halved: the default endpoint's cold start loads its CPU model's weights (35 s).
    assert changes[0].patch["cold_start_s"]["mean_s"] == case.pool.cold_start_s.mean_s / 2


def test_a_change_that_changes_nothing_is_left_out() -> None:
    case = scenario({"warm_pool_size": 40, "min_replicas": 30, "initial_replicas": 30,
                     "instance_boot_s": 0, "model_load_s": 0})  # fmt: skip
    assert pool_changes(case, scenario_inputs(case)[0]) == []
    assert what_would_help(case, [resolve("hpa")], seed=SEED) == []


def test_a_bad_patch_is_refused_by_the_pool_schema() -> None:
    with pytest.raises(ValidationError, match="min_replicas"):
        patched(scenario(), {"min_replicas": 40})


def test_no_spec_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one policy spec"):
        what_would_help(scenario(), [], seed=SEED)


def remedy(policy: str, cost_usd: float, meets: bool) -> Remedy:
    return Remedy(
        change="c", scenario_patch={}, policy=policy, slo_attainment=0.96 if meets else 0.9,
        cost_usd=cost_usd, meets_slo=meets, extra_cost_usd=0.0, baseline_attainment=0.8,
        basis="b",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("remedies", "expected"),
    [
        ([], None),
        ([remedy("a", 1.0, False)], None),
        ([remedy("a", 5.0, True), remedy("b", 1.0, False), remedy("c", 3.0, True)], "c"),
        ([remedy("a", 3.0, True), remedy("b", 3.0, True)], "a"),
    ],
    ids=["none", "none-meets", "cheapest-meeting", "first-of-equals"],
)
def test_sufficient_is_the_cheapest_that_meets(
    remedies: list[Remedy], expected: str | None
) -> None:
    found = sufficient(remedies)
    assert (found.policy if found else None) == expected
