"""Serverless endpoints in the fluid engine: as the main pool, or as spillover.

`ServerlessFluid` holds one endpoint's fluid state (see `serverless_kernel`) and
implements `sim.actuator.Actuator` for its provisioned concurrency, the only
capacity a policy sets on a serverless endpoint. Raised provisioned concurrency
serves after one mean cold start; lowered, it goes at once.
"""

from __future__ import annotations

import math

import numpy as np

from sim.capacity.pools import ServerlessEndpoint
from sim.contract import PRIMARY, Actuator, Observation
from sim.control import ControlLoop, Reading, drive
from sim.engine import token_profile
from sim.fluid import latency as L
from sim.fluid import serverless_kernel as V
from sim.fluid.inputs import (
    SecondInputs,
    ServiceStrata,
    block_strata,
    interval_bounds,
    interval_demand,
    service_strata,
)
from sim.result import RunResult, TimeSeries
from sim.scenario import Scenario
from sim.workload.model import Workload


class ServerlessFluid:
    """Fluid state of one serverless endpoint."""

    def __init__(
        self,
        scenario: Scenario,
        endpoint: ServerlessEndpoint,
        inputs: SecondInputs,
        strata: ServiceStrata,
        rng: np.random.Generator,
    ) -> None:
        self.scenario = scenario
        self.endpoint = endpoint
        self.inputs = inputs
        self.strata = strata
        self.rng = rng
        self.service_s = strata.mean_s(1.0)
        self.vp = np.zeros(V.N_VPARAMS)
        self.vp[V.V_MAX] = endpoint.max_replicas
        self.vp[V.V_KEEP_ALIVE_S] = endpoint.keep_alive_s
        self.vp[V.V_COLD_S] = endpoint.cold_start_s.mean_s
        self.vp[V.V_SLO_S] = scenario.slo.latency_s
        self.vp[V.V_THROTTLE_DROPS] = 1.0 if endpoint is scenario.pool else 0.0
        self.vs = np.zeros(V.N_VSTATE)
        start = endpoint.start_replicas
        self.vs[V.V_CONFIGURED] = start
        self.vs[V.V_PROVISIONED] = start
        self.vs[V.V_INSTANCES] = start
        size = math.ceil(endpoint.keep_alive_s) + 3
        self.dq_t = np.zeros(size)
        self.dq_v = np.zeros(size)
        self.cw = np.zeros(V.cold_ring_len(endpoint.cold_start_s.mean_s))
        self.prov_ready_s = 0.0
        self.desired = start
        self.actions = 0

    # -- Actuator protocol (provisioned concurrency) ----------------------------
    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self.endpoint.min_replicas, self.endpoint.max_replicas

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        """Set provisioned concurrency at `now_s` (the control loop clamps first)."""
        low, high = self.bounds()
        if not low <= desired <= high:
            raise ValueError(
                f"provisioned concurrency {desired} outside [{low}, {high}] of endpoint "
                f"{self.endpoint.name!r} ({reason})"
            )
        if desired == self.desired:
            return
        self.actions += 1
        if desired > self.desired:
            self.prov_ready_s = now_s + self.endpoint.cold_start_s.mean_s
        else:
            self.vs[V.V_PROVISIONED] = min(self.vs[V.V_PROVISIONED], desired)
        self.vs[V.V_CONFIGURED] = desired
        self.desired = desired

    # -- read-outs -------------------------------------------------------------
    def cost_usd(self) -> float:
        ep = self.endpoint
        return float(
            ep.memory_gb
            * (
                self.vs[V.V_BUSY_S] * ep.price_usd_per_gb_s
                + self.vs[V.V_PROV_S] * ep.provisioned_usd_per_gb_s
            )
        )

    def ready(self) -> int:
        """Instances up (warm, idle or busy): those in a cold start are pending, as in
        the SimPy engine."""
        return round(max(self.vs[V.V_INSTANCES] - self.vs[V.V_STARTING], 0.0))

    def pending(self) -> int:
        """Instances in a cold start: a request's, or provisioned concurrency's."""
        vs = self.vs
        return round(vs[V.V_STARTING] + max(vs[V.V_CONFIGURED] - vs[V.V_PROVISIONED], 0.0))

    def actuators(self) -> dict[str, Actuator]:
        return {PRIMARY: self}


class ServerlessRun(ServerlessFluid):
    """A steppable run of a serverless endpoint as the main pool.

    The policy sets its provisioned concurrency through the control loop.
    """

    def __init__(
        self,
        scenario: Scenario,
        endpoint: ServerlessEndpoint,
        workload: Workload,
        inputs: SecondInputs,
        rng: np.random.Generator,
        block_s: int,
    ) -> None:
        tokens = token_profile(workload)
        strata = service_strata(endpoint.service, workload, tokens)
        super().__init__(scenario, endpoint, inputs, strata, rng)
        self.blocks = block_strata(
            endpoint.service, workload, tokens, inputs.duration_s, block_s, strata
        )
        self.block_s = block_s
        self.duration = inputs.duration_s
        bounds = interval_bounds(self.duration, scenario.decision_interval_s)
        self._edges = [int(b) for b in bounds]
        self.demands = interval_demand(inputs, bounds)
        self.hist = np.zeros(L.HIST_BINS)
        self.ihist = np.zeros(L.HIST_BINS)
        self.rows: list[tuple[float, float, float, float, float, float, float]] = []
        self._index = 0
        self._last: tuple[float | None, float | None, float] = (None, None, math.nan)

    def simulate(self, loop: ControlLoop, seed: int) -> RunResult:
        """Run `loop` over the whole workload."""
        drive(self, loop)
        return self.result(loop, seed)

    def advance(self) -> float | None:
        """Advance over the next decision interval; None once the run is over."""
        bounds, vs = self._edges, self.vs
        while self._index < len(bounds) - 1:
            i = self._index
            self._index += 1
            t0, t1 = bounds[i], bounds[i + 1]
            if t1 <= t0:
                continue
            busy_before, inst_before = vs[V.V_OCCUPIED_S], vs[V.V_INSTANCE_S]
            V.sv_advance(
                t0, t1, self.inputs.arrivals, self.prov_ready_s, self.blocks, self.block_s,
                self.vp, vs, self.dq_t, self.dq_v, self.cw, self.ihist,
            )  # fmt: skip
            self.hist += self.ihist
            inst_s = vs[V.V_INSTANCE_S] - inst_before
            # busy or cold-starting over all instances, as the SimPy engine's busy area
            util = (vs[V.V_OCCUPIED_S] - busy_before) / inst_s if inst_s > 0 else None
            self._last = (self.demands[i], util, float(L.hist_quantile(self.ihist, 0.95)))
            if t1 >= self.duration:
                self._row(float(t1))
                self._index = len(bounds)
                return None
            return float(t1)
        return None

    def read(self, now_s: float) -> Reading:
        demand, util, p95 = self._last
        return Reading(
            time_s=now_s,
            demand_rps=demand,
            utilisation=util,
            queue_len=0,
            ready=self.ready(),
            pending=self.pending(),
            p95_latency_s=None if math.isnan(p95) else p95,
        )

    def record(self, now_s: float, observation: Observation) -> None:
        del observation
        self._row(now_s)

    def _row(self, now_s: float) -> None:
        """A series row: the state after the decision, as the SimPy engine records it."""
        demand, _, p95 = self._last
        self.rows.append(
            (now_s, np.nan if demand is None else demand, float(self.ready()),
             float(self.desired), float(self.pending()), p95, self.cost_usd())
        )  # fmt: skip

    def result(self, loop: ControlLoop, seed: int) -> RunResult:
        """The run's result (after the last `advance`)."""
        hist, rows = self.hist, self.rows
        vs = self.vs
        arrivals, served, dropped = vs[V.V_ARRIVALS], vs[V.V_SERVED], vs[V.V_DROPPED]
        finished = served + dropped
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 7).T
        cost = self.cost_usd()
        return RunResult(
            policy=loop.policy.name,
            engine="fluid",
            seed=seed,
            cost_usd=cost,
            cost_by_pool={self.endpoint.name: cost},
            gpu_hours=0.0,  # SageMaker serverless has no GPUs
            arrivals=round(arrivals),
            served=round(served),
            dropped=round(dropped),
            in_flight=0,
            slo_attainment=float(vs[V.V_ATTAINED] / finished) if finished > 0 else 1.0,
            slo_target=self.scenario.slo.target_attainment,
            p50_latency_s=float(L.hist_quantile(hist, 0.50)),
            p95_latency_s=float(L.hist_quantile(hist, 0.95)),
            p99_latency_s=float(L.hist_quantile(hist, 0.99)),
            scaling_actions=self.actions,
            series=TimeSeries(*table),
            cold_starts=round(vs[V.V_COLD_STARTS]),
            notes=tuple(loop.run_notes()),
            decisions=tuple(loop.records),
        )
