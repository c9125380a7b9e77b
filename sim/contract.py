"""The decision contract: a frozen `Observation` in, a `Decision` with a reason out.

This module is the bottom of the stack, as Gymnasium's `Env` lives in its core:
the engines, the Gymnasium env and the live controller produce observations and
own actuators; `policies` builds on these types and nothing here imports it.

A policy reads no clock, file or SDK. Simulated time arrives in the observation;
anything learned from history arrives once, through `PolicyContext`, when a run
starts (`Policy.reset`). The unit of `desired` is serving replicas of the target.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sim.workload.model import Workload

_set_dict = object.__setattr__  # sets a frozen instance's fields at once (see `Decision`)

#: Name of the actuator target a decision's `desired` sets: the pool the policy scales.
PRIMARY = "pool"
#: Name of the serverless spillover endpoint's provisioned concurrency as a target.
SPILLOVER = "spillover"


@dataclass(frozen=True)
class MetricSample:
    """One past decision interval as the policy saw it."""

    time_s: float
    demand_rps: float | None
    utilisation: float | None
    ready: int
    desired: int


class MetricHistory:
    """A bounded ring buffer of past intervals with O(1) appends.

    The engines append one sample per decision; policies read it through
    `HistoryView` snapshots. Nothing is copied per interval: a snapshot is two
    integers and a reference. A windowed demand sum adds the window's samples,
    oldest first (O(samples in the window): policies ask for windows a few samples
    wide), the order in which the fluid engine's quiet spans add them, so both agree
    bit for bit (`sim.fluid.quiet_kernel.window_demand`).

    Args:
        capacity: Samples kept (older ones fall out).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"history capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.appended = 0
        # plain lists: a list item store costs a fraction of a numpy scalar store,
        # and one sample is appended every decision interval
        self._time = [0.0] * capacity
        self._demand = [math.nan] * capacity
        self._util = [math.nan] * capacity
        self._ready = [0] * capacity
        self._desired = [0] * capacity

    def append(
        self,
        time_s: float,
        demand_rps: float | None,
        utilisation: float | None,
        ready: int,
        desired: int,
    ) -> None:
        n, cap = self.appended, self.capacity
        slot = n % cap
        if n and time_s <= self._time[(n - 1) % cap]:
            raise ValueError(
                f"history times must increase: {time_s} after {self._time[(n - 1) % cap]}"
            )
        self._time[slot] = time_s
        self._demand[slot] = math.nan if demand_rps is None else demand_rps
        self._util[slot] = math.nan if utilisation is None else utilisation
        self._ready[slot] = ready
        self._desired[slot] = desired
        self.appended = n + 1

    def extend(
        self,
        times: Sequence[float],
        demands: Sequence[float | None],
        utilisations: Sequence[float],
        readies: Sequence[int],
        desired: int,
    ) -> None:
        """`append` each sample in turn (one `desired` for all; a NaN utilisation is a
        missing one), written a slice at a time: a quiet span appends hundreds.
        `times` must increase, from after the newest sample's."""
        count = len(times)
        n, cap = self.appended, self.capacity
        if not count:
            return
        if (n and times[0] <= self._time[(n - 1) % cap]) or times[-1] < times[0]:
            raise ValueError(f"history times must increase: {times[0]}..{times[-1]} after "
                             f"{self._time[(n - 1) % cap]}")  # fmt: skip
        columns: tuple[tuple[list[Any], Sequence[Any]], ...] = (
            (self._time, times),
            (self._demand, [math.nan if demand is None else demand for demand in demands]),
            (self._util, utilisations),
            (self._ready, readies),
        )
        skip = max(count - cap, 0)  # samples overwritten within this call
        start = (n + skip) % cap
        head = min(cap - start, count - skip)  # to the end of the ring, then from its start
        wrapped = count - skip - head  # samples written from the ring's start
        for ring, values in columns:
            ring[start : start + head] = values[skip : skip + head] if skip or wrapped else values
            if wrapped:
                ring[:wrapped] = values[skip + head :]
        self._desired[start : start + head] = [desired] * head
        if wrapped:
            self._desired[:wrapped] = [desired] * wrapped
        self.appended = n + count

    def view(self) -> HistoryView:
        """A read-only snapshot of the samples appended so far."""
        return HistoryView(self, self.appended)

    @classmethod
    def of(cls, samples: Sequence[MetricSample]) -> HistoryView:
        """A view of exactly `samples` (oldest first), e.g. for a test or a replay."""
        history = cls(max(len(samples), 1))
        for s in samples:
            history.append(s.time_s, s.demand_rps, s.utilisation, s.ready, s.desired)
        return history.view()


class HistoryView:
    """The most recent intervals, oldest first, as one observation saw them.

    Indexing, iteration and `len` give `MetricSample`s. A view stays valid while
    its samples are still in the buffer (at most `capacity` further appends);
    reading an overwritten sample raises, never returns a newer one.
    """

    __slots__ = ("_end", "_history")

    def __init__(self, history: MetricHistory | None = None, end: int = 0) -> None:
        self._history = history
        self._end = end

    def __len__(self) -> int:
        if self._history is None:
            return 0
        return min(self._end, self._history.capacity)

    def _absolute(self, index: int) -> int:
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"history index {index} out of range for {size} samples")
        assert self._history is not None
        self._require_fresh()
        return (self._end - size + index) % self._history.capacity

    def _require_fresh(self) -> None:
        """Raise if any of this view's samples has been overwritten since."""
        h = self._history
        if h is not None and self._end - len(self) < h.appended - h.capacity:
            raise IndexError("history view is stale: its samples were overwritten")

    def __getitem__(self, index: int) -> MetricSample:
        slot = self._absolute(index)
        h = self._history
        assert h is not None
        demand, util = float(h._demand[slot]), float(h._util[slot])
        return MetricSample(
            time_s=float(h._time[slot]),
            demand_rps=None if math.isnan(demand) else demand,
            utilisation=None if math.isnan(util) else util,
            ready=int(h._ready[slot]),
            desired=int(h._desired[slot]),
        )

    def __iter__(self) -> Iterator[MetricSample]:
        for index in range(len(self)):
            yield self[index]

    def demand_sum(self, after_s: float, before_s: float) -> tuple[float, int]:
        """Sum and count of the reported demand samples with after_s < time < before_s.

        Walks back from the newest sample to the window's edges (policies ask for
        recent windows, a few samples wide), then adds the samples inside, oldest
        first: O(samples in the window), with no per-sample object built. Missing
        (None or NaN) samples count in neither.
        """
        h = self._history
        if h is None or not self._end:
            return 0.0, 0
        # `len(self)` and `_require_fresh`, inline: predictive policies ask every interval
        cap, end = h.capacity, self._end
        size = end if end < cap else cap
        if end - size < h.appended - cap:
            raise IndexError("history view is stale: its samples were overwritten")
        times = h._time
        last = size  # samples [first, last) lie inside the window
        while last > 0 and times[(end - size + last - 1) % cap] >= before_s:
            last -= 1
        first = last
        while first > 0 and times[(end - size + first - 1) % cap] > after_s:
            first -= 1
        total, count = 0.0, 0
        demands, base = h._demand, end - size
        isfinite = math.isfinite
        for index in range(base + first, base + last):
            demand = demands[index % cap]
            if isfinite(demand):
                total += demand
                count += 1
        return total, count

    @property
    def capacity(self) -> int:
        """The most samples the buffer behind the view keeps (0: no buffer)."""
        return 0 if self._history is None else self._history.capacity


EMPTY_HISTORY = HistoryView()


def window_demand_rps(
    history: HistoryView, now_s: float, current: float | None, window_s: float
) -> float | None:
    """Mean reported demand over the last `window_s` before `now_s` with `current` (the
    demand of the interval ending at `now_s`): the samples of `history` in
    (now_s - window_s, now_s) and `current`; a missing (None or NaN) one counts in
    neither sum nor count. None when none was reported. O(samples in the window).
    """
    total, count = history.demand_sum(now_s - window_s, now_s)
    if current is not None and math.isfinite(current):
        total, count = total + current, count + 1
    return total / count if count else None


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
        history: The most recent intervals before this one, oldest first, bounded.
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
    history: HistoryView = EMPTY_HISTORY
    spillover_in_flight: int = 0

    @classmethod
    def build(cls, **fields: Any) -> Observation:
        """An Observation from every field by keyword, without the dataclass `__init__`.

        A frozen dataclass sets each of its 15 fields through `object.__setattr__`;
        the control loop builds one observation per decision interval (80,640 in a
        14-day run at 15 s), and this path is 3-4x cheaper. Every field must be given.
        """
        if len(fields) != _OBSERVATION_FIELDS:
            missing = sorted(set(cls.__dataclass_fields__) - set(fields))
            raise TypeError(f"Observation.build needs every field; missing {missing}")
        observation = object.__new__(cls)
        observation.__dict__.update(fields)
        return observation

    def replace(self, **changes: Any) -> Observation:
        """A copy with `changes` (what `dataclasses.replace` does, at `build`'s cost).

        Raises:
            TypeError: A name in `changes` is not a field.
        """
        if not _OBSERVATION_FIELD_NAMES.issuperset(changes):
            unknown = set(changes) - _OBSERVATION_FIELD_NAMES
            raise TypeError(f"Observation has no field(s) {sorted(unknown)}")
        copy = object.__new__(Observation)
        _set_dict(copy, "__dict__", {**self.__dict__, **changes})  # every field: a copy's
        return copy


_OBSERVATION_FIELD_NAMES = frozenset(Observation.__dataclass_fields__)
_OBSERVATION_FIELDS = len(_OBSERVATION_FIELD_NAMES)


@dataclass(frozen=True)
class Decision:
    """A desired capacity with the reason it was chosen.

    Attributes:
        desired: Replicas of the primary target (the pool the policy scales).
        reason: Why, recorded with every change.
        targets: Desired capacity of further named actuator targets, for policies
            that size more than one (e.g. `{SPILLOVER: 4}`: the serverless
            spillover's provisioned concurrency); a target not named is unchanged.
    """

    desired: int
    reason: str
    targets: Mapping[str, int] = field(default_factory=dict)

    def __init__(self, desired: int, reason: str, targets: Mapping[str, int] | None = None) -> None:
        # What the generated frozen `__init__` does (a new dict when `targets` is not
        # given), with the fields set at once: every policy builds one every interval,
        # and three `object.__setattr__` calls were half of that.
        _set_dict(self, "__dict__", {"desired": desired, "reason": reason,
                                     "targets": {} if targets is None else targets})  # fmt: skip


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
        rng: The run's seeded generator, for policies that explore.
        spillover_mean_service_s: Mean time one request occupies a serverless
            spillover instance (one request per instance); None when the scenario
            has no spillover pool.
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
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    spillover_mean_service_s: float | None = None


@runtime_checkable
class Policy(Protocol):
    """A scaling policy. `reset` starts a run; `decide` is called every interval."""

    name: str

    def reset(self, context: PolicyContext) -> None: ...

    def decide(self, observation: Observation) -> Decision: ...


@runtime_checkable
class Actuator(Protocol):
    """Something whose desired capacity (in serving replicas) can be read and set.

    After cluster-autoscaler's `NodeGroup`: the simulator's pools, the AWS actuator,
    the emitted stack config and `sim.actuator.InMemoryActuator` implement it, and
    the control loop (`sim.control`) is the one caller of `set_desired`.
    """

    def current(self) -> int:
        """The desired capacity currently in force."""
        ...

    def bounds(self) -> tuple[int, int]:
        """Inclusive (min, max) capacity the target accepts."""
        ...

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        """Request `desired` capacity at time `now_s`; `reason` goes to the audit trail."""
        ...
