"""Requests of one run: their arrivals, sizes and fates (served, dropped, in flight).

The book is a set of parallel flat arrays indexed by request number rather than
one object per request: the engine touches a request a handful of times, and
indexing is the cheapest state a CPython event loop can keep.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import numpy as np

from sim.errors import ScenarioError
from sim.workload.arrivals import to_requests
from sim.workload.build import expected_requests
from sim.workload.memory import check_memory
from sim.workload.model import FloatArray, RateEnvelope, Workload

IN_FLIGHT = 0
SERVED = 1
DROPPED = 2


@dataclass(frozen=True)
class Arrivals:
    """Arrival times and token counts the engine replays, sorted by time."""

    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    duration_s: float
    missing: tuple[tuple[float, float], ...] = ()


def arrivals_from(workload: Workload, rng: np.random.Generator) -> Arrivals:
    """Request-level arrivals of a workload, through `sim.workload.to_requests`.

    A `RequestTrace` is replayed as is (token counts drawn from the default
    `TokenProfile` where it has none); a `RateEnvelope` is sampled into requests
    by the workload package's own seeded generator. Arrivals outside
    [0, duration_s) are not replayed.

    Raises:
        ScenarioError: the workload has no duration or unsorted arrivals, or an
            envelope's requests would not fit in memory.
    """
    if isinstance(workload, RateEnvelope):  # the DES holds every sampled request
        check_memory(expected_requests(workload), f"the DES replaying {workload.source}")
    trace = to_requests(workload, rng)
    if trace.duration_s <= 0.0:
        raise ScenarioError(f"workload {trace.source!r} has duration_s <= 0; give it a window")
    arrival = np.asarray(trace.arrival_s, dtype=np.float64)
    if arrival.size > 1 and bool(np.any(np.diff(arrival) < 0.0)):
        raise ScenarioError(f"workload {trace.source!r}: arrival_s is not sorted; sort it")
    keep = (arrival >= 0.0) & (arrival < trace.duration_s)
    if trace.input_tokens is None or trace.output_tokens is None:
        raise RuntimeError("sim.workload.to_requests returned a trace without token counts")
    return Arrivals(
        arrival_s=arrival[keep],
        input_tokens=np.asarray(trace.input_tokens, dtype=np.float64)[keep],
        output_tokens=np.asarray(trace.output_tokens, dtype=np.float64)[keep],
        duration_s=float(trace.duration_s),
        missing=tuple((float(a), float(b)) for a, b in trace.missing),
    )


class RequestBook:
    """Per-request fate and the current interval's completions.

    Attributes:
        arrival_s: Arrival time of each request.
        input_tokens: Prompt tokens of each request.
        output_tokens: Output tokens of each request.
        start_s: When each request last started service (NaN if it never did); its
            queueing delay is start_s - arrival_s when it was never retried.
        latency_s: End-to-end latency of served requests (NaN otherwise).
        outcome: IN_FLIGHT, SERVED or DROPPED per request.
        retried: Re-queued executions (spot reclaims, node failures).
        interval_latencies: Latencies of requests finished in the current interval.
    """

    def __init__(self, arrivals: Arrivals) -> None:
        n = int(arrivals.arrival_s.size)
        self.input_tokens_array = arrivals.input_tokens
        self.output_tokens_array = arrivals.output_tokens
        # array('d'): 8 bytes a value instead of a list's 32 (pointer plus float
        # object), which matters for day-long traces at 100 req/s; indexing costs
        # about the same.
        self.arrival_s = array("d", arrivals.arrival_s.tobytes())
        self.input_tokens = array("d", arrivals.input_tokens.tobytes())
        self.output_tokens = array("d", arrivals.output_tokens.tobytes())
        self.start_s = array("d", np.full(n, math.nan).tobytes())
        self.latency_s = array("d", np.full(n, math.nan).tobytes())
        self.outcome = bytearray(n)
        self.served = 0
        self.dropped = 0
        self.retried = 0
        self.interval_latencies: list[float] = []

    def serve(self, request: int, now_s: float) -> None:
        latency = now_s - self.arrival_s[request]
        self.latency_s[request] = latency
        self.outcome[request] = SERVED
        self.served += 1
        self.interval_latencies.append(latency)

    def drop(self, request: int) -> None:
        self.outcome[request] = DROPPED
        self.dropped += 1

    def new_interval(self) -> None:
        self.interval_latencies = []
