"""The spillover routing rule: when a request leaves the GPU pool for serverless.

A request goes to the primary (instance) pool when one of its ready replicas has
a free batch slot. Otherwise it spills to the serverless endpoint when the
primary queue already holds at least `spillover.spill_queue_threshold` requests
and the endpoint would start it (warm or cold) rather than throttle it.
Otherwise it joins the primary queue. With the default threshold 0 the endpoint
absorbs every request the pool cannot start at once, as MArk does while GPU
nodes boot; a higher threshold tolerates a short queue before paying for
serverless compute.
"""

from __future__ import annotations

from sim.des.instance_pool import SimInstancePool
from sim.des.nodes import LogSink
from sim.des.serverless import SimServerlessPool


class SpilloverRouter:
    """Routes each arrival to the primary pool or the spillover endpoint."""

    def __init__(
        self, primary: SimInstancePool, spillover: SimServerlessPool, log: LogSink = None
    ) -> None:
        self.primary = primary
        self.spillover = spillover
        self.threshold = spillover.pool.spill_queue_threshold
        self._log = log

    def submit(self, request: int, now_s: float) -> None:
        primary, spillover = self.primary, self.spillover
        if (
            not primary.has_free_slot()
            and primary.waiting() >= self.threshold
            and spillover.can_accept(now_s)
        ):
            if self._log is not None:
                self._log.append(
                    (now_s, primary.name, "spill", f"req={request} to={spillover.name}")
                )
            spillover.submit(request, now_s)
        else:
            primary.submit(request, now_s)
