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
from sim.engine import make_context, token_profile
from sim.errors import PolicyError, ScenarioError
from sim.fluid import kernel as K
from sim.fluid import latency as L
from sim.fluid import serverless_kernel as V
from sim.fluid.fleet import Fleet
from sim.fluid.inputs import (
    SecondInputs,
    ServiceStrata,
    block_strata,
    per_second_arrivals,
    service_strata,
)
from sim.fluid.serverless import ServerlessFluid
from sim.result import RunResult, TimeSeries
from sim.scenario import Scenario
from sim.workload.model import FloatArray, RequestTrace, TokenProfile, Workload

HISTORY_LEN = 240  # intervals of history in each Observation (one hour at 15 s), as the DES


def smoothed_rate(arrivals: FloatArray, window_s: int) -> FloatArray:
    """Centred moving average of arrivals per second: the rate behind Poisson counts.

    The M/M/c part of the model already accounts for Poisson noise, so it is fed
    the local mean rate, not the noisy per-second count.
    """
    if window_s <= 1:
        return arrivals.copy()
    cumulative = np.concatenate([[0.0], np.cumsum(arrivals)])
    n = len(arrivals)
    half = window_s // 2
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return np.asarray((cumulative[hi] - cumulative[lo]) / (hi - lo), dtype=np.float64)


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
    arrival_scv: float = 1.0


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
        workload, inputs = self._arrivals(workload, seed, rng)
        pool = scenario.pool
        tokens = token_profile(workload)
        strata = service_strata(pool.service, workload, tokens)
        if isinstance(pool, ServerlessEndpoint):
            run = ServerlessFluid(scenario, pool, inputs, strata, rng)
            block_s = self.settings.size_block_s
            blocks = block_strata(pool.service, workload, tokens, inputs.duration_s, block_s)
            return run.simulate(policy, context.replica_capacity_rps, seed, blocks, block_s)
        run_ = _InstanceRun(scenario, inputs, strata, rng, self.settings, workload, tokens)
        return run_.simulate(policy, seed, workload.epoch_s)

    def _arrivals(
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


class _InstanceRun:
    """One run of an instance pool (GPU node pool or ASG), optionally with spillover."""

    def __init__(
        self,
        scenario: Scenario,
        inputs: SecondInputs,
        strata: ServiceStrata,
        rng: np.random.Generator,
        settings: FluidSettings,
        workload: Workload,
        tokens: TokenProfile,
    ) -> None:
        pool = scenario.pool
        assert not isinstance(pool, ServerlessEndpoint)
        self.scenario = scenario
        self.inputs = inputs
        self.strata = strata
        self.fleet = Fleet(pool, rng)
        self.max_batch = pool.service.max_batch
        self.interval_s = scenario.decision_interval_s
        if self.interval_s < 1.0:
            raise ScenarioError(
                f"scenario {scenario.name!r}: decision_interval_s={self.interval_s} is below "
                "the fluid engine's 1 s resolution; use decision_interval_s >= 1"
            )
        full = float(pool.service.max_batch)
        ac = (settings.arrival_scv + strata.scv(full)) / 2.0
        self.params = np.zeros(K.N_PARAMS)
        self.params[K.P_MAX_BATCH] = pool.service.max_batch
        self.params[K.P_SLOWDOWN_PER_SLOT] = strata.slowdown_per_slot
        self.params[K.P_SLO_S] = scenario.slo.latency_s
        self.params[K.P_TIMEOUT_S] = pool.queue_timeout_s
        self.params[K.P_AC_FACTOR] = ac
        self.params[K.P_RHO_MAX] = settings.rho_max
        self.lam = smoothed_rate(inputs.arrivals, settings.rate_window_s)
        self.blocks = block_strata(
            pool.service, workload, tokens, inputs.duration_s, settings.size_block_s
        )
        self.params[K.P_BLOCK_S] = settings.size_block_s
        self.params[K.P_GLOBAL_BATCH1_S] = strata.mean_s(1.0)
        self.capacity_rps = self.max_batch / strata.mean_s(full)
        self.spill: ServerlessFluid | None = None
        self.clamped = 0
        self.notes: list[str] = []
        if scenario.spillover is not None:
            spill_strata = service_strata(scenario.spillover.service, workload, tokens)
            self.spill = ServerlessFluid(scenario, scenario.spillover, inputs, spill_strata, rng)

    def simulate(self, policy: Policy, seed: int, epoch_s: float | None) -> RunResult:
        inputs, fleet, interval_s = self.inputs, self.fleet, self.interval_s
        duration = inputs.duration_s
        n_int = max(1, math.ceil(duration / interval_s - 1e-9))
        bounds = np.minimum(np.round(np.arange(n_int + 1) * interval_s).astype(np.int64), duration)
        cum_arr = np.concatenate([[0.0], np.cumsum(np.where(inputs.missing, 0.0, inputs.arrivals))])
        cum_obs = np.concatenate([[0], np.cumsum(~inputs.missing)])
        strata_packed = self.strata.packed()
        state = np.zeros(K.N_STATE)
        state[K.S_OCC_SERVICE_S] = self.strata.mean_s(1.0)
        ring = np.zeros(math.ceil(self.params[K.P_TIMEOUT_S]) + 2)
        ctab = np.zeros((fleet.max_replicas + 1, K.ERLANG_GRID))
        cdone = np.zeros(fleet.max_replicas + 1)
        hist = np.zeros(L.HIST_BINS)
        ihist = np.zeros(L.HIST_BINS)
        out = np.zeros(K.N_OUT)
        series = np.full((7, n_int), np.nan)
        totals = np.zeros(K.N_OUT)
        history: deque[MetricSample] = deque(maxlen=HISTORY_LEN)
        pool = self.scenario.pool
        min_r, max_r = pool.min_replicas, pool.max_replicas
        epoch = epoch_s
        spill = self.spill
        if spill is not None:
            sp_on, sp_service, sp_strata = True, spill.service_s, spill.strata.packed()
            vp, vs, dq_t, dq_v = spill.vp, spill.vs, spill.dq_t, spill.dq_v
        else:
            sp_on, sp_service, sp_strata = False, 1.0, strata_packed
            vp, vs, dq_t, dq_v = np.zeros(8), np.zeros(32), np.zeros(2), np.zeros(2)
        arrivals, lam, params = inputs.arrivals, self.lam, self.params
        ready_at, until = fleet.ready_arrays()
        for i in range(n_int):
            t0, t1 = int(bounds[i]), int(bounds[i + 1])
            if t1 <= t0:
                continue
            desired = fleet.desired
            K.advance(
                t0, t1, arrivals, lam, ready_at, until, desired, self.blocks, params,
                state, ring, ctab, cdone, hist, ihist, out,
                sp_on, sp_service, sp_strata, vp, vs, dq_t, dq_v,
            )  # fmt: skip
            totals += out
            if fleet.has_hazard:
                fleet.replace_dead(float(t1))
            seen = int(cum_obs[t1] - cum_obs[t0])
            demand = float(cum_arr[t1] - cum_arr[t0]) / seen if seen else None
            ready = fleet.ready(float(t1))
            ready_slot_s = out[K.O_READY_SLOT_S]
            util = out[K.O_BUSY_SLOT_S] / ready_slot_s if ready_slot_s > 0 else None
            p95 = float(out[K.O_P95_S])
            pending = fleet.pending(float(t1))
            if t1 >= duration:
                # the last, partial interval: a series row, no decision
                _row(series, i, t1, demand, ready, desired, pending, p95, fleet, spill)
                break
            obs = Observation(
                time_s=float(t1),
                interval_s=interval_s,
                demand_rps=demand,
                utilisation=util,
                queue_len=round(out[K.O_QUEUE_END]),
                ready=ready,
                pending=pending,
                desired=desired,
                min_replicas=min_r,
                max_replicas=max_r,
                replica_capacity_rps=self.capacity_rps,
                p95_latency_s=None if math.isnan(p95) else p95,
                epoch_s=epoch,
                history=tuple(history),
                spillover_in_flight=round(vs[V.V_BUSY]) if sp_on else 0,
            )
            decision = policy.decide(obs)
            if not isinstance(decision, Decision):
                raise PolicyError(
                    f"policy {policy.name!r} returned {type(decision).__name__}, not a Decision"
                )
            fleet.clock_s = float(t1)
            self._apply(fleet, int(decision.desired), decision.reason)
            if decision.spillover_provisioned is not None:
                if spill is None:
                    self._note(
                        "policy set spillover_provisioned but there is no spillover; ignored"
                    )
                else:
                    spill.clock_s = float(t1)
                    self._apply(spill, int(decision.spillover_provisioned), decision.reason)
            # the row and the history sample describe the state after the decision,
            # as the SimPy engine records them
            ready = fleet.ready(float(t1))
            pending = fleet.pending(float(t1))
            _row(series, i, t1, demand, ready, fleet.desired, pending, p95, fleet, spill)
            history.append(MetricSample(float(t1), demand, util, obs.ready, obs.desired))
        return self._result(policy, seed, totals, hist, series, duration)

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
        keep = ~np.isnan(series[0])
        ts = TimeSeries(
            time_s=series[0][keep],
            demand_rps=series[1][keep],
            ready=series[2][keep],
            desired=series[3][keep],
            pending=series[4][keep],
            p95_latency_s=series[5][keep],
            cost_usd=series[6][keep],
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


def _row(
    series: FloatArray,
    i: int,
    t1: int,
    demand: float | None,
    ready: int,
    desired: int,
    pending: int,
    p95: float,
    fleet: Fleet,
    spill: ServerlessFluid | None,
) -> None:
    """One series row (time, demand, ready, desired, pending, p95, cumulative cost)."""
    series[0, i] = t1
    series[1, i] = 0.0 if demand is None else demand
    series[2, i] = ready
    series[3, i] = desired
    series[4, i] = pending
    series[5, i] = p95
    series[6, i] = fleet.cost_usd(float(t1)) + (spill.cost_usd() if spill is not None else 0.0)
