"""A run resumed from a checkpoint of another run is the run from the start, bit for bit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sim.capacity.pools import Ec2AutoScalingGroup, ServerlessEndpoint
from sim.control import ControlLoop, drive
from sim.engine import make_context
from sim.fluid import FluidEngine
from sim.fluid.checkpoint import (
    CHECKPOINTS_PER_RUN,
    Checkpoint,
    ScheduleReplays,
    drive_checkpointed,
    resume,
)
from sim.fluid.engine import _InstanceRun
from sim.replay import SchedulePolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

from .conftest import load, make_scenario, poisson_envelope

LOGNORMAL = {"kind": "lognormal", "cv": 0.3}
SEED = 7


def _started(
    engine: FluidEngine, scenario: Scenario, workload: Workload, requests: np.ndarray
) -> tuple[_InstanceRun, ControlLoop]:
    run = engine.start(scenario, workload, SEED)
    assert isinstance(run, _InstanceRun)
    context = make_context(scenario, workload, np.random.default_rng(0))
    loop = ControlLoop(SchedulePolicy(requests), run.actuators(), context)
    loop.reset()
    return run, loop


#: Every total of a `RunResult` (the series are compared array by array).
TOTALS = (
    "cost_usd", "cost_by_pool", "gpu_hours", "arrivals", "served", "dropped", "in_flight",
    "slo_attainment", "p50_latency_s", "p95_latency_s", "p99_latency_s", "scaling_actions",
    "cold_starts", "notes", "decisions",
)  # fmt: skip


def _same(resumed: RunResult, full: RunResult) -> None:
    for name in TOTALS:
        assert getattr(resumed, name) == getattr(full, name), name
    for name in ("time_s", "ready", "desired", "pending", "p95_latency_s", "cost_usd"):
        assert np.array_equal(
            getattr(resumed.series, name), getattr(full.series, name), equal_nan=True
        ), name


def _requests(rng: np.random.Generator, ticks: int, low: int, high: int) -> np.ndarray:
    """Piecewise-constant requests: a new level every few decisions."""
    levels = rng.integers(low, high + 1, size=ticks // 6 + 1)
    return np.repeat(levels, 6)[:ticks].astype(np.int64)


def _lognormal() -> Scenario:
    return make_scenario(
        pool={"node_boot_s": {**LOGNORMAL, "mean_s": 125}, "image_pull_s": {**LOGNORMAL,
              "mean_s": 90}, "model_load_s": {**LOGNORMAL, "mean_s": 60}},
    )  # fmt: skip


def _spot() -> Scenario:
    return make_scenario(
        pool={"spot_share": 0.5, "spot_interruption_per_h": 20.0, "node_failure_per_h": 2.0}
    )


def _asg() -> Scenario:
    pool = Ec2AutoScalingGroup(
        name="asg", instance_type="g5.xlarge", min_replicas=4, max_replicas=32,
        initial_replicas=8, warm_pool_size=3,
    )  # fmt: skip
    return make_scenario().model_copy(update={"pool": pool})


def _spillover() -> Scenario:
    spill = ServerlessEndpoint(name="spill", max_replicas=20)
    return make_scenario().model_copy(update={"spillover": spill})


CASES: dict[str, Callable[[], Scenario]] = {
    "lognormal delays": _lognormal,
    "spot reclaims": _spot,
    "asg warm pool": _asg,
    "spillover": _spillover,
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("envelope", [False, True], ids=["trace", "envelope"])
def test_a_resumed_schedule_is_its_full_run(case: str, envelope: bool) -> None:
    """Schedule B asks for what A asks for until decision `changed`, then for other
    capacity; B resumed from each of A's checkpoints before `changed` ends exactly as
    B run from the start (bill, attainment, latencies, series, decision records)."""
    scenario = CASES[case]()
    workload = poisson_envelope(12.0, 1800.0) if envelope else load(scenario)
    engine = FluidEngine()
    rng = np.random.default_rng(11)
    probe, _ = _started(engine, scenario, workload, np.array([8]))
    ticks = probe.n_intervals
    low, high = scenario.pool.min_replicas, 20
    base = _requests(rng, ticks, low, high)
    changed = ticks // 2 + 1
    other = base.copy()
    other[changed:] = _requests(rng, ticks - changed, low, high)
    assert other[changed] != base[changed] or not np.array_equal(other, base)

    full_run, full_loop = _started(engine, scenario, workload, other)
    drive(full_run, full_loop)
    full = full_run.result(full_loop, SEED)

    base_run, base_loop = _started(engine, scenario, workload, base)
    checkpoints: list[Checkpoint] = []
    drive_checkpointed(base_run, base_loop, 5, checkpoints)
    usable = [c for c in checkpoints if c.index < changed]
    assert len(usable) >= 3
    for checkpoint in usable:
        run, loop = _started(engine, scenario, workload, other)
        resume(run, loop, checkpoint, base_run, base_loop)
        drive(run, loop)
        _same(run.result(loop, SEED), full)
        for name, value in vars(full_loop.history).items():  # what a policy would read
            kept = getattr(loop.history, name)
            assert np.array_equal(np.asarray(kept), np.asarray(value), equal_nan=True), name


def test_schedule_replays_resume_and_bill_what_full_runs_bill() -> None:
    """`ScheduleReplays` (the oracle's replays): the second schedule resumes from the
    first's checkpoint before their first difference, simulating fewer intervals; each
    replay bills, attains and has the capacity of `FluidEngine.run` of the same
    schedule, bit for bit, and records no latencies (NaN: no histogram kept)."""
    scenario = _lognormal()
    workload = load(scenario)
    engine = FluidEngine()
    context = make_context(scenario, workload, np.random.default_rng(0))
    replays = ScheduleReplays(engine, scenario, workload, SEED, context)
    rng = np.random.default_rng(3)
    first = _requests(rng, 240, scenario.pool.min_replicas, 20)
    second = first.copy()
    second[150:] = np.maximum(second[150:] - 1, scenario.pool.min_replicas)
    done = []
    for requests in (first, second):
        replayed = replays.replay(SchedulePolicy(requests), requests)
        full = engine.run(scenario, workload, SchedulePolicy(requests), seed=SEED)
        got = replayed.result
        assert (got.cost_usd, got.slo_attainment, got.gpu_hours) == (
            full.cost_usd, full.slo_attainment, full.gpu_hours,
        )  # fmt: skip
        assert (got.served, got.dropped) == (full.served, full.dropped)
        assert got.decisions == full.decisions
        assert np.array_equal(got.series.ready, full.series.ready)
        assert np.array_equal(got.series.cost_usd, full.series.cost_usd)
        assert np.isnan(got.p95_latency_s) and not np.isnan(full.p95_latency_s)
        done.append(replayed.simulated)
    assert done[1] < done[0] and done[1] <= done[0] - 150 + done[0] // CHECKPOINTS_PER_RUN
