"""Serverless endpoints in the fluid engine: as the main pool, or as spillover.

`ServerlessFluid` holds one endpoint's fluid state (see `serverless_kernel`) and
implements `sim.actuator.Actuator` for its provisioned concurrency, the only
capacity a policy sets on a serverless endpoint. Raised provisioned concurrency
serves after one mean cold start; lowered, it goes at once.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from policies.base import Decision, MetricSample, Observation, Policy
from sim.capacity.pools import ServerlessEndpoint
from sim.engine import OBSERVATION_HISTORY_LEN
from sim.errors import PolicyError
from sim.fluid import latency as L
from sim.fluid import serverless_kernel as V
from sim.fluid.inputs import SecondInputs, ServiceStrata, interval_bounds, interval_demand
from sim.result import RunResult, TimeSeries
from sim.scenario import Scenario


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
        self.prov_ready_s = 0.0
        self.desired = start
        self.actions = 0
        self.clock_s = 0.0

    # -- Actuator protocol (provisioned concurrency) ----------------------------
    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self.endpoint.min_replicas, self.endpoint.max_replicas

    def set_desired(self, desired: int, reason: str) -> None:
        low, high = self.bounds()
        if not low <= desired <= high:
            raise PolicyError(
                f"policy asked for provisioned concurrency {desired}, outside "
                f"[{low}, {high}] of endpoint {self.endpoint.name!r} ({reason}); clamp it"
            )
        if desired == self.desired:
            return
        self.actions += 1
        if desired > self.desired:
            self.prov_ready_s = self.clock_s + self.endpoint.cold_start_s.mean_s
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
        return round(self.vs[V.V_INSTANCES])

    def pending(self) -> int:
        return round(max(self.vs[V.V_CONFIGURED] - self.vs[V.V_PROVISIONED], 0.0))

    # -- a serverless main pool under a policy ------------------------------------
    def simulate(
        self,
        policy: Policy,
        capacity_rps: float,
        seed: int,
        blocks: np.ndarray,
        block_s: int,
    ) -> RunResult:
        """Run `policy` (which sets provisioned concurrency) over the whole workload."""
        inputs, scenario = self.inputs, self.scenario
        interval_s = scenario.decision_interval_s
        duration = inputs.duration_s
        bounds = interval_bounds(duration, interval_s)
        n_int = len(bounds) - 1
        demands = interval_demand(inputs, bounds)
        hist = np.zeros(L.HIST_BINS)
        ihist = np.zeros(L.HIST_BINS)
        rows: list[tuple[float, float, float, float, float, float, float]] = []
        history: deque[MetricSample] = deque(maxlen=OBSERVATION_HISTORY_LEN)
        vs = self.vs
        for i in range(n_int):
            t0, t1 = int(bounds[i]), int(bounds[i + 1])
            if t1 <= t0:
                continue
            busy_before, inst_before = vs[V.V_BUSY_S], vs[V.V_INSTANCE_S]
            V.sv_advance(
                t0, t1, inputs.arrivals, self.prov_ready_s, blocks, block_s,
                self.vp, vs, self.dq_t, self.dq_v, ihist,
            )  # fmt: skip
            hist += ihist
            demand = demands[i]
            inst_s = vs[V.V_INSTANCE_S] - inst_before
            util = (vs[V.V_BUSY_S] - busy_before) / inst_s if inst_s > 0 else None
            p95 = float(L.hist_quantile(ihist, 0.95))
            ready, pending = self.ready(), self.pending()
            rows.append(
                (float(t1), np.nan if demand is None else demand, float(ready),
                 float(self.desired), float(pending), p95, self.cost_usd())
            )  # fmt: skip
            if t1 >= duration:
                break
            history.append(MetricSample(float(t1), demand, util, ready, self.desired))
            obs = Observation(
                time_s=float(t1),
                interval_s=interval_s,
                demand_rps=demand,
                utilisation=util,
                queue_len=0,
                ready=ready,
                pending=pending,
                desired=self.desired,
                min_replicas=self.endpoint.min_replicas,
                max_replicas=self.endpoint.max_replicas,
                replica_capacity_rps=capacity_rps,
                p95_latency_s=None if math.isnan(p95) else p95,
                history=tuple(history),
            )
            decision = policy.decide(obs)
            if not isinstance(decision, Decision):
                raise PolicyError(f"policy {policy.name!r} returned a non-Decision")
            self.clock_s = float(t1)
            self.set_desired(int(decision.desired), decision.reason)
        return self.result(policy.name, seed, hist, rows)

    def result(
        self,
        policy_name: str,
        seed: int,
        hist: np.ndarray,
        rows: list[tuple[float, float, float, float, float, float, float]],
    ) -> RunResult:
        vs = self.vs
        arrivals, served, dropped = vs[V.V_ARRIVALS], vs[V.V_SERVED], vs[V.V_DROPPED]
        finished = served + dropped
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 7).T
        cost = self.cost_usd()
        return RunResult(
            policy=policy_name,
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
        )
