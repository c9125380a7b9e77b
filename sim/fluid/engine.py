"""`FluidEngine`: the per-second fluid engine (`name = "fluid"`).

Python runs the decision loop: every `decision_interval_s` it builds the same
`Observation` the SimPy engine builds, calls the policy, and applies the decision
through the pool's actuator (`Fleet`). Between decisions the per-second dynamics
run compiled (`sim.fluid.kernel.advance`). See `docs/engines.md` for the model
and its approximations.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from policies.base import Decision, MetricSample, Observation, Policy
from sim.capacity.pools import ServerlessEndpoint
from sim.engine import OBSERVATION_HISTORY_LEN, make_context, token_profile
from sim.errors import PolicyError, ScenarioError
from sim.fluid import kernel as K
from sim.fluid import latency as L
from sim.fluid import serverless_kernel as V
from sim.fluid.fleet import Fleet
from sim.fluid.inputs import (
    SecondInputs,
    block_strata,
    dispersion,
    interval_bounds,
    interval_demand,
    per_second_arrivals,
    service_strata,
    smoothed_rate,
)
from sim.fluid.serverless import ServerlessFluid
from sim.fluid.work import cohort_work
from sim.result import RunResult, TimeSeries
from sim.scenario import Scenario
from sim.workload.model import FloatArray, RequestTrace, Workload


@dataclass(frozen=True)
class FluidSettings:
    """Knobs of the fluid approximation (defaults documented in docs/engines.md).

    Attributes:
        rate_window_s: Width of the centred moving average that turns per-second
            counts into the arrival rate of the M/M/c stationary wait.
        rho_max: Cap on utilisation in the Erlang C term while no backlog exists.
        arrival_scv: Squared coefficient of variation of inter-arrival times for
            the Allen-Cunneen factor (1 = Poisson).
    """

    rate_window_s: int = 31
    exact_sampling_max_requests: int = 3_000_000
    size_block_s: int = 60
    rho_max: float = 0.995
    arrival_scv: float | None = None
    queue_input: str = "raw"


class FluidEngine:
    """Per-second fluid model of a serving pool under a scaling policy."""

    name = "fluid"

    def __init__(self, settings: FluidSettings | None = None) -> None:
        self.settings = settings or FluidSettings()

    def run(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
    ) -> RunResult:
        """Simulate `policy` on `workload` under `scenario`; see `RunResult`."""
        engine_seq, policy_seq = np.random.SeedSequence(seed).spawn(2)
        rng = np.random.default_rng(engine_seq)
        clairvoyant = bool(getattr(policy, "clairvoyant", False))
        context = make_context(
            scenario,
            workload,
            np.random.default_rng(policy_seq),
            history=history,
            clairvoyant=clairvoyant,
        )
        policy.reset(context)
        workload, inputs = self.sample_arrivals(workload, seed, rng)
        pool = scenario.pool
        if isinstance(pool, ServerlessEndpoint):
            tokens = token_profile(workload)
            strata = service_strata(pool.service, workload, tokens)
            run = ServerlessFluid(scenario, pool, inputs, strata, rng)
            block_s = self.settings.size_block_s
            blocks = block_strata(
                pool.service, workload, tokens, inputs.duration_s, block_s, strata
            )
            return run.simulate(policy, context.replica_capacity_rps, seed, blocks, block_s)
        run_ = _InstanceRun(scenario, workload, inputs, rng, self.settings)
        return run_.simulate(policy, context.replica_capacity_rps, seed, workload.epoch_s)

    def sample_arrivals(
        self, workload: Workload, seed: int, rng: np.random.Generator
    ) -> tuple[Workload, SecondInputs]:
        """The run's per-second arrivals (and the workload the service strata use)."""
        if isinstance(workload, RequestTrace):
            return workload, per_second_arrivals(workload)
        rates = np.where(workload.missing, 0.0, np.nan_to_num(workload.rate_rps))
        expected = float(rates.sum() * workload.bin_s)
        if expected <= self.settings.exact_sampling_max_requests:
            from sim.des.streams import stream  # the DES's workload stream: same arrivals
            from sim.workload import to_requests

            trace = to_requests(workload, stream(seed, "workload"))
            return trace, per_second_arrivals(trace)
        return workload, per_second_arrivals(workload, rng)


def drain_s(in_service: float, ready: int, done_ring: FloatArray, now: int) -> float:
    """Expected time a replica drained now keeps serving (its node stays billed).

    The SimPy engine removes idle replicas first, then the least busy ones, which
    finish their requests. With least-loaded routing the replicas hold about
    `in_service / ready` requests each; the least busy holds the floor of it (none:
    idle, no drain). Its requests' remaining times follow the pool's scheduled
    completions (`done_ring`), so the drain is the median of the largest of them:
    the first second by which a share 0.5^(1 / b) of the pool's requests is done.
    """
    if ready <= 0 or in_service <= 0.0:
        return 0.0
    held = math.floor(in_service / ready)
    if held <= 0:
        return 0.0
    target = in_service * 0.5 ** (1.0 / held)
    d_len = done_ring.shape[0]
    done = 0.0
    for ahead in range(d_len):
        done += done_ring[(now + ahead) % d_len]
        if done >= target:
            return float(ahead) + 0.5
    return float(d_len)


def startup_attainment(scenario: Scenario, workload: Workload, intervals: int) -> FloatArray:
    """Share of requests within the SLO in each of the first `intervals` intervals when
    the pool keeps its initial replicas (used by the oracle for the intervals no
    decision can change yet: queues carried over between them are captured here)."""
    from policies.base import FixedPolicy  # the baseline policy lives in the contract

    engine = FluidEngine()
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0])
    workload, inputs = engine.sample_arrivals(workload, 0, rng)
    run = _InstanceRun(scenario, workload, inputs, rng, engine.settings)
    policy = FixedPolicy(scenario.pool.start_replicas, name="startup")
    # A fixed policy never reads replica_capacity_rps.
    run.simulate(policy, 0.0, 0, workload.epoch_s, stop_after=intervals)
    return np.asarray(run.interval_share[:intervals], dtype=np.float64)


class _InstanceRun:
    """One run of an instance pool (GPU node pool or ASG), optionally with spillover.

    `workload` is the one the arrivals were sampled from (`FluidEngine.sample_arrivals`):
    its requests' sizes give the service strata.
    """

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        inputs: SecondInputs,
        rng: np.random.Generator,
        settings: FluidSettings,
    ) -> None:
        pool = scenario.pool
        assert not isinstance(pool, ServerlessEndpoint)
        tokens = token_profile(workload)
        self.strata = strata = service_strata(pool.service, workload, tokens)
        self.scenario = scenario
        self.inputs = inputs
        self.fleet = Fleet(pool, rng)
        self.max_batch = pool.service.max_batch
        self.interval_s = scenario.decision_interval_s
        if self.interval_s < 1.0:
            raise ScenarioError(
                f"scenario {scenario.name!r}: decision_interval_s={self.interval_s} is below "
                "the fluid engine's 1 s resolution; use decision_interval_s >= 1"
            )
        full = float(pool.service.max_batch)
        self.lam = smoothed_rate(inputs.arrivals, settings.rate_window_s)
        ca2 = settings.arrival_scv
        if ca2 is None:
            # raw counts already carry their bursts into the queue; a smoothed queue
            # needs them in the wait through the measured dispersion
            raw = settings.queue_input == "raw"
            ca2 = 1.0 if raw else dispersion(inputs.arrivals, self.lam)
        ac = (ca2 + strata.scv(full)) / 2.0
        self.params = np.zeros(K.N_PARAMS)
        self.params[K.P_MAX_BATCH] = pool.service.max_batch
        self.params[K.P_SLOWDOWN_PER_SLOT] = strata.slowdown_per_slot
        self.params[K.P_SLO_S] = scenario.slo.latency_s
        self.params[K.P_TIMEOUT_S] = pool.queue_timeout_s
        self.params[K.P_AC_FACTOR] = ac
        self.params[K.P_RHO_MAX] = settings.rho_max
        self.params[K.P_QUEUE_SMOOTHED] = 1.0 if settings.queue_input == "smoothed" else 0.0
        self.blocks = block_strata(
            pool.service, workload, tokens, inputs.duration_s, settings.size_block_s, strata
        )
        self.params[K.P_BLOCK_S] = settings.size_block_s
        self.work = cohort_work(pool.service, workload, tokens, inputs.duration_s)
        self.params[K.P_COHORT_WORK] = 1.0 if self.work.per_request else 0.0
        self.params[K.P_GLOBAL_BATCH1_S] = strata.mean_s(1.0)
        self.spill: ServerlessFluid | None = None
        self.clamped = 0
        self.notes: list[str] = []
        if scenario.spillover is not None:
            spill_strata = service_strata(scenario.spillover.service, workload, tokens)
            self.spill = ServerlessFluid(scenario, scenario.spillover, inputs, spill_strata, rng)

    def simulate(
        self,
        policy: Policy,
        capacity_rps: float,
        seed: int,
        epoch_s: float | None,
        stop_after: int | None = None,
    ) -> RunResult:
        inputs, fleet, interval_s = self.inputs, self.fleet, self.interval_s
        duration = inputs.duration_s
        bounds_arr = interval_bounds(duration, interval_s)
        n_int = len(bounds_arr) - 1
        demands = interval_demand(inputs, bounds_arr)
        bounds = bounds_arr.tolist()
        strata_packed = self.strata.packed()
        state = np.zeros(K.N_STATE)
        ring = np.zeros(math.ceil(self.params[K.P_TIMEOUT_S]) + 2)
        # completions are scheduled up to the longest service time (a full batch) ahead
        done_len = math.ceil(self._longest_service_s()) + 3
        done_ring, done_busy_ring = np.zeros(done_len), np.zeros(done_len)
        hist = np.zeros(L.HIST_BINS)
        ihist = np.zeros(L.HIST_BINS)
        out = np.zeros(K.N_OUT)
        totals = np.zeros(K.N_OUT)
        rows: list[tuple[float, float, int, int, int, float, float]] = []
        history: deque[MetricSample] = deque(maxlen=OBSERVATION_HISTORY_LEN)
        pool = self.scenario.pool
        min_r, max_r = pool.min_replicas, pool.max_replicas
        spill = self.spill
        if spill is not None:
            sp_on, sp_service, sp_strata = True, spill.service_s, spill.strata.packed()
            vp, vs, dq_t, dq_v = spill.vp, spill.vs, spill.dq_t, spill.dq_v
        else:
            sp_on, sp_service, sp_strata = False, 1.0, strata_packed
            vp, vs, dq_t, dq_v = np.zeros(8), np.zeros(32), np.zeros(2), np.zeros(2)
        arrivals, lam, params, blocks = inputs.arrivals, self.lam, self.params, self.blocks
        offsets, base_s, slope_s = self.work.offsets, self.work.base_s, self.work.slope_s
        ready_at, until = fleet.ready_arrays()
        share = self.interval_share = np.ones(n_int)
        last = n_int if stop_after is None else min(n_int, stop_after)
        advance = K.advance
        i_ready, i_pending, i_queue = K.O_READY_AT_T1, K.O_PENDING_AT_T1, K.O_QUEUE_END
        i_busy, i_slot, i_p95 = K.O_BUSY_SLOT_S, K.O_READY_SLOT_S, K.O_P95_S
        i_served, i_dropped, i_att = K.O_SERVED, K.O_DROPPED, K.O_ATTAINED
        for i in range(last):
            t0, t1 = bounds[i], bounds[i + 1]
            if t1 <= t0:
                continue
            desired = fleet.desired
            advance(
                t0, t1, arrivals, lam, ready_at, until, desired, blocks,
                offsets, base_s, slope_s, params,
                state, ring, done_ring, done_busy_ring, hist, ihist, out, totals,
                sp_on, sp_service, sp_strata, vp, vs, dq_t, dq_v,
            )  # fmt: skip
            o = out.tolist()
            finished = o[i_served] + o[i_dropped]
            if finished > 0:
                share[i] = o[i_att] / finished
            if fleet.has_hazard:
                fleet.replace_dead(float(t1))
            demand = demands[i]
            ready = int(o[i_ready])
            pending = int(o[i_pending])
            p95 = o[i_p95]
            now = float(t1)
            if t1 >= duration:
                # the last, partial interval: a series row, no decision
                rows.append(self._row(now, demand, ready, desired, pending, p95))
                break
            util = o[i_busy] / o[i_slot] if o[i_slot] > 0 else None
            obs = Observation(
                time_s=now,
                interval_s=interval_s,
                demand_rps=demand,
                utilisation=util,
                queue_len=int(o[i_queue] + 0.5),
                ready=ready,
                pending=pending,
                desired=desired,
                min_replicas=min_r,
                max_replicas=max_r,
                replica_capacity_rps=capacity_rps,
                p95_latency_s=None if p95 != p95 else p95,  # NaN: nothing finished
                epoch_s=epoch_s,
                history=tuple(history),
                spillover_in_flight=int(vs[V.V_BUSY] + 0.5) if sp_on else 0,
            )
            decision = policy.decide(obs)
            if not isinstance(decision, Decision):
                raise PolicyError(
                    f"policy {policy.name!r} returned {type(decision).__name__}, not a Decision"
                )
            wanted = decision.desired
            if wanted != desired or not min_r <= wanted <= max_r:
                fleet.clock_s = now
                if wanted < desired:
                    fleet.drain_s = drain_s(state[K.S_IN_SERVICE], ready, done_ring, bounds[i + 1])
                self._apply(fleet, int(wanted), decision.reason)
            if decision.spillover_provisioned is not None:
                if spill is None:
                    self._note(
                        "policy set spillover_provisioned but there is no spillover; ignored"
                    )
                else:
                    spill.clock_s = now
                    self._apply(spill, int(decision.spillover_provisioned), decision.reason)
            # the row and the history sample describe the state after the decision,
            # as the SimPy engine records them (only a change moves ready or pending)
            if fleet.desired != desired:
                ready = fleet.ready(now)
                pending = fleet.pending(now)
            rows.append(self._row(now, demand, ready, fleet.desired, pending, p95))
            history.append(MetricSample(now, demand, util, obs.ready, desired))
        series = np.asarray(rows, dtype=np.float64).reshape(-1, 7).T
        return self._result(policy, seed, totals, hist, series, duration)

    def _longest_service_s(self) -> float:
        """The longest service time of the run, at a full batch: a stratum's or a
        request's (the kernel never schedules a completion further ahead)."""
        blocks = self.blocks
        step = 1.0 + self.params[K.P_SLOWDOWN_PER_SLOT] * (self.max_batch - 1)
        longest = float((blocks[:, 1, :] + blocks[:, 2, :] * step).max(initial=1.0))
        return max(longest, self.work.longest_s(step))

    def _row(
        self, now: float, demand: float | None, ready: int, desired: int, pending: int, p95: float
    ) -> tuple[float, float, int, int, int, float, float]:
        """One series row: time, demand, ready, desired, pending, p95, cumulative cost."""
        cost = self.fleet.cost_usd(now)
        if self.spill is not None:
            cost += self.spill.cost_usd()
        return (now, 0.0 if demand is None else demand, ready, desired, pending, p95, cost)

    def _apply(self, actuator: Fleet | ServerlessFluid, desired: int, reason: str) -> None:
        """Clamp an out-of-bounds decision (counted in the notes) and actuate it."""
        low, high = actuator.bounds()
        if desired > high:
            desired, reason = high, f"{reason}; clamped to {high} (TooManyReplicas)"
            self.clamped += 1
        elif desired < low:
            desired, reason = low, f"{reason}; clamped to {low} (TooFewReplicas)"
            self.clamped += 1
        actuator.set_desired(desired, reason)

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def _result(
        self,
        policy: Policy,
        seed: int,
        totals: FloatArray,
        hist: FloatArray,
        series: FloatArray,
        duration: int,
    ) -> RunResult:
        fleet, spill = self.fleet, self.spill
        arrivals = float(totals[K.O_ARRIVALS])
        served = float(totals[K.O_SERVED])
        dropped = float(totals[K.O_DROPPED])
        attained = float(totals[K.O_ATTAINED])
        in_flight = max(arrivals - served - dropped, 0.0)
        pool_cost = fleet.final_cost_usd(float(duration))
        cost_by_pool = {self.scenario.pool.name: pool_cost}
        cold_starts = 0
        if spill is not None:
            spilled = float(spill.vs[V.V_SERVED])
            served += spilled
            in_flight = max(in_flight - spilled, 0.0)
            attained += float(spill.vs[V.V_ATTAINED])
            cost_by_pool[spill.endpoint.name] = spill.cost_usd()
            cold_starts = round(spill.vs[V.V_COLD_STARTS])
        if self.clamped:
            self._note(f"{self.clamped} decisions were out of bounds and clamped")
        if fleet.replaced_nodes:
            self._note(f"{fleet.replaced_nodes} nodes replaced after a spot reclaim or failure")
        finished = served + dropped
        attainment = attained / finished if finished > 0 else 1.0
        cost = float(sum(cost_by_pool.values()))
        gpu_hours = fleet.billed_node_seconds(float(duration)) * fleet.gpus_per_node / 3600.0
        ts = TimeSeries(
            time_s=series[0],
            demand_rps=series[1],
            ready=series[2],
            desired=series[3],
            pending=series[4],
            p95_latency_s=series[5],
            cost_usd=series[6],
        )
        return RunResult(
            policy=policy.name,
            engine="fluid",
            seed=seed,
            cost_usd=cost,
            cost_by_pool=cost_by_pool,
            gpu_hours=gpu_hours,
            arrivals=round(arrivals),
            served=round(served),
            dropped=round(dropped),
            in_flight=round(in_flight),
            slo_attainment=min(max(attainment, 0.0), 1.0),
            slo_target=self.scenario.slo.target_attainment,
            p50_latency_s=float(L.hist_quantile(hist, 0.50)),
            p95_latency_s=float(L.hist_quantile(hist, 0.95)),
            p99_latency_s=float(L.hist_quantile(hist, 0.99)),
            scaling_actions=fleet.actions,
            series=ts,
            cold_starts=cold_starts,
            notes=tuple(self.notes),
        )
