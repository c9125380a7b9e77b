"""Capacity pools: GPU node pools, EC2 autoscaling groups, serverless endpoints.

The unit a scaling policy decides is the *serving replica* (one model server
holding `max_batch` batch slots). Instance pools pack replicas onto nodes
(`replicas_per_node`), bill per node, and provision a node in steps (boot, image
pull, model load). A serverless endpoint scales by concurrency on its own; a
policy may only set its provisioned concurrency.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.capacity.catalog import lookup
from sim.capacity.cpu_models import CONTAINER_START_S, DEFAULT_SERVERLESS_MODEL, cpu_model
from sim.capacity.distributions import Delay
from sim.capacity.service import ServiceModel, TokenService
from sim.errors import ScenarioError


class _PoolBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "gpu"
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=64, ge=1)
    initial_replicas: int | None = Field(
        default=None, ge=0, description="replicas ready at t = 0; default min_replicas"
    )
    service: ServiceModel = Field(default_factory=TokenService)
    queue_timeout_s: float = Field(
        default=60.0, gt=0.0, description="a request waiting longer is dropped"
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> _PoolBase:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas "
                f"({self.max_replicas}); set min_replicas <= max_replicas"
            )
        start = self.start_replicas
        if not self.min_replicas <= start <= self.max_replicas:
            raise ValueError(f"initial_replicas ({start}) must lie in [min_replicas, max_replicas]")
        return self

    @property
    def start_replicas(self) -> int:
        return self.min_replicas if self.initial_replicas is None else self.initial_replicas


class _InstancePool(_PoolBase):
    """Replicas packed on billed instances, with provisioning steps and spot capacity."""

    instance_type: str = "g5.xlarge"
    gpus_per_node: int | None = Field(default=None, ge=0, description="default: catalog")
    replicas_per_gpu: int = Field(default=1, ge=1)
    price_usd_per_h: float | None = Field(default=None, ge=0.0, description="default: catalog")
    spot_price_usd_per_h: float | None = Field(default=None, ge=0.0)
    spot_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of nodes bought as spot"
    )
    spot_interruption_per_h: float = Field(
        default=0.05, ge=0.0, description="hazard of a spot reclaim per spot node-hour"
    )
    node_failure_per_h: float = Field(default=0.0, ge=0.0)
    billing_min_s: float = Field(
        default=60.0, ge=0.0, description="EC2 per-second billing has a 60 s minimum"
    )
    model_load_s: Delay = Field(default_factory=lambda: Delay(kind="lognormal", mean_s=60, cv=0.2))

    @model_validator(mode="after")
    def _check_instance(self) -> _InstancePool:
        if self.price_usd_per_h is None or self.gpus_per_node is None:
            try:
                lookup(self.instance_type)
            except ScenarioError as exc:
                raise ValueError(str(exc)) from None
        return self

    @property
    def gpus(self) -> int:
        return (
            self.gpus_per_node
            if self.gpus_per_node is not None
            else lookup(self.instance_type).gpus
        )

    @property
    def replicas_per_node(self) -> int:
        """Replicas one node hosts: one per GPU times `replicas_per_gpu` (one for CPU)."""
        return max(self.gpus, 1) * self.replicas_per_gpu

    @property
    def on_demand_usd_per_h(self) -> float:
        if self.price_usd_per_h is not None:
            return self.price_usd_per_h
        return lookup(self.instance_type).on_demand_usd_per_h

    @property
    def spot_usd_per_h(self) -> float:
        if self.spot_price_usd_per_h is not None:
            return self.spot_price_usd_per_h
        if self.price_usd_per_h is not None:
            return self.price_usd_per_h
        return lookup(self.instance_type).spot_usd_per_h

    @property
    def node_usd_per_h(self) -> float:
        """Expected price of one node given the spot share."""
        share = self.spot_share
        return (1.0 - share) * self.on_demand_usd_per_h + share * self.spot_usd_per_h

    def nodes_for(self, replicas: int) -> int:
        return math.ceil(replicas / self.replicas_per_node)


class GpuNodePool(_InstancePool):
    """A Kubernetes GPU node group: node boot, image pull, model load per new node."""

    kind: Literal["gpu-node-pool"] = "gpu-node-pool"
    node_boot_s: Delay = Field(default_factory=lambda: Delay(kind="lognormal", mean_s=120, cv=0.2))
    image_pull_s: Delay = Field(default_factory=lambda: Delay(kind="lognormal", mean_s=90, cv=0.3))

    def provisioning_mean_s(self) -> float:
        """Mean time from request to a ready replica on a new node."""
        return self.node_boot_s.mean_s + self.image_pull_s.mean_s + self.model_load_s.mean_s


class Ec2AutoScalingGroup(_InstancePool):
    """An EC2 ASG serving directly on instances (no Kubernetes).

    `warm_pool_size` stopped instances start in `warm_start_s` instead of a full
    boot; `instance_warmup_s` is the AWS default instance warmup during which a new
    instance's metrics are not counted (AWS Auto Scaling user guide).
    """

    kind: Literal["ec2-asg"] = "ec2-asg"
    instance_boot_s: Delay = Field(
        default_factory=lambda: Delay(kind="lognormal", mean_s=150, cv=0.2)
    )
    warm_pool_size: int = Field(default=0, ge=0)
    warm_start_s: Delay = Field(default_factory=lambda: Delay(kind="lognormal", mean_s=30, cv=0.2))
    instance_warmup_s: float = Field(default=300.0, ge=0.0)

    def provisioning_mean_s(self) -> float:
        return self.instance_boot_s.mean_s + self.model_load_s.mean_s


class ServerlessEndpoint(_PoolBase):
    """A serverless inference endpoint (SageMaker serverless style): one request per
    instance, cold start when no warm instance is idle, idle instances expire after
    `keep_alive_s`. Billing is per millisecond of compute per GB of memory.

    SageMaker serverless limits (developer guide): memory 1-6 GB, max concurrency
    1-200, no GPUs. Price: SageMaker pricing page, serverless inference, us-east-1,
    USD 0.0000200 per second for 1 GB; provisioned concurrency is billed for the
    time it is configured.

    With no GPU, what it serves is a small model on CPU: `model` (default
    Qwen/Qwen2.5-0.5B-Instruct, what the stacks deploy) names an entry of
    `sim.capacity.cpu_models`, which gives the default `service` (one request per
    instance, prefill and decode times at `memory_gb`'s vCPU share) and
    `cold_start_s` (container start, weights download and load). A pool that gives
    its own `service` keeps it; without `model` it is then a generic function whose
    cold start defaults to the container start alone (`CONTAINER_START_S`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["serverless"] = "serverless"
    name: str = "serverless"
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(default=200, ge=1, le=200, description="max concurrency")
    memory_gb: int = Field(default=6, ge=1, le=6)
    model: str | None = Field(
        default=DEFAULT_SERVERLESS_MODEL,
        description="the model served on CPU (a sim.capacity.cpu_models id); None: unnamed",
    )
    cold_start_s: Delay = Field(
        default_factory=lambda: Delay(kind="lognormal", mean_s=CONTAINER_START_S, cv=0.3)
    )
    keep_alive_s: float = Field(default=600.0, ge=0.0)
    price_usd_per_gb_s: float = Field(default=0.0000200, ge=0.0)
    provisioned_usd_per_gb_s: float = Field(default=0.0000048, ge=0.0)
    billing_granularity_s: float = Field(default=0.001, gt=0.0)
    spill_queue_threshold: int = Field(
        default=0,
        ge=0,
        description=(
            "as a scenario's spillover: a request spills here when the primary pool has "
            "no free batch slot and at least this many requests already wait in its queue "
            "(0: spill instead of queueing, as MArk does while GPU nodes boot)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data: Any) -> Any:
        """Fill `service` and `cold_start_s` from the named model at this memory size."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        has_service = data.get("service") is not None
        if has_service and "model" not in data:
            data["model"] = None  # the scenario's own service model, unnamed
        model_id = data.get("model", DEFAULT_SERVERLESS_MODEL)
        if model_id is None:
            if not has_service:
                raise ValueError(
                    "a serverless pool with model: null needs its own `service` "
                    "(or name a model: see sim/capacity/cpu_models.py)"
                )
            return data
        if has_service and "cold_start_s" in data:
            return data  # named, with its own times: nothing to look up
        try:
            entry = cpu_model(str(model_id))
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
        memory_gb = data.get("memory_gb", cls.model_fields["memory_gb"].default)
        if isinstance(memory_gb, int) and 1 <= memory_gb <= 6:
            if not entry.fits(memory_gb):
                raise ValueError(
                    f"model {model_id}: its float32 weights ({entry.weights_gib:g} GiB) do not "
                    f"fit in memory_gb {memory_gb}; use {entry.smallest_memory_gb()} GB or more"
                )
            if not has_service:
                data["service"] = entry.service(memory_gb)
        if "cold_start_s" not in data:
            data["cold_start_s"] = entry.cold_start()
        return data

    @property
    def served_by(self) -> str:
        """Who answers a request here, in words (for reports)."""
        if self.model is None:
            return "the scenario's own service model"
        return f"{self.model.rsplit('/', 1)[-1]} on CPU ({self.memory_gb} GB serverless)"

    def provisioning_mean_s(self) -> float:
        return self.cold_start_s.mean_s


Pool = Annotated[
    GpuNodePool | Ec2AutoScalingGroup | ServerlessEndpoint, Field(discriminator="kind")
]
InstancePool = GpuNodePool | Ec2AutoScalingGroup
