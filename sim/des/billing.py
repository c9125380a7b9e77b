"""Billing of instance nodes and serverless compute.

Nodes: EC2 per-second billing from the launch request to release, with a 60 s
minimum per instance (EC2 On-Demand and Spot pricing pages, "per-second billing,
minimum of 60 seconds"; the pool's `billing_min_s`), at the on-demand or spot
price the node was bought at. GPU-hours are billed node-hours times the node's
GPUs.

Serverless: each invocation's compute time rounded up to `billing_granularity_s`
(SageMaker serverless bills per millisecond) times memory times the per GB-second
price, plus provisioned concurrency for the time it is configured.
"""

from __future__ import annotations

import numpy as np

from sim.workload.model import FloatArray


class NodeLedger:
    """Running bill of an instance pool's nodes.

    Attributes:
        closed_usd: Cost of nodes already released (minimum applied).
        closed_node_s: Billed seconds of released nodes.
    """

    def __init__(self, billing_min_s: float, gpus_per_node: int) -> None:
        self._min_s = billing_min_s
        self._gpus = gpus_per_node
        self._open: dict[int, tuple[float, float]] = {}  # node id -> (launch_s, usd_per_h)
        self.closed_usd = 0.0
        self.closed_node_s = 0.0

    def launch(self, node_id: int, now_s: float, usd_per_h: float) -> None:
        self._open[node_id] = (now_s, usd_per_h)

    def release(self, node_id: int, now_s: float) -> None:
        launch_s, usd_per_h = self._open.pop(node_id)
        billed_s = max(now_s - launch_s, self._min_s)
        self.closed_node_s += billed_s
        self.closed_usd += usd_per_h * billed_s / 3600.0

    def cost_usd(self, now_s: float, *, final: bool = False) -> float:
        """Cost up to `now_s`; with `final` the minimum is applied to open nodes too."""
        total = self.closed_usd
        for launch_s, usd_per_h in self._open.values():
            held_s = now_s - launch_s
            total += usd_per_h * (max(held_s, self._min_s) if final else held_s) / 3600.0
        return total

    def gpu_hours(self, now_s: float) -> float:
        """Billed node-hours (minimum applied) times GPUs per node, at the end of a run."""
        node_s = self.closed_node_s + sum(
            max(now_s - launch_s, self._min_s) for launch_s, _ in self._open.values()
        )
        return node_s * self._gpus / 3600.0


def billed_s(busy_s: FloatArray, granularity_s: float) -> FloatArray:
    """Compute times rounded up to the billing granularity (the 1e-9 absorbs float noise)."""
    return np.ceil(busy_s / granularity_s - 1e-9) * granularity_s
