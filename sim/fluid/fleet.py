"""The fluid engine's instance fleet: replicas packed on billed nodes (the actuator).

`Fleet` implements `sim.actuator.Actuator` for GPU node pools and EC2 ASGs. It is
the one place where the fluid engine changes capacity.

Replicas are indexed 0..desired-1 and node k hosts replicas
[k * replicas_per_node, (k + 1) * replicas_per_node). Scale-in removes the highest
indices first (last in, first out), so pending nodes, which are the newest, go
first. Provisioning delays are *sampled per node* (boot, image pull) and *per
replica* (model load) from the pool's `Delay` distributions with the engine's
seeded generator, as the SimPy engine does; a replica placed on a node that is
already up only waits for its model load. Each node is billed from its launch to
its termination, at least `billing_min_s` (EC2 per-second billing, 60 s minimum),
at the spot or on-demand price drawn for it (Bernoulli(`spot_share`)). Spot
reclaims and node failures kill a node at an exponential lifetime; the pool
replaces it at once (an ASG keeps its desired count), with a full provisioning
delay.

With `provisioning` (the SimPy engine's "pool.provisioning" stream of the same
seed) the delays are the DES's own draws: boot and pull per node when it
launches, a replica's model load when its node comes up (in the order the nodes
come up) or at once on a node that is already up. Loads of nodes still booting
are drawn ahead of time so the kernel knows their ready times, and drawn again
after the next launch (the generator rewound) when that launch precedes them in
the DES's order. Both engines then see the same ready times for a seed, with
random delays as with fixed ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.capacity.distributions import Delay
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool
from sim.fluid import fleet_kernel as FK
from sim.workload.model import FloatArray


def sample_many(delay: Delay, rng: np.random.Generator, count: int) -> FloatArray:
    """`count` draws of `delay`, with the parametrisation of `Delay.sample`, in one call."""
    if count <= 0:
        return np.zeros(0)
    if (
        delay.kind == "fixed"
        or delay.mean_s == 0.0
        or (delay.kind == "lognormal" and delay.cv == 0.0)
    ):
        return np.full(count, delay.mean_s)
    if delay.kind == "exponential":
        return np.asarray(rng.exponential(delay.mean_s, count), dtype=np.float64)
    sigma2 = math.log1p(delay.cv**2)
    mu = math.log(delay.mean_s) - sigma2 / 2.0
    return np.asarray(rng.lognormal(mu, math.sqrt(sigma2), count), dtype=np.float64)


def sampler(delay: Delay) -> Callable[[np.random.Generator], float]:
    """`delay.sample`, its parameters worked out once: the same draws, without
    `Delay.sample`'s per-call logarithms (a fleet draws a delay per node and replica)."""
    if (
        delay.kind == "fixed"
        or delay.mean_s == 0.0
        or (delay.kind == "lognormal" and delay.cv == 0.0)
    ):
        value = delay.mean_s
        return lambda rng: value
    if delay.kind == "exponential":
        mean_s = delay.mean_s
        return lambda rng: float(rng.exponential(mean_s))
    sigma2 = math.log1p(delay.cv**2)
    mu, sigma = math.log(delay.mean_s) - sigma2 / 2.0, math.sqrt(sigma2)
    return lambda rng: float(rng.lognormal(mu, sigma))


#: Scale-ins whose drained replicas may still be serving at once (`Fleet.drain_end`);
#: a drain lasts at most the longest service time, so this covers one scale-in per
#: decision for 64 intervals.
DRAIN_RECORDS = 64


class Fleet:
    """Replica and node state of one instance pool during a fluid run."""

    def __init__(
        self,
        pool: GpuNodePool | Ec2AutoScalingGroup,
        rng: np.random.Generator,
        drain_s_at: Callable[[float], float] | None = None,
        provisioning: np.random.Generator | None = None,
    ) -> None:
        """The pool's initial replicas, ready at t = 0.

        Args:
            pool: The pool's capacity model.
            rng: The engine's seeded generator (delays, spot draws, lifetimes).
            drain_s_at: How long a busy replica removed at a given time keeps serving
                (its node stays billed); the engine derives it from its queue state.
                None: removed replicas stop at once.
            provisioning: The DES's provisioning stream of the run's seed
                (`sim.des.streams.stream(seed, "pool.provisioning")`): delays drawn
                in the DES's order (module docstring). None: from `rng`, in bulk.
        """
        self.pool = pool
        self._drain_s_at = drain_s_at
        self.rng = rng
        self._prov = provisioning
        self._spec_state: dict[str, object] | None = None  # before the loads drawn ahead
        self._drawn_ahead = 0  # how many loads were drawn ahead
        self._launches = 0
        self.node_seq = np.zeros(pool.nodes_for(pool.max_replicas), dtype=np.int64)
        self._loaded = np.zeros(pool.max_replicas, dtype=np.bool_)  # load drawn for good
        self.per_node = pool.replicas_per_node
        self.min_replicas = pool.min_replicas
        self.max_replicas = pool.max_replicas
        self.max_nodes = pool.nodes_for(pool.max_replicas)
        self.gpus_per_node = pool.gpus
        self.billing_min_s = pool.billing_min_s
        self._od_usd_per_s = pool.on_demand_usd_per_h / 3600.0
        self._spot_usd_per_s = pool.spot_usd_per_h / 3600.0
        self._hazard_od_per_s = pool.node_failure_per_h / 3600.0
        self._hazard_spot_per_s = (pool.node_failure_per_h + pool.spot_interruption_per_h) / 3600.0
        self.ready_at = np.full(self.max_replicas, np.inf)
        self.until = np.full(self.max_replicas, np.inf)
        # Busy replicas removed by a scale-in keep serving until `drain_end` (one
        # record per scale-in: its end and how many replicas drain); the SimPy engine
        # keeps their slots in its utilisation denominator until then.
        self.drain_end = np.full(DRAIN_RECORDS, -np.inf)
        self.drain_replicas = np.zeros(DRAIN_RECORDS)
        self.node_launch_s = np.zeros(self.max_nodes)
        self.node_up_s = np.zeros(self.max_nodes)
        self.node_death_s = np.full(self.max_nodes, np.inf)
        self.node_usd_per_s = np.zeros(self.max_nodes)
        self.node_spot = np.zeros(self.max_nodes, dtype=np.bool_)
        self.warm_pool = pool.warm_pool_size if isinstance(pool, Ec2AutoScalingGroup) else 0
        self._warm_pool_size = self.warm_pool
        self._load_s = sampler(pool.model_load_s)
        if isinstance(pool, GpuNodePool):
            self._boot_s, self._pull_s = sampler(pool.node_boot_s), sampler(pool.image_pull_s)
        else:
            self._boot_s, self._warm_s = sampler(pool.instance_boot_s), sampler(pool.warm_start_s)
        self._order = np.zeros(self.max_replicas, dtype=np.int64)  # scratch of the scans
        spot_hazard = pool.spot_share > 0.0 and pool.spot_interruption_per_h > 0.0
        self.has_hazard = spot_hazard or self._hazard_od_per_s > 0.0
        self.closed_usd = 0.0
        self.closed_node_s = 0.0
        self._open_usd_per_s = 0.0  # sum of running nodes' prices
        self._open_usd_launch = 0.0  # sum of price * launch time over running nodes
        self._open_nodes = 0
        self._open_launch_sum = 0.0
        self._spot_nodes = 0
        self.closed_billed_s = 0.0
        self.desired = 0
        self.actions = 0
        self.replaced_nodes = 0
        start = pool.start_replicas
        self._add(start, now=0.0, instant=True)
        self.desired = start

    # -- Actuator protocol -------------------------------------------------
    def current(self) -> int:
        return self.desired

    def bounds(self) -> tuple[int, int]:
        return self.min_replicas, self.max_replicas

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        """Apply a decision at `now_s`; the control loop clamps first, so out-of-bounds is a bug."""
        del reason  # the control loop records it
        if not self.min_replicas <= desired <= self.max_replicas:
            raise ValueError(
                f"desired {desired} outside bounds [{self.min_replicas}, {self.max_replicas}]"
            )
        if desired == self.desired:
            return
        self.actions += 1
        self._settle_loads(now_s)
        if desired > self.desired:
            self._add(desired, now=now_s, instant=False)
        else:
            drain = 0.0 if self._drain_s_at is None else self._drain_s_at(now_s)
            self._remove(desired, now=now_s, drain_s=drain)
        self.desired = desired
        self._draw_ahead()

    # -- the DES's draw order (with `provisioning`) -------------------------------
    def _settle_loads(self, now: float) -> None:
        """Before a change at `now`: the loads of nodes up by `now` are drawn for good
        (the DES drew them before this launch); those drawn ahead for nodes still
        booting are undone (`_draw_ahead` draws them again after the change)."""
        prov, drawn_from = self._prov, self._spec_state
        if prov is None or drawn_from is None:
            return  # every change ends drawing ahead: no state kept, no load waits
        self._spec_state = None
        due = self._waiting(now)
        if due == self._drawn_ahead:
            # every load drawn ahead is due (each node has come up since): undoing and
            # drawing them again, in the same order from the same state, would give
            # the same loads and leave the generator where it is
            self._loaded[self._order[:due]] = True
            return
        prov.bit_generator.state = drawn_from
        self._draw_loads(due, final=True)

    def _draw_ahead(self) -> None:
        """Draw the loads of nodes still booting (the kernel needs their ready times)."""
        prov = self._prov
        if prov is None:
            return
        waiting = self._waiting(math.inf)
        if waiting:  # else nothing is drawn ahead, and nothing needs undoing
            self._spec_state = dict(prov.bit_generator.state)
            self._drawn_ahead = waiting
            self._draw_loads(waiting, final=False)

    def _waiting(self, up_by: float) -> int:
        """How many replicas wait for a model load on a node up by `up_by`; they are
        in `_order[:count]`, in the order their nodes come up (ties: launch order),
        as the DES draws their loads."""
        return FK.waiting_order(
            self._loaded, self.node_up_s, self.node_seq, self.desired, self.per_node,
            float(up_by), self._order,
        )  # fmt: skip

    def _draw_loads(self, count: int, final: bool) -> None:
        """Model loads of the first `count` replicas of `_order` (see `_waiting`)."""
        prov, load_s, per_node = self._prov, self._load_s, self.per_node
        assert prov is not None
        ready_at, up_s, loaded = self.ready_at, self.node_up_s, self._loaded
        for r in self._order[:count].tolist():
            ready_at[r] = up_s[r // per_node] + load_s(prov)
            if final:
                loaded[r] = True

    # -- capacity changes ----------------------------------------------------
    def _nodes(self, replicas: int) -> int:
        return math.ceil(replicas / self.per_node)

    def _launch(self, first: int, last: int, now: float, instant: bool) -> None:
        """Launch nodes [first, last) at `now`: per node, as plain numbers (a change
        launches a node or a few; numpy's per-call cost was most of a launch)."""
        count = last - first
        if count <= 0:
            return
        pool, rng = self.pool, self.rng
        self.node_seq[first:last] = range(self._launches, self._launches + count)
        self._launches += count
        up: list[float]
        if instant:
            up = [now] * count
        elif self._prov is not None:
            up = [now + boot_s for boot_s in self._boots(count)]
        elif isinstance(pool, GpuNodePool):
            drawn = now + sample_many(pool.node_boot_s, rng, count)
            drawn += sample_many(pool.image_pull_s, rng, count)
            up = drawn.tolist()
        else:
            warm = min(self.warm_pool, count)
            self.warm_pool -= warm
            up = (now + sample_many(pool.warm_start_s, rng, warm)).tolist()
            up += (now + sample_many(pool.instance_boot_s, rng, count - warm)).tolist()
        # node k is spot when that keeps the spot count at round(share x nodes),
        # the same deterministic rule as the SimPy engine
        spot = [False] * count
        if pool.spot_share > 0.0:
            for i in range(count):
                target = math.floor(pool.spot_share * (self._open_nodes + i + 1) + 0.5)
                if self._spot_nodes < target:
                    spot[i] = True
                    self._spot_nodes += 1
        spot_usd, od_usd = self._spot_usd_per_s, self._od_usd_per_s
        spot_hazard, od_hazard = self._hazard_spot_per_s, self._hazard_od_per_s
        price = [spot_usd if s else od_usd for s in spot]
        launch_s, up_s, death_s = self.node_launch_s, self.node_up_s, self.node_death_s
        usd_per_s, node_spot = self.node_usd_per_s, self.node_spot
        for i in range(count):
            node, hazard = first + i, spot_hazard if spot[i] else od_hazard
            launch_s[node], up_s[node], usd_per_s[node], node_spot[node] = (
                now,
                up[i],
                price[i],
                spot[i],
            )
            # one draw per live node, in node order, as one bulk draw of them gives
            death_s[node] = now + float(rng.exponential(1.0 / hazard)) if hazard > 0.0 else math.inf
        # numpy's sum: in order below 8 terms, pairwise from 8 (the bill stays bit for bit)
        total = sum(price) if count < 8 else float(np.sum(price))
        self._open_usd_per_s += total
        self._open_usd_launch += total * now
        self._open_nodes += count
        self._open_launch_sum += count * now

    def _boots(self, count: int) -> list[float]:
        """Seconds until each of `count` nodes launched now is up, drawn per node in
        the DES's order (`sim.des.nodes.NodeTimings.boot_s`)."""
        prov = self._prov
        assert prov is not None
        if isinstance(self.pool, GpuNodePool):
            boot_s, pull_s = self._boot_s, self._pull_s
            return [boot_s(prov) + pull_s(prov) for _ in range(count)]
        out = []
        for _ in range(count):
            if self.warm_pool > 0:
                self.warm_pool -= 1
                self._boot_s(prov)  # the DES's refill of the warm pool
                out.append(self._warm_s(prov))
            else:
                out.append(self._boot_s(prov))
        return out

    def _place(self, first: int, last: int, now: float, instant: bool) -> None:
        """Put replicas [first, last) on their nodes; each loads its model after the node is up."""
        count = last - first
        if count <= 0:
            return
        per_node, prov = self.per_node, self._prov
        if prov is not None and not instant:
            # on a node that is up the load starts now; the others draw theirs later
            ready_at, until, loaded, load_s = self.ready_at, self.until, self._loaded, self._load_s
            up_s, death_s = self.node_up_s, self.node_death_s
            for r in range(first, last):
                node = r // per_node
                until[r] = death_s[node]
                if up_s[node] <= now:
                    ready_at[r] = now + load_s(prov)
                    loaded[r] = True
                else:
                    ready_at[r] = math.inf
                    loaded[r] = False
            return
        nodes = np.arange(first, last) // per_node
        self._loaded[first:last] = True
        load = np.zeros(count) if instant else sample_many(self.pool.model_load_s, self.rng, count)
        self.ready_at[first:last] = np.maximum(self.node_up_s[nodes], now) + load
        self.until[first:last] = self.node_death_s[nodes]

    def _add(self, desired: int, now: float, instant: bool) -> None:
        # the DES fills the nodes it has first, then launches new ones
        filled = min(desired, self._nodes(self.desired) * self.per_node)
        self._place(self.desired, filled, now, instant)
        self._launch(self._nodes(self.desired), self._nodes(desired), now, instant)
        self._place(filled, desired, now, instant)

    def _close(self, node: int, end_s: float) -> None:
        self._close_node(
            float(self.node_launch_s[node]), float(self.node_usd_per_s[node]),
            bool(self.node_spot[node]), end_s,
        )  # fmt: skip

    def _close_node(self, launch: float, price: float, spot: bool, end_s: float) -> None:
        """Bill a node launched at `launch` at `price` a second until `end_s`."""
        life = max(end_s - launch, 0.0)
        self.closed_usd += price * max(life, self.billing_min_s)
        self.closed_node_s += life
        self._open_usd_per_s -= price
        self._open_usd_launch -= price * launch
        self._open_nodes -= 1
        self._open_launch_sum -= launch
        self._spot_nodes -= spot
        self.closed_billed_s += max(life, self.billing_min_s)

    def _remove(self, desired: int, now: float, drain_s: float) -> None:
        per_node, old = self.per_node, self.desired
        if per_node == 1 and self._prov is not None:
            self._to_top(self._removal_order(now, old - desired))
        self._record_drain(desired, now, drain_s)
        first_node, last_node = self._nodes(desired), self._nodes(old)
        # whether each removed node's replicas include a ready one, from its first on
        ready = (self.ready_at[first_node * per_node : old] <= now).tolist()
        removed = slice(first_node, last_node)
        launches = self.node_launch_s[removed].tolist()
        prices = self.node_usd_per_s[removed].tolist()
        spots = self.node_spot[removed].tolist()
        for i in range(last_node - first_node):
            # a node whose replicas serve drains (billed until its requests end), as
            # the SimPy engine drains busy replicas; a pending one is cancelled at once
            serving = any(ready[i * per_node : (i + 1) * per_node])
            self._close_node(launches[i], prices[i], spots[i], now + (drain_s if serving else 0.0))
            if self._warm_pool_size > 0:
                # instances return to the warm pool on scale-in (ASG ReuseOnScaleIn)
                self.warm_pool = min(self.warm_pool + 1, self._warm_pool_size)
        self.ready_at[desired : self.desired] = np.inf
        self.until[desired : self.desired] = np.inf
        self._loaded[desired : self.desired] = False

    def _record_drain(self, desired: int, now: float, drain_s: float) -> None:
        """Record the serving replicas [desired, self.desired) removed at `now` as draining
        for `drain_s` seconds (none when `drain_s` is 0: the least busy are idle)."""
        if drain_s > 0.0:
            FK.record_drain(
                self.ready_at, self.until, desired, self.desired, float(now), float(drain_s),
                self.drain_end, self.drain_replicas,
            )  # fmt: skip

    def _removal_order(self, now: float, count: int) -> list[int]:
        """The first `count` replicas in the order the DES removes them
        (`SimInstancePool._shrink`), one replica per node: pending on a node still
        booting, then pending while loading, then serving; newest first within each
        (the DES drains the least busy of the serving ones, which the fluid does not
        track)."""
        order = self._order
        FK.removal_order(
            self.node_up_s, self.ready_at, self.node_seq, self.desired, float(now), count, order
        )
        return order[:count].tolist()

    def _to_top(self, chosen: list[int]) -> None:
        """Move replicas `chosen` (one per node) to the highest indices, keeping the
        order of the others, so that removing the highest indices removes them."""
        d = self.desired
        if chosen == list(range(d - 1, d - 1 - len(chosen), -1)):
            return  # already the highest, newest first (the common case): nothing moves
        picked = set(chosen)
        perm = np.array([r for r in range(d) if r not in picked] + chosen[::-1], dtype=np.int64)
        for arr in (
            self.ready_at, self.until, self._loaded, self.node_launch_s, self.node_up_s,
            self.node_death_s, self.node_usd_per_s, self.node_spot, self.node_seq,
        ):  # fmt: skip
            arr[:d] = arr[:d][perm]

    def replace_dead(self, horizon_s: float) -> int:
        """Replace nodes that died before `horizon_s`; the replacement launches at the death."""
        nodes = self._nodes(self.desired)
        deaths = np.flatnonzero(self.node_death_s[:nodes] < horizon_s)
        for node in deaths.tolist():
            died = float(self.node_death_s[node])
            self._settle_loads(died)
            self._close(node, died)
            self._launch(node, node + 1, died, instant=False)
            first = node * self.per_node
            self._place(first, min(first + self.per_node, self.desired), died, instant=False)
            self._draw_ahead()
        self.replaced_nodes += len(deaths)
        return len(deaths)

    # -- read-outs -------------------------------------------------------------
    def ready(self, now: float) -> int:
        """Replicas serving at `now` (ready and on a live node)."""
        return self.ready_pending(now)[0]

    def pending(self, now: float) -> int:
        """Replicas desired and not yet serving at `now`."""
        return self.ready_pending(now)[1]

    def ready_pending(self, now: float) -> tuple[int, int]:
        """(`ready(now)`, `pending(now)`) in one pass."""
        return FK.ready_pending(self.ready_at, self.until, self.desired, float(now))

    def cost_usd(self, now: float) -> float:
        """Billed cost so far: closed nodes at their billed time plus running nodes' time."""
        closed, rate, launch = self.cost_terms()
        return closed + rate * now - launch

    def cost_terms(self) -> tuple[float, float, float]:
        """(closed, rate, launch): the cost at time t is closed + rate * t - launch
        until the next launch or close, so an engine can keep the terms at each change
        instead of the cost at every interval."""
        return self.closed_usd, self._open_usd_per_s, self._open_usd_launch

    def node_seconds(self, now: float) -> float:
        return self.closed_node_s + self._open_nodes * now - self._open_launch_sum

    def _open_lives(self, end_s: float) -> tuple[FloatArray, FloatArray]:
        nodes = self._nodes(self.desired)
        lives = np.maximum(end_s - self.node_launch_s[:nodes], self.billing_min_s)
        return lives, self.node_usd_per_s[:nodes]

    def final_cost_usd(self, end_s: float) -> float:
        """Cost at the end of the run, the billing minimum applied to running nodes too."""
        lives, prices = self._open_lives(end_s)
        return self.closed_usd + float(lives @ prices)

    def billed_node_seconds(self, end_s: float) -> float:
        """Billed node-seconds at the end of the run (minimum applied), for GPU-hours."""
        lives, _ = self._open_lives(end_s)
        return self.closed_billed_s + float(lives.sum())

    def ready_arrays(self) -> tuple[FloatArray, FloatArray]:
        return self.ready_at, self.until

    def drain_arrays(self) -> tuple[FloatArray, FloatArray]:
        """(end time, replicas) per scale-in whose drained replicas may still serve."""
        return self.drain_end, self.drain_replicas
