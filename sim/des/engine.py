"""`DesEngine`: the request-level SimPy engine, the fidelity reference.

It replays every request through the capacity model of `sim.capacity` (central
queue, continuous batching, provisioning steps, spot reclaims, serverless cold
starts and keep-alive, spillover) and lets a policy act through the actuator
every `scenario.decision_interval_s`. See docs/des.md for the rules and the
fidelity checks against Erlang C and SimFaaS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim.contract import Policy
from sim.des.eventlog import LogEntry
from sim.des.serverless import SimServerlessPool
from sim.des.simulation import Simulation
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import FloatArray, Workload


@dataclass(frozen=True)
class PoolStats:
    """Figures of one pool that `RunResult` has no field for.

    Attributes:
        name: The pool's name.
        mean_instances: Time-average count of live serverless instances (warm,
            busy or starting); for instance pools, of ready replicas.
        cold_starts: Serverless cold starts (0 for instance pools).
        throttled: Requests a serverless pool refused at max concurrency.
    """

    name: str
    mean_instances: float
    cold_starts: int
    throttled: int


@dataclass(frozen=True)
class RequestRecord:
    """Per-request fates of a run, as arrays indexed by request number.

    Attributes:
        arrival_s: Arrival times.
        start_s: Last service start (NaN if never started).
        latency_s: End-to-end latency (NaN unless served).
        outcome: 0 in flight, 1 served, 2 dropped (`sim.des.requests` constants).
    """

    arrival_s: FloatArray
    start_s: FloatArray
    latency_s: FloatArray
    outcome: NDArray[np.uint8]


@dataclass(frozen=True)
class DesRun:
    """A run's `RunResult` plus what only the request-level engine knows."""

    result: RunResult
    log: tuple[LogEntry, ...]
    pools: dict[str, PoolStats]
    requests: RequestRecord


class DesEngine:
    """The SimPy request-level engine (`sim.engine.Engine`, name "des").

    Args:
        record_log: Keep a time-stamped event log in `DesRun.log` (slower).
    """

    name = "des"

    def __init__(self, *, record_log: bool = False) -> None:
        self.record_log = record_log

    def run(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
    ) -> RunResult:
        """Simulate `policy` on `workload` under `scenario`; same seed, same result."""
        return self.simulate(scenario, workload, policy, seed=seed, history=history).result

    def simulate(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
    ) -> DesRun:
        """Like `run`, with the event log and per-pool figures."""
        simulation = Simulation(
            scenario, workload, policy, seed=seed, history=history, record_log=self.record_log
        )
        result, log = simulation.execute()
        horizon_s = simulation.horizon_s
        pools: dict[str, PoolStats] = {}
        for pool in (simulation.main, simulation.spill):
            if pool is None:
                continue
            _, capacity_s = pool.busy_areas(horizon_s)
            if isinstance(pool, SimServerlessPool):
                mean = pool.instance_s / horizon_s
                cold, throttled = pool.cold_starts, pool.throttled
            else:
                mean = capacity_s / pool.pool.service.max_batch / horizon_s
                cold, throttled = 0, 0
            pools[pool.name] = PoolStats(pool.name, mean, cold, throttled)
        book = simulation.book
        requests = RequestRecord(
            arrival_s=np.array(book.arrival_s, dtype=np.float64),
            start_s=np.array(book.start_s, dtype=np.float64),
            latency_s=np.array(book.latency_s, dtype=np.float64),
            outcome=np.frombuffer(book.outcome, dtype=np.uint8).copy(),
        )
        return DesRun(result=result, log=log, pools=pools, requests=requests)
