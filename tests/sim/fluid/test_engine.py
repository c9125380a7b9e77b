"""Behaviour of the fluid engine: conservation, determinism, billing, queueing, pools."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.capacity.pools import GpuNodePool
from sim.capacity.queueing import attainment as mmc_attainment
from sim.capacity.queueing import erlang_c
from sim.contract import Decision, Observation, PolicyContext
from sim.control import ControlLoop
from sim.des.engine import DesEngine
from sim.des.streams import stream
from sim.fluid import FluidEngine
from sim.fluid import serverless_kernel as V
from sim.fluid.engine import drain_s
from sim.fluid.fleet import Fleet
from sim.fluid.latency import HIST_BINS
from sim.fluid.slots import HALFIN_WHITT_FROM, erlang_c_fast
from sim.replay import FixedPolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import RequestTrace, Workload

from .conftest import make_scenario, poisson_envelope, uniform_trace

ENGINE = FluidEngine()


class StepUp:
    """Scales from 4 to 12 replicas at the first decision and back to 4 at t = 900 s."""

    name = "step-up"

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        return Decision(12 if observation.time_s < 900 else 4, "test schedule")


class OutOfBounds:
    name = "out-of-bounds"

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        return Decision(observation.max_replicas + 5, "too many")


def _run(scenario: Scenario, workload: Workload, policy: object, seed: int = 0) -> RunResult:
    return ENGINE.run(scenario, workload, policy, seed=seed)  # type: ignore[arg-type]


def test_every_arrival_is_served_dropped_or_in_flight(
    conv_scenario: Scenario, conv_workload: Workload
) -> None:
    for replicas in (2, 8):
        result = _run(conv_scenario, conv_workload, FixedPolicy(replicas))
        assert result.engine == "fluid"
        assert result.arrivals == len(conv_workload.arrival_s)  # type: ignore[union-attr]
        assert abs(result.served + result.dropped + result.in_flight - result.arrivals) <= 2
        assert 0.0 <= result.slo_attainment <= 1.0
    overloaded = _run(conv_scenario, conv_workload, FixedPolicy(4))
    assert overloaded.dropped > 0  # 4 replicas cannot carry 12 req/s: the queue times out


def test_same_seed_same_result_other_seed_other_delays() -> None:
    # lognormal provisioning delays are sampled per node from the seeded generator
    scenario = make_scenario(pool={"node_boot_s": {"kind": "lognormal", "mean_s": 120, "cv": 0.3}})
    workload = uniform_trace(8.0, 1800.0, (1000, 200))
    first = _run(scenario, workload, StepUp(), seed=1)
    again = _run(scenario, workload, StepUp(), seed=1)
    other = _run(scenario, workload, StepUp(), seed=2)
    assert first.summary() == again.summary()
    assert np.array_equal(first.series.ready, again.series.ready)
    assert not np.array_equal(first.series.ready, other.series.ready)


def test_fixed_capacity_bills_nodes_for_the_run() -> None:
    scenario = make_scenario(pool={"min_replicas": 1, "initial_replicas": 4})
    workload = uniform_trace(1.0, 3600.0, (500, 100))
    result = _run(scenario, workload, FixedPolicy(4))
    price = scenario.pool.on_demand_usd_per_h
    assert result.cost_usd == pytest.approx(4 * price, rel=1e-9)
    assert result.gpu_hours == pytest.approx(4.0)
    assert result.scaling_actions == 0


def test_scale_out_pays_provisioning_and_a_short_node_pays_the_minimum() -> None:
    scenario = make_scenario(
        pool={"min_replicas": 1, "initial_replicas": 1, "node_boot_s": 0, "image_pull_s": 0,
              "model_load_s": 0, "billing_min_s": 60},
    )  # fmt: skip
    workload = uniform_trace(0.5, 600.0, (500, 100))

    class Blip:
        name = "blip"

        def reset(self, context: PolicyContext) -> None:
            del context

        def decide(self, observation: Observation) -> Decision:
            return Decision(2 if observation.time_s == 15 else 1, "blip")

    result = _run(scenario, workload, Blip())
    price_s = scenario.pool.on_demand_usd_per_h / 3600
    # one node all run long, one node held 15 s but billed the 60 s minimum
    assert result.cost_usd == pytest.approx(price_s * (600 + 60), rel=1e-9)
    assert result.scaling_actions == 2


def test_spot_share_lowers_the_bill() -> None:
    workload = uniform_trace(1.0, 1800.0, (500, 100))
    on_demand = _run(make_scenario(pool={"spot_interruption_per_h": 0.0}), workload, FixedPolicy(8))
    half = _run(
        make_scenario(pool={"spot_share": 0.5, "spot_interruption_per_h": 0.0}),
        workload,
        FixedPolicy(8),
    )
    assert half.cost_usd < on_demand.cost_usd
    pool = make_scenario().pool
    expected = 0.5 * (pool.on_demand_usd_per_h + pool.spot_usd_per_h) / pool.on_demand_usd_per_h
    assert half.cost_usd / on_demand.cost_usd == pytest.approx(expected, rel=1e-9)


def test_a_trace_without_requests_runs() -> None:
    """A window with no requests (it raised in `block_strata`): nothing served, the
    nodes billed as in the SimPy engine."""
    scenario = make_scenario()
    empty = RequestTrace(
        arrival_s=np.zeros(0),
        duration_s=600.0,
        input_tokens=np.zeros(0, dtype=np.int64),
        output_tokens=np.zeros(0, dtype=np.int64),
    )
    result = _run(scenario, empty, FixedPolicy(4))
    des = DesEngine().run(scenario, empty, FixedPolicy(4), seed=0)
    assert (result.arrivals, result.served, result.slo_attainment) == (0, 0, 1.0)
    assert result.cost_usd == pytest.approx(des.cost_usd, rel=1e-9)


def test_no_capacity_drops_everything_after_the_timeout() -> None:
    scenario = make_scenario(pool={"min_replicas": 0, "initial_replicas": 0})
    workload = uniform_trace(2.0, 600.0, (500, 100))
    result = _run(scenario, workload, FixedPolicy(0))
    assert result.served == 0
    assert result.slo_attainment == 0.0
    # requests of the last queue_timeout_s seconds are still waiting at the end
    assert result.dropped == pytest.approx(2.0 * (600 - 60), abs=4)
    assert result.in_flight == pytest.approx(2.0 * 60, abs=4)


def test_out_of_bounds_decisions_are_clamped_and_noted(
    conv_scenario: Scenario, conv_workload: Workload
) -> None:
    result = _run(conv_scenario, conv_workload, OutOfBounds())
    assert result.series.desired.max() == conv_scenario.pool.max_replicas
    assert any("clamped" in note for note in result.notes)


@pytest.mark.parametrize(
    ("slots", "offered"), [(16, 12.0), (64, 60.0), (500, 480.0), (2000, 1960.0)]
)
def test_fast_erlang_c_matches_the_closed_form(slots: int, offered: float) -> None:
    # exact series below 400 slots, Halfin-Whitt above (within a few percent)
    assert erlang_c_fast(slots, offered) == pytest.approx(erlang_c(slots, offered), rel=0.03)


@given(
    slots=st.integers(min_value=1, max_value=HALFIN_WHITT_FROM),
    rho=st.floats(min_value=0.05, max_value=0.9999),
)
@settings(max_examples=400, deadline=None)
def test_fast_erlang_c_series_is_exact_up_to_rounding(slots: int, rho: float) -> None:
    # the series taken four terms a step (and the one-by-one tail below four) is the
    # closed form's value to the series' stopping tolerance, or 0 where C < 1e-14
    offered = rho * slots
    exact = erlang_c(slots, offered)
    fast = erlang_c_fast(slots, offered)
    if fast == 0.0:
        assert exact < 1e-12
    else:
        assert fast == pytest.approx(exact, rel=1e-11, abs=1e-15)


def test_stationary_attainment_matches_mmc() -> None:
    """A Poisson stream on a fixed exponential pool at 80 % utilisation is M/M/c."""
    scenario = make_scenario(
        pool={"service": {"kind": "exponential", "mean_s": 10.0, "max_batch": 16},
              "min_replicas": 1, "initial_replicas": 4},
        slo={"latency_s": 40.0, "target_attainment": 0.9},
    )  # fmt: skip
    arrival_rps = 0.8 * 64 / 10.0
    result = _run(scenario, poisson_envelope(arrival_rps, 7200.0), FixedPolicy(4))
    expected = mmc_attainment(64, arrival_rps, 10.0, 40.0, service_samples_s=_exp_quantiles(10.0))
    assert result.slo_attainment == pytest.approx(expected, abs=0.005)


def _exp_quantiles(mean_s: float, points: int = 400) -> np.ndarray:
    return np.asarray(-mean_s * np.log(1.0 - (np.arange(points) + 0.5) / points))


def _mmc_p90_s(slots: int, arrival_rps: float, service_s: float) -> float:
    """The exact 90th-percentile latency (wait + service) of M/M/c, by bisection."""
    samples = _exp_quantiles(service_s, 4000)
    lo, hi = 0.0, 100.0 * service_s
    for _ in range(50):
        mid = (lo + hi) / 2.0
        if mmc_attainment(slots, arrival_rps, service_s, mid, samples) < 0.9:
            lo = mid
        else:
            hi = mid
    return hi


def _mmc_attainment(slots: int, rho: float, duration_s: float, seeds: range) -> float:
    """Fluid attainment at the exact 90th-percentile latency of M/M/c (exact: 0.900):
    one replica with `slots` batch slots, exponential 10 s service, no abandonment."""
    arrival_rps = rho * slots / 10.0
    scenario = make_scenario(
        pool={"service": {"kind": "exponential", "mean_s": 10.0, "max_batch": slots},
              "min_replicas": 1, "initial_replicas": 1, "queue_timeout_s": 100_000},
        slo={"latency_s": _mmc_p90_s(slots, arrival_rps, 10.0), "target_attainment": 0.9},
    )  # fmt: skip
    workload = poisson_envelope(arrival_rps, duration_s)
    runs = [_run(scenario, workload, FixedPolicy(1), seed=seed) for seed in seeds]
    return float(np.mean([r.slo_attainment for r in runs]))


@pytest.mark.parametrize(("slots", "rho"), [(2, 0.95), (8, 0.95)], ids=["c2", "c8"])
def test_few_slots_near_saturation_match_mmc(slots: int, rho: float) -> None:
    """A few slots near saturation relax over hours (S / (c (1 - rho)^2)): the rate of
    the stationary wait comes from a window of many relaxation times, not from 31 s
    of Poisson counts (0.975 / 0.958 before, docs/engines.md). Two seeds of 11.6 days
    average out the path's own noise (one seed: about +-1 pp)."""
    assert _mmc_attainment(slots, rho, 1_000_000.0, range(2)) == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize(
    ("slots", "rho"),
    [(1, 0.5), (1, 0.9), (4, 0.7), (4, 0.9), (16, 0.5), (16, 0.9)],
    ids=str,
)
def test_small_pools_match_mmc(slots: int, rho: float) -> None:
    assert _mmc_attainment(slots, rho, 1_000_000.0, range(1)) == pytest.approx(0.9, abs=0.01)


def test_serverless_pool_cold_starts_and_bills_compute() -> None:
    scenario = make_scenario(
        pool={"kind": "serverless", "max_replicas": 50, "min_replicas": 0,
              "cold_start_s": 8, "keep_alive_s": 120,
              "service": {"kind": "exponential", "mean_s": 1.0}},
    )  # fmt: skip
    workload = poisson_envelope(5.0, 1800.0)
    result = _run(scenario, workload, FixedPolicy(0))
    assert result.cold_starts > 0
    assert result.gpu_hours == 0.0
    assert result.served + result.dropped == result.arrivals
    busy_gb_s = 5.0 * 1800 * 1.0 * scenario.pool.memory_gb
    assert result.cost_usd == pytest.approx(busy_gb_s * 0.00002, rel=0.05)


def test_a_request_in_its_cold_start_holds_its_instance() -> None:
    """5 requests a second on an empty endpoint with an 8 s cold start and 1 s service:
    every arrival of the first 8 s finds its instances still starting and cold-starts
    its own (the DES's rule), and the first of them serve from second 8 on."""
    vp = np.zeros(V.N_VPARAMS)
    vp[V.V_MAX], vp[V.V_KEEP_ALIVE_S], vp[V.V_COLD_S], vp[V.V_SLO_S] = 100, 120, 8.0, 30.0
    vs = np.zeros(V.N_VSTATE)
    dq_t, dq_v, cw = np.zeros(124), np.zeros(124), np.zeros(V.cold_ring_len(8.0))
    strata = np.array([[1.0], [1.0], [0.0]])  # one stratum: weight 1, 1 s at batch 1
    ihist = np.zeros(HIST_BINS)
    for s in range(8):
        V.sv_second(s, 5.0, 1.0, strata, vp, vs, dq_t, dq_v, cw, ihist)
    assert vs[V.V_COLD_STARTS] == pytest.approx(40.0)
    assert vs[V.V_STARTING] == pytest.approx(40.0)  # second 0's end theirs within second 8
    assert vs[V.V_BUSY] == 0.0
    assert vs[V.V_IN_FLIGHT] == pytest.approx(40.0)
    for s in range(8, 12):  # second 8's arrivals still find none up; then they serve
        V.sv_second(s, 5.0, 1.0, strata, vp, vs, dq_t, dq_v, cw, ihist)
    assert 40.0 < vs[V.V_COLD_STARTS] < 50.0
    cold_starts = vs[V.V_COLD_STARTS]
    for s in range(12, 30):
        V.sv_second(s, 5.0, 1.0, strata, vp, vs, dq_t, dq_v, cw, ihist)
    # the instances are up and serve the arrivals warm: no further cold start
    assert vs[V.V_COLD_STARTS] == cold_starts
    assert vs[V.V_STARTING] == pytest.approx(0.0, abs=1e-9)


def test_spillover_serves_while_nodes_boot(conv_workload: Workload) -> None:
    base = make_scenario(pool={"initial_replicas": 4})
    spill = make_scenario(
        pool={"initial_replicas": 4},
        spillover={"kind": "serverless", "name": "spill", "max_replicas": 200},
    )
    without = _run(base, conv_workload, FixedPolicy(4))
    with_spill = _run(spill, conv_workload, FixedPolicy(4))
    assert with_spill.dropped < without.dropped
    assert with_spill.slo_attainment > without.slo_attainment
    assert with_spill.cost_by_pool["spill"] > 0.0
    assert with_spill.cold_starts > 0


def test_series_are_one_row_per_decision(conv_scenario: Scenario, conv_workload: Workload) -> None:
    result = _run(conv_scenario, conv_workload, FixedPolicy(8))
    n = int(np.ceil(conv_workload.duration_s / conv_scenario.decision_interval_s))
    assert len(result.series.time_s) == n
    assert np.all(np.diff(result.series.cost_usd) >= 0)
    assert result.series.time_s[-1] == pytest.approx(conv_workload.duration_s)
    assert replace(result, cost_vs_oracle=1.0).summary()["cost_vs_oracle"] == 1.0


@pytest.mark.parametrize(
    ("in_service", "ready", "completions", "expected_s"),
    [
        (0.0, 4, [1.0] * 8, 0.0),  # nothing in service: nothing to drain
        (3.0, 4, [1.0] * 8, 0.0),  # fewer requests than replicas: an idle one goes
        (4.0, 0, [1.0] * 8, 0.0),  # no ready replica (pending ones are cancelled)
        (4.0, 1, [1.0] * 8, 3.5),  # four requests ending 1 s apart: the median of
        # the largest remaining time, 4 x 0.5^(1/4) = 3.4 done in second 3
        (8.0, 2, [2.0] * 8, 3.5),  # the same per replica with two replicas
        (2.0, 2, [0.0, 0.0, 0.0, 0.0, 2.0, 0.0], 4.5),  # one request each, ending in 4 s
    ],
)
def test_a_drained_replica_serves_until_its_requests_end(
    in_service: float, ready: int, completions: list[float], expected_s: float
) -> None:
    ring = np.zeros(len(completions) + 4)
    now = 10
    for ahead, count in enumerate(completions):
        ring[(now + ahead) % ring.size] = count
    assert drain_s(in_service, ready, ring, now) == pytest.approx(expected_s)


def _constant(value_s: float, now_s: float) -> float:
    del now_s
    return value_s


def test_scale_in_bills_a_serving_node_until_it_drains(conv_scenario: Scenario) -> None:
    pool = conv_scenario.pool
    assert isinstance(pool, GpuNodePool)
    price_s = pool.on_demand_usd_per_h / 3600.0
    costs = []
    for drain in (0.0, 30.0):
        # 8 replicas, one per node, ready; a removed busy replica serves `drain` more s
        fleet = Fleet(pool, np.random.default_rng(0), drain_s_at=partial(_constant, drain))
        fleet.set_desired(6, "test", 600.0)
        costs.append(fleet.cost_usd(600.0))
    assert costs[1] - costs[0] == pytest.approx(2 * 30.0 * price_s)


class _Script:
    """Scales through overlapping scale-outs and scale-ins (nodes still booting are
    cancelled, later launches come up first) and logs what it observed."""

    name = "script"

    def __init__(self) -> None:
        self.log: list[tuple[float, int, int, int]] = []

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        t = observation.time_s
        desired = [4, 12, 16, 6, 20, 8][int(t // 300) % 6] + int(t // 15) % 3
        self.log.append((t, observation.ready, observation.pending, desired))
        return Decision(desired, "script")


@pytest.mark.parametrize("seed", [0, 1])
def test_fleet_draws_the_des_provisioning_delays_in_its_order(seed: int) -> None:
    """With the DES's provisioning stream the fleet has the DES's ready and pending
    replicas at every decision under random (lognormal) delays, so both engines'
    policies see the same capacity, as with fixed delays."""
    lognormal = {"kind": "lognormal", "cv": 0.3}
    scenario = make_scenario(
        pool={"node_boot_s": {**lognormal, "mean_s": 125}, "image_pull_s": {**lognormal,
              "mean_s": 90}, "model_load_s": {**lognormal, "mean_s": 60}},
    )  # fmt: skip
    script = _Script()
    DesEngine().run(scenario, uniform_trace(2.0, 3600.0, (500, 100)), script, seed=seed)
    pool = scenario.pool
    assert isinstance(pool, GpuNodePool)
    fleet = Fleet(pool, np.random.default_rng(0), provisioning=stream(seed, "pool.provisioning"))
    for now, ready, pending, desired in script.log:
        assert (fleet.ready(now), fleet.pending(now)) == (ready, pending), now
        if desired != fleet.desired:
            fleet.set_desired(desired, "script", now)


@pytest.mark.parametrize(
    "pool",
    [{}, {"spot_share": 0.5, "spot_interruption_per_h": 20.0, "node_failure_per_h": 2.0}],
    ids=["on-demand", "spot-reclaims"],
)
def test_series_rows_are_the_fleet_after_each_decision(pool: dict[str, object]) -> None:
    """The kernel writes each row and only changes (a decision, a replaced node) are
    kept for desired and cost: the filled-in series equals what the fleet reports
    right after every decision, read while stepping the run by hand (ready and
    pending as observed, or as the fleet has them after a change, as in the DES)."""
    scenario = make_scenario(pool=pool)
    workload = uniform_trace(2.0, 1800.0, (500, 100))
    run = ENGINE.start(scenario, workload, seed=3)
    context = PolicyContext(
        interval_s=15.0, min_replicas=4, max_replicas=32, replica_capacity_rps=1.0,
        provisioning_s=60.0, slo_latency_s=25.0, slo_target=0.95, mean_service_s=5.0,
        max_batch=16,
    )  # fmt: skip
    loop = ControlLoop(StepUp(), run.actuators(), context)
    loop.reset()
    seen: list[tuple[float, int, int, int, float]] = []
    while (now := run.advance()) is not None:
        observation = loop.step(run.read(now))
        run.record(now, observation)
        fleet = run.fleet  # type: ignore[union-attr]
        ready, pending = observation.ready, observation.pending
        if fleet.desired != observation.desired:
            ready, pending = fleet.ready(now), fleet.pending(now)
        seen.append((now, ready, fleet.desired, pending, fleet.cost_usd(now)))
    series = run.result(loop, 3).series
    rows = np.column_stack(
        [series.time_s, series.ready, series.desired, series.pending, series.cost_usd]
    )
    assert np.array_equal(rows[:-1], np.array(seen))
    assert series.desired[-1] == 4
