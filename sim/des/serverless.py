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

import simpy

from sim.capacity.pools import ServerlessEndpoint
from sim.des.actuation import DesiredCapacity
from sim.des.billing import billed_s
from sim.des.nodes import LogSink
from sim.des.requests import RequestBook
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
        """A request arrives: warm start, cold start, or throttle."""
        heap, expiries = self._heap, self._expiries
        if (heap and heap[0][0] <= now_s) or (expiries and expiries[0][0] <= now_s):
            self.advance(now_s)
        elapsed = now_s - self._area_t
        if elapsed > 0.0:  # inlined _touch: this is the per-request hot path
            self.instance_s += self.instances * elapsed
            self.busy_s += self.busy * elapsed
            self.provisioned_s += self.desired * elapsed
            self._area_t = now_s
        delay_s, cold = 0.0, False
        if self._idle_pc:
            instance = self._idle_pc.pop()
        elif self._idle:
            instance = self._idle.pop()
            self._gen[instance] += 1  # cancels its pending expiry
        elif self.instances < self._max:
            instance = self._new_instance()
            self._gen[instance] = 0
            delay_s, cold = self.pool.cold_start_s.sample(self._cold_rng), True
            self.cold_starts += 1
            self.starting += 1
            self._push(now_s + delay_s, _WARM, instance)
        else:
            self.throttled += 1
            self._book.drop(request)
            if self._log is not None:
                self._log.append((now_s, self.name, "drop", f"req={request} throttled"))
            return
        self.busy += 1
        start_s = now_s + delay_s
        self._book.start_s[request] = start_s
        self._seq += 1
        heapq.heappush(
            heap, (start_s + self._service_s[request], self._seq, _DONE, instance, request)
        )
        if self._log is not None:
            kind = "cold_start" if cold else "warm_start"
            self._log.append((now_s, self.name, kind, f"req={request} instance={instance}"))

    def advance(self, now_s: float) -> None:
        """Apply every internal transition due at or before `now_s`, in time order.

        The completion branch is written out inline: it runs once per request.
        """
        heap, expiries, gen, idle = self._heap, self._expiries, self._gen, self._idle
        book, log = self._book, self._log
        while True:
            heap_s = heap[0][0] if heap else _INF
            if expiries and expiries[0][0] <= heap_s:
                expire_s, instance, generation = expiries[0]
                if expire_s > now_s:
                    break
                expiries.popleft()
                if gen.get(instance) == generation:  # idle ever since
                    self._touch(expire_s)
                    del idle[bisect_left(idle, instance)]
                    del gen[instance]
                    self.instances -= 1
                    if log is not None:
                        log.append((expire_s, self.name, "expire", f"instance={instance}"))
                continue
            if heap_s > now_s:
                break
            time_s, _, kind, instance, request = heapq.heappop(heap)
            elapsed = time_s - self._area_t
            if elapsed > 0.0:
                self.instance_s += self.instances * elapsed
                self.busy_s += self.busy * elapsed
                self.provisioned_s += self.desired * elapsed
                self._area_t = time_s
            if kind == _DONE:
                self.busy -= 1
                self.billed_busy_s += self._billed_s[request]
                book.serve(request, time_s)
                if log is not None:
                    log.append((time_s, self.name, "finish", f"req={request} instance={instance}"))
                if instance in self._pc:
                    self._idle_pc.append(instance)
                    continue
                if self._pc_owed:  # provisioned concurrency waiting for room under max
                    self._pc_owed -= 1
                    gen[instance] = gen.get(instance, -1) + 1  # no expiry of its may match
                    self._pc.add(instance)
                    self._idle_pc.append(instance)
                    continue
                generation = gen.get(instance, -1) + 1
                gen[instance] = generation
                insort(idle, instance)
                # Keep-alive is one constant, so expiries come due in the order
                # instances go idle: a FIFO holds them (entries of instances reused
                # since are skipped by their generation).
                expiries.append((time_s + self._keep_alive_s, instance, generation))
            elif kind == _WARM:
                self.starting -= 1
            elif instance in self._pc_init:  # _PC_READY, not cancelled meanwhile
                self._pc_init.discard(instance)
                self.starting -= 1
                self._idle_pc.append(instance)

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
