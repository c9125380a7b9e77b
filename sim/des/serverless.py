"""A serverless endpoint (SageMaker serverless semantics), request by request.

Rules (see docs/des.md):

* One request per instance. An arrival takes an idle provisioned instance first
  (AWS routes to provisioned concurrency before on-demand), else the newest idle
  on-demand instance (as SimFaaS does: it concentrates load so older instances
  expire), else it cold-starts a new instance (`cold_start_s`, then service) if
  fewer than `max_replicas` (max concurrency) instances exist, else it is
  throttled: SageMaker answers ThrottlingException, so the request is dropped.
* An on-demand instance expires `keep_alive_s` after it last became idle;
  provisioned instances never expire. Raising provisioned concurrency creates
  instances that are ready after a cold start; lowering it terminates idle
  provisioned instances now and turns busy ones into on-demand instances.
* Billing: each request's service time rounded up to `billing_granularity_s` x
  memory x `price_usd_per_gb_s` (the cold start is not billed, as SageMaker bills
  inference duration), plus configured provisioned concurrency x memory x
  `provisioned_usd_per_gb_s` for the time it is configured.

Nothing outside the pool observes it between arrivals and decision ticks, so its
internal transitions (completions, cold starts finishing, keep-alive expiries) are
kept in a private time-ordered heap and applied, in time order, whenever the pool
is touched (`advance`). That is exact and saves two SimPy events per request. The
per-request work (catching up, admitting) is compiled: `sim.des.serverless_kernel`
holds it and describes the state arrays this class keeps.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable

import numpy as np
import simpy

from sim.capacity.pools import ServerlessEndpoint
from sim.des import serverless_kernel as K
from sim.des.actuation import DesiredCapacity
from sim.des.billing import billed_s
from sim.des.nodes import LogSink
from sim.des.requests import RequestBook
from sim.des.streams import ServiceSampler, stream

_INF = float("inf")
#: Cold-start delays drawn at a time (their stream serves nothing else, so drawing
#: ahead changes no value).
_COLD_CHUNK = 256
_EVENT_NAMES = ("expire", "finish", "warm_start", "cold_start", "drop")


class SimServerlessPool(DesiredCapacity):
    """The simulator's serverless endpoint; implements `sim.actuator.Actuator`.

    Its desired capacity is the provisioned concurrency; on-demand instances come
    and go with the traffic.

    Args:
        env: The SimPy environment.
        pool: The endpoint's model.
        book: The run's request book.
        seed: The run's seed.
        role: "pool" (the scenario's main pool) or "spillover"; picks the streams.
        log: A list to append log tuples to, or None.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: ServerlessEndpoint,
        book: RequestBook,
        seed: int,
        role: str = "pool",
        log: LogSink = None,
    ) -> None:
        super().__init__(env, pool, log)
        self.pool = pool
        self._book = book
        # One instance serves one request, so service times do not depend on a batch:
        # draw them for every request at once (one vectorised call), billed alike.
        self._service_s = np.ascontiguousarray(
            ServiceSampler(
                pool.service,
                stream(seed, f"{role}.service"),
                book.input_tokens_array,
                book.output_tokens_array,
            ).per_request(),
            dtype=np.float64,
        )
        self._billed_s = billed_s(self._service_s, pool.billing_granularity_s)
        # the book's arrays, seen as numpy arrays (views: the kernel writes the book)
        self._arrival = np.frombuffer(book.arrival_s, dtype=np.float64)
        self._start_at = np.frombuffer(book.start_s, dtype=np.float64)
        self._latency_at = np.frombuffer(book.latency_s, dtype=np.float64)
        self._outcome = np.frombuffer(book.outcome, dtype=np.uint8)
        self._cold_rng = stream(seed, f"{role}.cold_start")
        self._prov_rng = stream(seed, f"{role}.provisioning")
        self._max = pool.max_replicas
        self._keep_alive_s = pool.keep_alive_s
        # the state the kernel works on (see `sim.des.serverless_kernel`)
        self._n = np.zeros(K.N_FIELDS, dtype=np.int64)
        self._f = np.zeros(K.F_FIELDS, dtype=np.float64)
        self._f[K.F_NEXT_S] = _INF
        self._heap = np.zeros((64, 5), dtype=np.float64)
        self._expiries = np.zeros((64, 3), dtype=np.float64)
        self._per_id = np.zeros((K.ID_ROWS, 64), dtype=np.int64)
        self._per_id[K.ROW_GEN] = -1
        self._cold = np.zeros(0, dtype=np.float64)
        self._latencies = np.zeros(64, dtype=np.float64)
        self._events = np.zeros((64 if log is not None else 1, 4), dtype=np.float64)
        self._next_s = _INF  # the earliest pending transition (`advance` reads it)
        for _ in range(self.desired):
            instance = self._new_instance()
            self._per_id[K.ROW_PC, instance] = 1
            self._push_idle_pc(instance)

    # --- counters and areas, kept in the kernel's arrays --------------------------------

    @property
    def instances(self) -> int:
        """Live instances: warm (idle or busy) or starting."""
        return int(self._n[K.N_INSTANCES])

    @property
    def busy(self) -> int:
        return int(self._n[K.N_BUSY])

    @property
    def starting(self) -> int:
        return int(self._n[K.N_STARTING])

    @property
    def cold_starts(self) -> int:
        return int(self._n[K.N_COLD_STARTS])

    @property
    def throttled(self) -> int:
        return int(self._n[K.N_THROTTLED])

    @property
    def instance_s(self) -> float:
        return float(self._f[K.F_INSTANCE_S])

    @property
    def busy_s(self) -> float:
        return float(self._f[K.F_BUSY_S])

    @property
    def provisioned_s(self) -> float:
        return float(self._f[K.F_PROVISIONED_S])

    @property
    def billed_busy_s(self) -> float:
        return float(self._f[K.F_BILLED_BUSY_S])

    # --- Actuator protocol: the desired count is the provisioned concurrency ------------

    def _before_change(self, now_s: float) -> None:
        self.advance(now_s)
        self._touch(now_s)

    def _after_change(self, previous: int, now_s: float) -> None:
        change = self.desired - previous
        for _ in range(change):
            self._provision_one(now_s)
        for _ in range(-change):
            self._unprovision_one()

    def _provision_one(self, now_s: float) -> None:
        """One more provisioned instance, within max concurrency.

        Provisioned concurrency counts toward the endpoint's max concurrency
        (SageMaker: ProvisionedConcurrency <= MaxConcurrency), so at the limit an
        idle on-demand instance is kept as provisioned (it is warm already), and
        failing that the next on-demand instance to finish becomes provisioned.
        """
        n = self._n
        if n[K.N_INSTANCES] < self._max:
            instance = self._new_instance()  # may grow the arrays
            per_id = self._per_id
            per_id[K.ROW_PC, instance] = 1
            per_id[K.ROW_PC_INIT, instance] = 1
            n[K.N_STARTING] += 1
            self._push(now_s + self.pool.cold_start_s.sample(self._prov_rng), K.PC_READY, instance)
        elif n[K.N_IDLE]:
            per_id = self._per_id
            n[K.N_IDLE] -= 1
            instance = int(per_id[K.ROW_IDLE, n[K.N_IDLE]])  # the newest idle one
            # a new generation cancels its pending expiry (generations only grow, so
            # an old expiry never matches should it become on-demand again)
            per_id[K.ROW_GEN, instance] += 1
            per_id[K.ROW_PC, instance] = 1
            self._push_idle_pc(instance)
        else:
            n[K.N_OWED] += 1

    def _unprovision_one(self) -> None:
        n, per_id = self._n, self._per_id
        if n[K.N_OWED]:
            n[K.N_OWED] -= 1
        elif n[K.N_IDLE_PC]:
            n[K.N_IDLE_PC] -= 1
            per_id[K.ROW_PC, per_id[K.ROW_IDLE_PC, n[K.N_IDLE_PC]]] = 0
            n[K.N_INSTANCES] -= 1
        elif per_id[K.ROW_PC_INIT].any():
            instance = int(np.flatnonzero(per_id[K.ROW_PC_INIT])[-1])  # the newest
            per_id[K.ROW_PC_INIT, instance] = 0
            per_id[K.ROW_PC, instance] = 0
            n[K.N_INSTANCES] -= 1
            n[K.N_STARTING] -= 1
        else:  # busy: becomes on-demand when it finishes
            per_id[K.ROW_PC, int(np.flatnonzero(per_id[K.ROW_PC])[-1])] = 0

    # --- observation -------------------------------------------------------------------

    @property
    def ready(self) -> int:
        n = self._n
        return int(n[K.N_INSTANCES] - n[K.N_STARTING])

    @property
    def pending(self) -> int:
        return int(self._n[K.N_STARTING])

    def queue_len(self, now_s: float) -> int:
        del now_s
        return 0

    def busy_areas(self, now_s: float) -> tuple[float, float]:
        """Cumulative (busy instance-seconds, instance-seconds) up to `now_s`."""
        self.advance(now_s)
        self._touch(now_s)
        f = self._f
        return float(f[K.F_BUSY_S]), float(f[K.F_INSTANCE_S])

    def cost_usd(self, now_s: float, *, final: bool = False) -> float:
        del final
        self.advance(now_s)
        self._touch(now_s)
        pool = self.pool
        return pool.memory_gb * (
            self.billed_busy_s * pool.price_usd_per_gb_s
            + self.provisioned_s * pool.provisioned_usd_per_gb_s
        )

    def finish(self, now_s: float) -> int:
        """Close the run at `now_s`; return requests still in service."""
        self.advance(now_s)
        return self.busy

    def can_accept(self, now_s: float) -> bool:
        """Whether a request arriving now would start (warm or cold), not be throttled."""
        self.advance(now_s)
        n = self._n
        return bool(n[K.N_IDLE_PC] or n[K.N_IDLE] or n[K.N_INSTANCES] < self._max)

    # --- requests ----------------------------------------------------------------------

    def submit(self, request: int, now_s: float) -> None:
        """A request arrives at `now_s`: warm start, cold start, or throttle."""
        self._admit(request, request + 1, now_s)

    def submit_until(self, first: int, peek: Callable[[], float]) -> int:
        """Requests from `first` on arrive, each at its own arrival time, until one is
        not due before `peek()` (the next scheduled SimPy event); return its index.

        The pool schedules no SimPy event, so `peek()` stays put and one bisection
        finds the stop (`first` always arrives).
        """
        arrival = self._book.arrival_s
        stop = bisect_left(arrival, peek(), first + 1, len(arrival))
        self._admit(first, stop, None)
        return stop

    def advance(self, now_s: float) -> None:
        """Apply every internal transition due at or before `now_s`, in time order."""
        if self._next_s <= now_s:
            self._admit(0, 0, now_s)

    def _admit(self, first: int, stop: int, at_s: float | None) -> None:
        """Catch up and start (or throttle) requests `first`..`stop - 1` in the kernel.

        Each request arrives at `at_s`, or at its arrival time when `at_s` is None;
        with no request (`first == stop`) the pool only catches up to `at_s`. The
        kernel stops early when a buffer is full or the cold-start draws are used
        up; each such stop is met here (grow, draw more) and the call resumed.
        """
        n, book, log = self._n, self._book, self._log
        at_arrival = at_s is None
        while True:
            first = K.admit(
                first, stop, math.nan if at_s is None else at_s, at_arrival,
                self.desired, self._max, self._keep_alive_s,
                self._arrival, self._start_at, self._latency_at, self._outcome,
                self._service_s, self._billed_s, self._cold,
                n, self._f, self._heap, self._expiries, self._per_id,
                self._latencies, self._events, log is not None,
            )  # fmt: skip
            if n[K.N_SERVED]:
                book.served += int(n[K.N_SERVED])
                book.interval_latencies += self._latencies[: n[K.N_LATENCIES]].tolist()
            if n[K.N_DROPPED]:
                book.dropped += int(n[K.N_DROPPED])
            if log is not None and n[K.N_EVENTS]:
                self._flush_events(log, int(n[K.N_EVENTS]))
            why = n[K.N_STOP]
            if why == K.STOP_DONE:
                break
            if why == K.STOP_COLD:
                self._draw_cold()
            else:
                self._grow()
        self._next_s = float(self._f[K.F_NEXT_S])

    # --- state upkeep (rare: growth, draws, provisioned concurrency) --------------------

    def _flush_events(self, log: list[tuple[float, str, str, str]], count: int) -> None:
        name = self.name
        for time_s, code, instance, request in self._events[:count].tolist():
            kind = _EVENT_NAMES[int(code)]
            if kind == "expire":
                detail = f"instance={int(instance)}"
            elif kind == "drop":
                detail = f"req={int(request)} throttled"
            else:
                detail = f"req={int(request)} instance={int(instance)}"
            log.append((time_s, name, kind, detail))

    def _draw_cold(self) -> None:
        """Keep the unused cold-start draws and add the next chunk of the stream."""
        n = self._n
        rest = self._cold[n[K.N_COLD_USED] : n[K.N_COLD_DRAWN]]
        more = self.pool.cold_start_s.sample_many(self._cold_rng, _COLD_CHUNK)
        self._cold = np.concatenate([rest, more])
        n[K.N_COLD_USED], n[K.N_COLD_DRAWN] = 0, self._cold.size

    def _grow(self) -> None:
        """Double every buffer that is full or nearly so (the kernel said one is)."""
        n = self._n
        if n[K.N_HEAP] + 2 > len(self._heap):
            self._heap = np.concatenate([self._heap, np.zeros_like(self._heap)])
        if n[K.N_EXP] + 1 > len(self._expiries):
            # unwrap the ring: oldest first from row 0
            order = (n[K.N_EXP_HEAD] + np.arange(n[K.N_EXP])) % len(self._expiries)
            grown = np.zeros((2 * len(self._expiries), 3), dtype=np.float64)
            grown[: n[K.N_EXP]] = self._expiries[order]
            self._expiries, n[K.N_EXP_HEAD] = grown, 0
        if n[K.N_IDS] + 2 > self._per_id.shape[1]:
            grown_ids = np.zeros((K.ID_ROWS, 2 * self._per_id.shape[1]), dtype=np.int64)
            grown_ids[K.ROW_GEN] = -1
            grown_ids[:, : self._per_id.shape[1]] = self._per_id
            self._per_id = grown_ids
        if n[K.N_LATENCIES] >= len(self._latencies):
            self._latencies = np.zeros(2 * len(self._latencies), dtype=np.float64)
        if self._log is not None and n[K.N_EVENTS] >= len(self._events):
            self._events = np.zeros((2 * len(self._events), 4), dtype=np.float64)

    def _new_instance(self) -> int:
        n = self._n
        if n[K.N_IDS] + 2 > self._per_id.shape[1]:
            self._grow()
        n[K.N_IDS] += 1
        n[K.N_INSTANCES] += 1
        return int(n[K.N_IDS])

    def _push_idle_pc(self, instance: int) -> None:
        n = self._n
        self._per_id[K.ROW_IDLE_PC, n[K.N_IDLE_PC]] = instance
        n[K.N_IDLE_PC] += 1

    def _push(self, time_s: float, kind: int, instance: int) -> None:
        n = self._n
        if n[K.N_HEAP] + 2 > len(self._heap):
            self._grow()
        n[K.N_SEQ] += 1
        n[K.N_HEAP] = K.heap_push(
            self._heap, int(n[K.N_HEAP]), time_s, int(n[K.N_SEQ]), kind, instance, -1
        )
        self._next_s = min(self._next_s, time_s)
        self._f[K.F_NEXT_S] = self._next_s

    def _touch(self, now_s: float) -> None:
        f, n = self._f, self._n
        area_t = float(f[K.F_AREA_T])
        elapsed = now_s - area_t
        if elapsed > 0.0:
            f[K.F_INSTANCE_S] = float(f[K.F_INSTANCE_S]) + int(n[K.N_INSTANCES]) * elapsed
            f[K.F_BUSY_S] = float(f[K.F_BUSY_S]) + int(n[K.N_BUSY]) * elapsed
            f[K.F_PROVISIONED_S] = float(f[K.F_PROVISIONED_S]) + self.desired * elapsed
            f[K.F_AREA_T] = now_s
