"""The assumptions behind a what-if's figures: prices, provisioning delay, instance shape.

Every cost and ratio in a report rests on them, so the report prints them in its
header and the JSON carries them resolved: a price the scenario left to the
instance catalog appears as the catalog's number, never as null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.capacity.pools import (
    Ec2AutoScalingGroup,
    GpuNodePool,
    InstancePool,
    ServerlessEndpoint,
)
from sim.scenario import Scenario


@dataclass(frozen=True)
class Assumptions:
    """What a capacity planner must agree with before trusting the costs."""

    pool_kind: str
    #: None for a serverless primary pool.
    instance_type: str | None
    gpus_per_node: int
    replicas_per_node: int
    #: Expected price of one node-hour given the spot share (USD).
    price_usd_per_node_h: float | None
    #: `price_usd_per_node_h` per GPU; None without GPUs (CPU instances, serverless).
    price_usd_per_gpu_h: float | None
    on_demand_usd_per_h: float | None
    spot_usd_per_h: float | None
    spot_share: float
    #: "scenario" when the scenario sets the price, "catalog" when it comes from
    #: sim/capacity/catalog.py (AWS list prices, us-east-1).
    price_source: str
    #: Mean time from a scale-out decision to a serving replica.
    provisioning_delay_s: float
    #: The steps that add up to `provisioning_delay_s` (means, seconds).
    provisioning_steps_s: dict[str, float]
    #: Requests per second one replica completes at a full batch on this workload.
    replica_capacity_rps: float
    max_batch: int
    min_replicas: int
    max_replicas: int
    #: A serverless endpoint's prices, cold start and who serves its requests (`served_by`,
    #: e.g. "Qwen2.5-0.5B-Instruct on CPU (6 GB serverless)"; role "primary" or "spillover").
    serverless: dict[str, float | int | str] | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def summary(self) -> str:
        """One line for a report header."""
        parts = []
        if self.instance_type is not None:
            gpus = f"{self.gpus_per_node} GPU" + ("s" if self.gpus_per_node != 1 else "")
            parts.append(
                f"{self.instance_type} ({gpus} per node, {self.replicas_per_node} "
                f"replica{'s' if self.replicas_per_node != 1 else ''} per node)"
            )
        else:
            parts.append(self.pool_kind)
        if self.price_usd_per_gpu_h is not None:
            parts.append(f"USD {self.price_usd_per_gpu_h:,.4g} per GPU-hour ({self.price_source})")
        elif self.price_usd_per_node_h is not None:
            parts.append(
                f"USD {self.price_usd_per_node_h:,.4g} per node-hour ({self.price_source})"
            )
        if self.spot_share > 0:
            parts.append(f"{self.spot_share:.0%} spot at USD {self.spot_usd_per_h:,.4g}/h")
        steps = " + ".join(f"{name} {s:g} s" for name, s in self.provisioning_steps_s.items())
        parts.append(f"provisioning delay {self.provisioning_delay_s:g} s mean ({steps})")
        parts.append(
            f"one replica serves {self.replica_capacity_rps:.3g} req/s at a full batch of "
            f"{self.max_batch}"
        )
        if self.serverless is not None:
            parts.append(
                f"{self.serverless['role']} serverless at USD "
                f"{self.serverless['price_usd_per_gb_s']:g} per GB-second, its requests "
                f"served by {self.serverless['served_by']}"
            )
        return "; ".join(parts)


def _steps(pool: GpuNodePool | Ec2AutoScalingGroup | ServerlessEndpoint) -> dict[str, float]:
    if isinstance(pool, GpuNodePool):
        return {
            "node boot": pool.node_boot_s.mean_s,
            "image pull": pool.image_pull_s.mean_s,
            "model load": pool.model_load_s.mean_s,
        }
    if isinstance(pool, Ec2AutoScalingGroup):
        return {
            "instance boot": pool.instance_boot_s.mean_s,
            "model load": pool.model_load_s.mean_s,
        }
    return {"cold start": pool.cold_start_s.mean_s}


def _serverless_prices(endpoint: ServerlessEndpoint, role: str) -> dict[str, float | int | str]:
    return {
        "role": role,
        "name": endpoint.name,
        "memory_gb": endpoint.memory_gb,
        "price_usd_per_gb_s": endpoint.price_usd_per_gb_s,
        "provisioned_usd_per_gb_s": endpoint.provisioned_usd_per_gb_s,
        "cold_start_s": endpoint.cold_start_s.mean_s,
        "served_by": endpoint.served_by,
    }


def assumptions_for(scenario: Scenario, replica_capacity_rps: float) -> Assumptions:
    """The resolved assumptions of `scenario` (catalog defaults filled in)."""
    pool = scenario.pool
    common: dict[str, Any] = {
        "pool_kind": pool.kind,
        "provisioning_delay_s": pool.provisioning_mean_s(),
        "provisioning_steps_s": _steps(pool),
        "replica_capacity_rps": replica_capacity_rps,
        "max_batch": pool.service.max_batch,
        "min_replicas": pool.min_replicas,
        "max_replicas": pool.max_replicas,
    }
    if isinstance(pool, ServerlessEndpoint):
        return Assumptions(
            instance_type=None,
            gpus_per_node=0,
            replicas_per_node=1,
            price_usd_per_node_h=None,
            price_usd_per_gpu_h=None,
            on_demand_usd_per_h=None,
            spot_usd_per_h=None,
            spot_share=0.0,
            price_source="scenario",
            **common,
            serverless=_serverless_prices(pool, "primary"),
        )
    gpus = pool.gpus
    node_price = pool.node_usd_per_h
    return Assumptions(
        instance_type=pool.instance_type,
        gpus_per_node=gpus,
        replicas_per_node=pool.replicas_per_node,
        price_usd_per_node_h=node_price,
        price_usd_per_gpu_h=node_price / gpus if gpus > 0 else None,
        on_demand_usd_per_h=pool.on_demand_usd_per_h,
        spot_usd_per_h=pool.spot_usd_per_h,
        spot_share=pool.spot_share,
        price_source="scenario" if pool.price_usd_per_h is not None else "catalog",
        **common,
        serverless=(
            None
            if scenario.spillover is None
            else _serverless_prices(scenario.spillover, "spillover")
        ),
    )


def gpus_for(pool: InstancePool | ServerlessEndpoint, replicas: int) -> int | None:
    """GPUs on the nodes that host `replicas`; None for pools without GPUs."""
    if isinstance(pool, ServerlessEndpoint) or pool.gpus <= 0:
        return None
    return pool.nodes_for(replicas) * pool.gpus


def resolved_pool_json(pool: InstancePool | ServerlessEndpoint) -> dict[str, Any]:
    """The pool as JSON with the catalog's defaults written in (no null prices)."""
    document = pool.model_dump(mode="json")
    if not isinstance(pool, ServerlessEndpoint):
        document["price_usd_per_h"] = pool.on_demand_usd_per_h
        document["spot_price_usd_per_h"] = pool.spot_usd_per_h
        document["gpus_per_node"] = pool.gpus
    return document
