"""A GPU node pool or EC2 autoscaling group, request by request, on SimPy.

Rules (see docs/des.md for the reasoning):

* Routing: one central FIFO queue. A request starts on the least-loaded ready
  replica that has a free batch slot (ties: the replica that became ready first;
  found in O(log n) by `least_loaded.LeastLoaded`); otherwise it waits. A request
  that waited `queue_timeout_s` is dropped; the check runs when it reaches the head
  of the queue and at every decision tick, so a request never starts after its
  deadline.
* Batching: a replica runs up to `max_batch` requests; a request's service time is
  drawn with batch = occupancy when it starts (itself included).
* Provisioning: a replica needs a node. Free slots on existing nodes are used
  first (model load only); otherwise a node is launched: node boot + image pull
  (GPU node pool) or instance boot, or warm start from the warm pool (ASG); then
  each replica loads its model. Nodes pack `replicas_per_node` replicas.
* Scale-in: pending replicas are cancelled first (newest first), then idle ready
  replicas (on the emptiest nodes first), then busy ones are drained (no new work,
  removed when their last request ends). A node is released when it has no replica.
* Spot share: node k is spot when that keeps the spot count at round(share x nodes).
* Interruptions: a spot node is reclaimed at hazard `spot_interruption_per_h`, any
  node fails at `node_failure_per_h`; its in-flight requests are re-queued at the
  front (counted in `retried`), and the pool launches replacements to meet desired.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any, cast

import simpy
from simpy.events import NORMAL, Event, Timeout

from sim.capacity.pools import InstancePool
from sim.des.actuation import DesiredCapacity
from sim.des.billing import NodeLedger
from sim.des.clock import Clock, caller
from sim.des.least_loaded import LeastLoaded
from sim.des.nodes import LogSink, Node, NodeTimings, Replica
from sim.des.requests import SERVED, RequestBook
from sim.des.streams import ServiceSampler, stream


class SimInstancePool(DesiredCapacity):
    """The simulator's instance pool; implements `sim.actuator.Actuator`.

    Args:
        env: The SimPy environment (the only clock).
        pool: The pool's capacity model.
        book: The run's request book.
        seed: The run's seed; the pool draws from its own child streams.
        log: A list to append log tuples to, or None for no log.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: InstancePool,
        book: RequestBook,
        seed: int,
        log: LogSink = None,
    ) -> None:
        super().__init__(env, pool, log)
        self.pool = pool
        self._book = book
        self._start_at = book.start_s  # the array itself: written once per request
        self._call_in = caller(env)
        # With the engine's `Clock`, completions go straight onto its schedule (SimPy's
        # 4-tuples) as `Clock.call_in` 6-tuples: the call inlined, it runs per request.
        self._schedule: list[Any] | None = env._queue if isinstance(env, Clock) else None
        self._eid = env._eid
        self._done_callback = self._on_done  # bound once, not once per request
        # Which requests a replica runs matters only when its node can be lost (they
        # are re-queued); without losses the per-request bookkeeping is skipped.
        self._track_running = pool.node_failure_per_h > 0.0 or (
            pool.spot_share > 0.0 and pool.spot_interruption_per_h > 0.0
        )
        self._max_batch = pool.service.max_batch
        self._timeout_s = pool.queue_timeout_s
        self._per_node = pool.replicas_per_node
        self._sampler = ServiceSampler(
            pool.service,
            stream(seed, "pool.service"),
            book.input_tokens_array,
            book.output_tokens_array,
        )
        # Exponential service times come from one iterator (a C-level call each).
        self._draw = self._sampler.exponential_draws()
        self._timings = NodeTimings(env, pool, seed)
        self.ledger = NodeLedger(pool.billing_min_s, pool.gpus)
        self._ids = 0
        self._nodes: list[Node] = []
        self._spot_nodes = 0
        self._serving: list[Replica] = []  # ready, not draining
        self._free = LeastLoaded(self._max_batch)  # the same replicas, for routing
        self._pending: list[Replica] = []  # not ready yet, not cancelled
        self._draining: list[Replica] = []
        self._queue: deque[tuple[int, float]] = deque()  # (request, deadline_s)
        self._busy = 0
        self._ready_replicas = 0
        self._area_t = 0.0
        self.busy_slot_s = 0.0
        self.ready_slot_s = 0.0
        for _ in range(pool.nodes_for(self.desired)):
            node = self._launch_node(0.0, boot=False)
            take = min(self._per_node, self.desired - len(self._serving))
            for _ in range(take):
                replica = self._new_replica(node)
                self._replica_ready(replica, 0.0)

    # --- Actuator protocol (the rest in DesiredCapacity) ------------------------------

    def _after_change(self, previous: int, now_s: float) -> None:
        del previous
        self._reconcile(now_s)

    # --- observation -------------------------------------------------------------------

    @property
    def ready(self) -> int:
        return len(self._serving)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def queue_len(self, now_s: float) -> int:
        """Requests waiting now; expired ones are dropped first."""
        if self._queue and any(deadline < now_s for _, deadline in self._queue):
            kept: deque[tuple[int, float]] = deque()
            for request, deadline in self._queue:
                if deadline < now_s:
                    self._drop(request, deadline)
                else:
                    kept.append((request, deadline))
            self._queue = kept
        return len(self._queue)

    def waiting(self) -> int:
        """Requests in the queue, without purging expired ones (cheap, for routing)."""
        return len(self._queue)

    def has_free_slot(self) -> bool:
        return self._free.pick() is not None

    def busy_areas(self, now_s: float) -> tuple[float, float]:
        """Cumulative (busy slot-seconds, ready slot-seconds) up to `now_s`."""
        self._touch(now_s)
        return self.busy_slot_s, self.ready_slot_s

    def cost_usd(self, now_s: float, *, final: bool = False) -> float:
        return self.ledger.cost_usd(now_s, final=final)

    def finish(self, now_s: float) -> int:
        """Close the run: drop queued requests past their deadline; return those in the queue."""
        return self.queue_len(now_s)

    # --- requests ----------------------------------------------------------------------

    def submit(self, request: int, now_s: float) -> None:
        """A request enters the pool: start it now or queue it."""
        replica = self._free.pick()
        if replica is not None:
            self._start(replica, request, now_s)
            return
        self._queue.append((request, now_s + self._timeout_s))
        if self._log is not None:
            self._log.append((now_s, self.name, "queue", f"req={request}"))

    def submit_until(self, first: int, peek: Callable[[], float]) -> int:
        """Requests from `first` on arrive, each at its own arrival time, until one is
        not due before `peek()` (the next scheduled SimPy event); return its index.

        The same as `submit(r, arrival_s[r])` for each in turn, `first` always: the
        engine's loop over arrivals, inside the pool to save a call per request.
        """
        arrival, queue, log = self._book.arrival_s, self._queue, self._log
        pick, start, timeout_s = self._free.pick, self._start, self._timeout_s
        schedule = self._schedule
        count = len(arrival)
        request = first
        while True:
            now_s = arrival[request]
            replica = pick()
            if replica is not None:
                start(replica, request, now_s)
            else:
                queue.append((request, now_s + timeout_s))
                if log is not None:
                    log.append((now_s, self.name, "queue", f"req={request}"))
            request += 1
            if request == count:
                return request
            if schedule is None:
                if arrival[request] >= peek():
                    return request
            elif schedule and arrival[request] >= schedule[0][0]:  # peek(), inline
                return request

    def _touch(self, now_s: float) -> None:
        elapsed = now_s - self._area_t
        if elapsed > 0.0:
            self.busy_slot_s += self._busy * elapsed
            self.ready_slot_s += self._ready_replicas * self._max_batch * elapsed
            self._area_t = now_s

    def _start(self, replica: Replica, request: int, now_s: float) -> None:
        """Start `request` on `replica`, which `self._free.pick()` has just chosen."""
        elapsed = now_s - self._area_t
        if elapsed > 0.0:  # inlined _touch: this runs once per request
            self.busy_slot_s += self._busy * elapsed
            self.ready_slot_s += self._ready_replicas * self._max_batch * elapsed
            self._area_t = now_s
        batch = replica.busy + 1
        replica.busy = batch
        self._free.took(replica)
        self._busy += 1
        if self._track_running:
            replica.running[request] = None
        self._start_at[request] = now_s
        draw = self._draw
        service_s = draw() if draw is not None else self._sampler.sample_s(request, batch)
        # Relative to the clock, which may still lag `now_s` when the arrival is
        # handled ahead of its SimPy event (see Simulation._on_arrival): the entry's
        # time is the clock plus that delay, as `Clock.call_in` computes it.
        schedule = self._schedule
        if schedule is not None:
            clock_s = self._env._now
            delay_s = now_s + service_s - clock_s
            heappush(
                schedule,
                (clock_s + delay_s, NORMAL, next(self._eid), None, self._done_callback,
                 (replica, request)),
            )  # fmt: skip
        else:
            delay_s = now_s + service_s - self._env.now
            self._call_in(delay_s, self._done_callback, (replica, request))
        if self._log is not None:
            self._log.append(
                (now_s, self.name, "start", f"req={request} replica={replica.id} batch={batch}")
            )

    def _on_done(self, done: tuple[Replica, int]) -> None:
        replica, request = done
        if replica.dead:
            return  # its node was lost; the request was re-queued
        if self._track_running:
            del replica.running[request]
        now_s = self._env._now
        elapsed = now_s - self._area_t
        if elapsed > 0.0:  # inlined _touch: this runs once per request
            self.busy_slot_s += self._busy * elapsed
            self.ready_slot_s += self._ready_replicas * self._max_batch * elapsed
            self._area_t = now_s
        replica.busy -= 1
        self._busy -= 1
        book = self._book
        latency = now_s - book.arrival_s[request]  # RequestBook.serve, inline
        book.latency_s[request] = latency
        book.outcome[request] = SERVED
        book.served += 1
        book.interval_latencies.append(latency)
        if self._log is not None:
            self._log.append((now_s, self.name, "finish", f"req={request} replica={replica.id}"))
        if replica.draining:
            if replica.busy == 0:
                self._remove_replica(replica, now_s)
            return
        self._free.released(replica)
        if self._queue:
            self._drain_queue(now_s)

    def _drain_queue(self, now_s: float) -> None:
        queue = self._queue
        pick = self._free.pick
        while queue:
            replica = pick()
            if replica is None:
                return
            request, deadline = queue.popleft()
            if deadline < now_s:
                self._drop(request, deadline)
                continue
            self._start(replica, request, now_s)

    def _drop(self, request: int, when_s: float) -> None:
        self._book.drop(request)
        if self._log is not None:
            self._log.append((when_s, self.name, "drop", f"req={request} queue timeout"))

    # --- capacity ----------------------------------------------------------------------

    def _reconcile(self, now_s: float) -> None:
        active = len(self._serving) + len(self._pending)
        if self.desired > active:
            self._add(self.desired - active, now_s)
        elif self.desired < active:
            self._shrink(active - self.desired, now_s)

    def _add(self, count: int, now_s: float) -> None:
        for node in self._nodes:
            while count and len(node.replicas) < self._per_node:
                replica = self._new_replica(node)
                if node.ready:
                    self._load_model(replica)
                count -= 1
        while count:
            node = self._launch_node(now_s, boot=True)
            for _ in range(min(count, self._per_node)):
                self._new_replica(node)
                count -= 1

    def _shrink(self, count: int, now_s: float) -> None:
        # Pending first, newest first: cancelling them wastes the least work.
        for replica in sorted(self._pending, key=lambda r: (r.node.ready, -r.id))[:count]:
            self._pending.remove(replica)
            self._remove_replica(replica, now_s)
            count -= 1
        if not count:
            return
        idle = [r for r in self._serving if r.busy == 0]
        idle.sort(key=lambda r: (len(r.node.replicas), -r.id))
        for replica in idle[:count]:
            self._serving.remove(replica)
            self._free.discard(replica)
            self._remove_replica(replica, now_s)
            count -= 1
        busy = sorted(self._serving, key=lambda r: (r.busy, -r.id))
        for replica in busy[:count]:
            self._serving.remove(replica)
            self._free.discard(replica)
            replica.draining = True
            self._draining.append(replica)
            if self._log is not None:
                self._log.append((now_s, self.name, "replica_drain", f"replica={replica.id}"))

    def _new_replica(self, node: Node) -> Replica:
        self._ids += 1
        replica = Replica(self._ids, node)
        node.replicas.append(replica)
        self._pending.append(replica)
        return replica

    def _remove_replica(self, replica: Replica, now_s: float) -> None:
        if replica.ready:
            self._touch(now_s)
            self._ready_replicas -= 1
        if replica.draining:
            self._draining.remove(replica)
        replica.dead = True
        node = replica.node
        node.replicas.remove(replica)
        if self._log is not None:
            self._log.append((now_s, self.name, "replica_remove", f"replica={replica.id}"))
        if not node.replicas:
            self._release_node(node, now_s)

    def _launch_node(self, now_s: float, *, boot: bool) -> Node:
        pool = self.pool
        self._ids += 1
        target_spot = math.floor(pool.spot_share * (len(self._nodes) + 1) + 0.5)
        node = Node(self._ids, spot=self._spot_nodes < target_spot)
        self._nodes.append(node)
        self._spot_nodes += node.spot
        price = pool.spot_usd_per_h if node.spot else pool.on_demand_usd_per_h
        self.ledger.launch(node.id, now_s, price)
        if self._log is not None:
            self._log.append((now_s, self.name, "node_launch", f"node={node.id} spot={node.spot}"))
        self._schedule_loss(node)
        if not boot:
            node.ready = True
            return node
        ready = Timeout(self._env, self._timings.boot_s(), node)
        ready.callbacks.append(self._on_node_ready)
        return node

    def _on_node_ready(self, event: Event) -> None:
        node = cast(Node, event.value)
        if node.released:
            return
        node.ready = True
        if self._log is not None:
            self._log.append((self._env.now, self.name, "node_ready", f"node={node.id}"))
        for replica in node.replicas:
            self._load_model(replica)

    def _load_model(self, replica: Replica) -> None:
        loaded = Timeout(self._env, self._timings.model_load_s(), replica)
        loaded.callbacks.append(self._on_replica_loaded)

    def _on_replica_loaded(self, event: Event) -> None:
        replica = cast(Replica, event.value)
        if replica.dead:
            return
        self._replica_ready(replica, self._env.now)
        if self._queue:
            self._drain_queue(self._env.now)

    def _replica_ready(self, replica: Replica, now_s: float) -> None:
        self._touch(now_s)
        replica.ready = True
        self._pending.remove(replica)
        self._serving.append(replica)
        self._free.add(replica)
        self._ready_replicas += 1
        if self._log is not None:
            self._log.append((now_s, self.name, "replica_ready", f"replica={replica.id}"))

    def _release_node(self, node: Node, now_s: float) -> None:
        node.released = True
        self._nodes.remove(node)
        self._spot_nodes -= node.spot
        self.ledger.release(node.id, now_s)
        if self._log is not None:
            self._log.append((now_s, self.name, "node_release", f"node={node.id}"))

    # --- spot reclaims and failures ----------------------------------------------------

    def _schedule_loss(self, node: Node) -> None:
        loss = self._timings.loss(node.spot)
        if loss is not None:
            lost = Timeout(self._env, loss[0], (node, loss[1]))
            lost.callbacks.append(self._on_node_lost)

    def _on_node_lost(self, event: Event) -> None:
        node, kind = cast("tuple[Node, str]", event.value)
        if node.released:
            return
        now_s = self._env.now
        if self._log is not None:
            self._log.append((now_s, self.name, kind, f"node={node.id}"))
        retry: list[int] = []
        self._touch(now_s)
        for replica in list(node.replicas):
            retry.extend(replica.running)
            self._busy -= replica.busy
            replica.busy = 0
            replica.running.clear()
            if replica in self._serving:
                self._serving.remove(replica)
                self._free.discard(replica)
            elif replica in self._pending:
                self._pending.remove(replica)
            self._remove_replica(replica, now_s)
        deadline = now_s + self._timeout_s
        for request in sorted(retry, reverse=True):
            self._queue.appendleft((request, deadline))
            if self._log is not None:
                self._log.append((now_s, self.name, "retry", f"req={request}"))
        self._book.retried += len(retry)
        self._reconcile(now_s)
        if self._queue:
            self._drain_queue(now_s)
