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
is touched (`advance`). That is exact and saves two SimPy events per request.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable

import simpy

from sim.capacity.pools import ServerlessEndpoint
from sim.des.actuation import DesiredCapacity
from sim.des.billing import billed_s
from sim.des.nodes import LogSink
from sim.des.requests import SERVED, RequestBook
from sim.des.streams import ServiceSampler, stream

_DONE, _WARM, _PC_READY = 0, 1, 2
_INF = float("inf")


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
        service_s = ServiceSampler(
            pool.service,
            stream(seed, f"{role}.service"),
            book.input_tokens_array,
            book.output_tokens_array,
        ).per_request()
        self._service_s = array("d", service_s.tobytes())
        self._billed_s = array("d", billed_s(service_s, pool.billing_granularity_s).tobytes())
        self._cold_rng = stream(seed, f"{role}.cold_start")
        self._prov_rng = stream(seed, f"{role}.provisioning")
        self._max = pool.max_replicas
        self._keep_alive_s = pool.keep_alive_s
        # (time_s, seq, kind, instance, request): completions, cold starts, PC init.
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._expiries: deque[tuple[float, int, int]] = deque()  # (expire_s, instance, gen)
        self._seq = 0
        self._ids = 0
        self._idle: list[int] = []  # idle on-demand instances, ascending id (newest last)
        self._idle_pc: list[int] = []  # idle provisioned instances
        self._pc: set[int] = set()  # provisioned instances (idle, busy or initialising)
        self._pc_init: set[int] = set()  # provisioned instances still initialising
        self._gen: dict[int, int] = {}  # idle generation of on-demand instances
        # provisioned instances configured but not yet placed: every instance was
        # busy at max concurrency when they were asked for
        self._pc_owed = 0
        self.instances = 0
        self.busy = 0
        self.starting = 0
        self.cold_starts = 0
        self.throttled = 0
        self._area_t = 0.0
        self.instance_s = 0.0
        self.busy_s = 0.0
        self.provisioned_s = 0.0
        self.billed_busy_s = 0.0
        for _ in range(self.desired):
            instance = self._new_instance()
            self._pc.add(instance)
            self._idle_pc.append(instance)

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
        if self.instances < self._max:
            instance = self._new_instance()
            self._pc.add(instance)
            self._pc_init.add(instance)
            self.starting += 1
            self._push(now_s + self.pool.cold_start_s.sample(self._prov_rng), _PC_READY, instance)
        elif self._idle:
            instance = self._idle.pop()
            # a new generation cancels its pending expiry (generations only grow, so
            # an old expiry never matches should it become on-demand again)
            self._gen[instance] += 1
            self._pc.add(instance)
            self._idle_pc.append(instance)
        else:
            self._pc_owed += 1

    def _unprovision_one(self) -> None:
        if self._pc_owed:
            self._pc_owed -= 1
        elif self._idle_pc:
            instance = self._idle_pc.pop()
            self._pc.discard(instance)
            self.instances -= 1
        elif self._pc_init:
            instance = max(self._pc_init)
            self._pc_init.discard(instance)
            self._pc.discard(instance)
            self.instances -= 1
            self.starting -= 1
        else:
            self._pc.discard(max(self._pc))  # busy: becomes on-demand when it finishes

    # --- observation -------------------------------------------------------------------

    @property
    def ready(self) -> int:
        return self.instances - self.starting

    @property
    def pending(self) -> int:
        return self.starting

    def queue_len(self, now_s: float) -> int:
        del now_s
        return 0

    def busy_areas(self, now_s: float) -> tuple[float, float]:
        """Cumulative (busy instance-seconds, instance-seconds) up to `now_s`."""
        self.advance(now_s)
        self._touch(now_s)
        return self.busy_s, self.instance_s

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
        return bool(self._idle_pc or self._idle or self.instances < self._max)

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
        heap, expiries = self._heap, self._expiries
        if (heap and heap[0][0] <= now_s) or (expiries and expiries[0][0] <= now_s):
            self._admit(0, 0, now_s)

    def _admit(self, first: int, stop: int, at_s: float | None) -> None:
        """Catch up to each arrival and start (or throttle) requests `first`..`stop - 1`.

        Each request arrives at `at_s`, or at its arrival time when `at_s` is None;
        with no request (`first == stop`) the pool only catches up to `at_s`. This is
        the per-request hot path, written out in one function over local variables
        (written back at the end): a catch-up step is a completion, a cold start or
        provisioned instance becoming ready, or a keep-alive expiry, applied in time
        order (an expiry first at a tie) with the time-weighted areas brought up to
        it; then the arrival takes an idle provisioned instance, else the newest
        idle on-demand one, else a new instance (cold start) under max concurrency,
        else it is throttled.
        """
        heap, expiries, gen, idle = self._heap, self._expiries, self._gen, self._idle
        idle_pc, pc, pc_init = self._idle_pc, self._pc, self._pc_init
        book, log, name = self._book, self._log, self.name
        arrival, start_at, service, billed = (
            book.arrival_s,
            book.start_s,
            self._service_s,
            self._billed_s,
        )
        latency_at, outcome = book.latency_s, book.outcome
        add_latency = book.interval_latencies.append
        keep_alive_s, desired, limit = self._keep_alive_s, self.desired, self._max
        instances, busy, starting, seq = self.instances, self.busy, self.starting, self._seq
        area_t, instance_s, busy_s = self._area_t, self.instance_s, self.busy_s
        provisioned_s, billed_busy_s, served = self.provisioned_s, self.billed_busy_s, 0
        heappop, heappush = heapq.heappop, heapq.heappush
        owed = self._pc_owed
        heap_s = heap[0][0] if heap else _INF  # the earliest time in each queue
        expiry_s = expiries[0][0] if expiries else _INF
        # request -1: no arrival, only the catch-up to at_s
        for request in range(first, stop) if first < stop else (-1,):
            now_s = arrival[request] if at_s is None else at_s
            while True:  # catch up to now_s
                if expiry_s <= heap_s:
                    if expiry_s > now_s:
                        break
                    expire_s, instance, generation = expiries.popleft()
                    expiry_s = expiries[0][0] if expiries else _INF
                    if gen.get(instance) == generation:  # idle ever since
                        elapsed = expire_s - area_t
                        if elapsed > 0.0:
                            instance_s += instances * elapsed
                            busy_s += busy * elapsed
                            provisioned_s += desired * elapsed
                            area_t = expire_s
                        del idle[bisect_left(idle, instance)]
                        del gen[instance]
                        instances -= 1
                        if log is not None:
                            log.append((expire_s, name, "expire", f"instance={instance}"))
                    continue
                if heap_s > now_s:
                    break
                time_s, _, kind, instance, done = heappop(heap)
                heap_s = heap[0][0] if heap else _INF
                elapsed = time_s - area_t
                if elapsed > 0.0:
                    instance_s += instances * elapsed
                    busy_s += busy * elapsed
                    provisioned_s += desired * elapsed
                    area_t = time_s
                if kind == _DONE:
                    busy -= 1
                    billed_busy_s += billed[done]
                    latency = time_s - arrival[done]  # RequestBook.serve, inline
                    latency_at[done] = latency
                    outcome[done] = SERVED
                    served += 1
                    add_latency(latency)
                    if log is not None:
                        log.append((time_s, name, "finish", f"req={done} instance={instance}"))
                    if pc and instance in pc:
                        idle_pc.append(instance)
                        continue
                    if owed:  # provisioned concurrency waiting for room under max
                        owed -= 1
                        gen[instance] = gen.get(instance, -1) + 1  # no expiry of its may match
                        pc.add(instance)
                        idle_pc.append(instance)
                        continue
                    generation = gen.get(instance, -1) + 1
                    gen[instance] = generation
                    insort(idle, instance)
                    # Keep-alive is one constant, so expiries come due in the order
                    # instances go idle: a FIFO holds them (entries of instances reused
                    # since are skipped by their generation).
                    expire_s = time_s + keep_alive_s
                    if not expiries:
                        expiry_s = expire_s
                    expiries.append((expire_s, instance, generation))
                elif kind == _WARM:
                    starting -= 1
                elif instance in pc_init:  # _PC_READY, not cancelled meanwhile
                    pc_init.discard(instance)
                    starting -= 1
                    idle_pc.append(instance)
            if request < 0:
                break
            elapsed = now_s - area_t
            if elapsed > 0.0:
                instance_s += instances * elapsed
                busy_s += busy * elapsed
                provisioned_s += desired * elapsed
                area_t = now_s
            if idle_pc:
                instance = idle_pc.pop()
                start_s = now_s + 0.0  # as a cold start adds its delay (-0.0 + 0.0 is 0.0)
                if log is not None:
                    log.append((now_s, name, "warm_start", f"req={request} instance={instance}"))
            elif idle:
                instance = idle.pop()
                gen[instance] += 1  # cancels its pending expiry
                start_s = now_s + 0.0  # as a cold start adds its delay (-0.0 + 0.0 is 0.0)
                if log is not None:
                    log.append((now_s, name, "warm_start", f"req={request} instance={instance}"))
            elif instances < limit:
                self._ids += 1
                instances += 1
                instance = self._ids
                gen[instance] = 0
                start_s = now_s + self.pool.cold_start_s.sample(self._cold_rng)
                self.cold_starts += 1
                starting += 1
                seq += 1
                heappush(heap, (start_s, seq, _WARM, instance, -1))
                if start_s < heap_s:
                    heap_s = start_s
                if log is not None:
                    log.append((now_s, name, "cold_start", f"req={request} instance={instance}"))
            else:
                self.throttled += 1
                book.drop(request)
                if log is not None:
                    log.append((now_s, name, "drop", f"req={request} throttled"))
                continue
            busy += 1
            start_at[request] = start_s
            seq += 1
            done_s = start_s + service[request]
            heappush(heap, (done_s, seq, _DONE, instance, request))
            if done_s < heap_s:
                heap_s = done_s
        self.instances, self.busy, self.starting, self._seq = instances, busy, starting, seq
        self._area_t, self.instance_s, self.busy_s = area_t, instance_s, busy_s
        self.provisioned_s, self.billed_busy_s = provisioned_s, billed_busy_s
        book.served += served
        self._pc_owed = owed

    def _new_instance(self) -> int:
        self._ids += 1
        self.instances += 1
        return self._ids

    def _push(self, time_s: float, kind: int, instance: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time_s, self._seq, kind, instance, -1))

    def _touch(self, now_s: float) -> None:
        elapsed = now_s - self._area_t
        if elapsed > 0.0:
            self.instance_s += self.instances * elapsed
            self.busy_s += self.busy * elapsed
            self.provisioned_s += self.desired * elapsed
            self._area_t = now_s
