"""The decision contract: a frozen `Observation` in, a `Decision` with a reason out.

A policy reads no clock, file or SDK. Simulated time arrives in the observation;
anything learned from history arrives once, through `PolicyContext`, when a run
starts (`Policy.reset`). The unit of `desired` is serving replicas of the pool the
policy scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from sim.workload.model import Workload

if TYPE_CHECKING:
    from sim.scenario import Scenario


@dataclass(frozen=True)
class MetricSample:
    """One past decision interval as the policy saw it."""

    time_s: float
    demand_rps: float | None
    utilisation: float | None
    ready: int
    desired: int


@dataclass(frozen=True)
class Observation:
    """What a policy sees at one decision point.

    Attributes:
        time_s: Simulated seconds since the start of the run.
        interval_s: Seconds between decisions.
        demand_rps: Arrivals per second over the last interval; None if the metric is missing.
        utilisation: Busy share of the ready replicas' batch slots over the last
            interval, 0..1; None if missing (no ready replica, or no metric).
        queue_len: Requests waiting for a batch slot now.
        ready: Replicas serving now.
        pending: Replicas requested and still provisioning.
        desired: The desired capacity currently in force.
        min_replicas: Lower bound of the pool.
        max_replicas: Upper bound of the pool.
        replica_capacity_rps: Requests per second one replica completes at a full
            batch, from the capacity model (for sizing from demand).
        p95_latency_s: 95th percentile latency of requests finished in the last
            interval; None if none finished.
        epoch_s: UTC seconds of t = 0, for calendar-based policies; None if unknown.
        history: The most recent intervals, oldest first, bounded in length.
        spillover_in_flight: Requests currently on the serverless spillover pool.
    """

    time_s: float
    interval_s: float
    demand_rps: float | None
    utilisation: float | None
    queue_len: int
    ready: int
    pending: int
    desired: int
    min_replicas: int
    max_replicas: int
    replica_capacity_rps: float
    p95_latency_s: float | None = None
    epoch_s: float | None = None
    history: tuple[MetricSample, ...] = ()
    spillover_in_flight: int = 0


@dataclass(frozen=True)
class Decision:
    """A desired capacity with the reason it was chosen.

    `spillover_provisioned` is set only by policies that also size a serverless
    spillover pool (its provisioned concurrency); None leaves it unchanged.
    """

    desired: int
    reason: str
    spillover_provisioned: int | None = None


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know before a run starts.

    Attributes:
        interval_s: Seconds between decisions.
        min_replicas: Lower bound of the pool.
        max_replicas: Upper bound of the pool.
        replica_capacity_rps: Full-batch throughput of one replica (requests/s).
        provisioning_s: Mean seconds from a scale-out request to a ready replica.
        slo_latency_s: Latency objective in seconds.
        slo_target: Required share of requests within `slo_latency_s`.
        mean_service_s: Mean service time of one request at a full batch.
        max_batch: Batch slots per replica.
        epoch_s: UTC seconds of t = 0, or None.
        history: Traffic before the run (for fitting forecasters), or None.
        future: The run's own traffic; given only to clairvoyant references (oracle).
        rng: The run's seeded generator, for policies that explore.
        spillover_mean_service_s: Mean time one request occupies a serverless
            spillover instance (one request per instance); None when the scenario
            has no spillover pool.
        scenario: The full scenario (capacity model, prices, SLO), given only to
            clairvoyant references (the oracle plans under the same capacity model);
            None for ordinary policies.
    """

    interval_s: float
    min_replicas: int
    max_replicas: int
    replica_capacity_rps: float
    provisioning_s: float
    slo_latency_s: float
    slo_target: float
    mean_service_s: float
    max_batch: int
    epoch_s: float | None = None
    history: Workload | None = None
    future: Workload | None = None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    spillover_mean_service_s: float | None = None
    scenario: Scenario | None = None


@runtime_checkable
class Policy(Protocol):
    """A scaling policy. `reset` starts a run; `decide` is called every interval."""

    name: str

    def reset(self, context: PolicyContext) -> None: ...

    def decide(self, observation: Observation) -> Decision: ...


class FixedPolicy:
    """Keeps a constant capacity: the baseline of a statically provisioned fleet."""

    def __init__(self, replicas: int, name: str = "fixed") -> None:
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")
        self.replicas = replicas
        self.name = name

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        desired = min(max(self.replicas, observation.min_replicas), observation.max_replicas)
        return Decision(desired, f"fixed at {desired}")
