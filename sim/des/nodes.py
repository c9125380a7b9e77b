"""Nodes and replicas of an instance pool, and the random delays of their lives.

`NodeTimings` draws every delay a node goes through: its boot (node boot + image
pull for a GPU node pool; instance boot, or a warm start while the ASG warm pool
has a stopped instance, for an ASG), each replica's model load, and when the node
is lost (spot reclaim at `spot_interruption_per_h` for spot nodes, failure at
`node_failure_per_h` for any node). Each purpose has its own seeded stream.
"""

from __future__ import annotations

import math

import simpy
from simpy.events import Event, Timeout

from sim.capacity.pools import GpuNodePool, InstancePool
from sim.des.streams import stream

LogSink = list[tuple[float, str, str, str]] | None


class Node:
    """One billed instance holding up to `replicas_per_node` replicas."""

    __slots__ = ("id", "ready", "released", "replicas", "spot")

    def __init__(self, node_id: int, spot: bool) -> None:
        self.id = node_id
        self.spot = spot
        self.ready = False
        self.released = False
        self.replicas: list[Replica] = []


class Replica:
    """One model server with `max_batch` slots; `running` keeps start order."""

    __slots__ = ("busy", "dead", "draining", "id", "node", "order", "ready", "running")

    def __init__(self, replica_id: int, node: Node) -> None:
        self.id = replica_id
        self.node = node
        self.ready = False
        self.draining = False
        self.dead = False
        self.busy = 0
        self.order = 0  # rank in ready order, set when it starts serving (see least_loaded)
        self.running: dict[int, None] = {}  # request -> None, in start order


class NodeTimings:
    """Boot, model-load and loss delays of one pool's nodes (and its ASG warm pool).

    Args:
        env: The SimPy environment (the warm pool refills on it).
        pool: The pool's capacity model.
        seed: The run's seed.
    """

    def __init__(self, env: simpy.Environment, pool: InstancePool, seed: int) -> None:
        self._env = env
        self._pool = pool
        self._prov_rng = stream(seed, "pool.provisioning")
        self._spot_rng = stream(seed, "pool.spot")
        self._fail_rng = stream(seed, "pool.failure")
        self.warm_pool = 0 if isinstance(pool, GpuNodePool) else pool.warm_pool_size

    def boot_s(self) -> float:
        """Seconds from a node's launch request until it is up (before model loads)."""
        pool, rng = self._pool, self._prov_rng
        if isinstance(pool, GpuNodePool):
            return pool.node_boot_s.sample(rng) + pool.image_pull_s.sample(rng)
        if self.warm_pool > 0:
            # The ASG replaces a used warm instance in the background (one boot).
            self.warm_pool -= 1
            refill = Timeout(self._env, pool.instance_boot_s.sample(rng))
            refill.callbacks.append(self._on_warm_refill)
            return pool.warm_start_s.sample(rng)
        return pool.instance_boot_s.sample(rng)

    def _on_warm_refill(self, event: Event) -> None:
        del event
        self.warm_pool += 1

    def model_load_s(self) -> float:
        return self._pool.model_load_s.sample(self._prov_rng)

    def loss(self, spot: bool) -> tuple[float, str] | None:
        """(seconds until the node is lost, "spot_reclaim" or "node_failure"), or None."""
        pool = self._pool
        loss_s, kind = math.inf, ""
        if spot and pool.spot_interruption_per_h > 0.0:
            loss_s = float(self._spot_rng.exponential(3600.0 / pool.spot_interruption_per_h))
            kind = "spot_reclaim"
        if pool.node_failure_per_h > 0.0:
            fail_s = float(self._fail_rng.exponential(3600.0 / pool.node_failure_per_h))
            if fail_s < loss_s:
                loss_s, kind = fail_s, "node_failure"
        return (loss_s, kind) if math.isfinite(loss_s) else None
