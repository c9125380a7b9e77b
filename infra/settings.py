"""Typed stack settings: everything `Pulumi.<stack>.yaml` says, validated once.

These are the pydantic models; `infra.stack_file` maps Pulumi's `scaleplan:*`
config keys onto them (from the program's typed getters or from the YAML file),
so a bad value fails the same way everywhere, with the file, the key and the fix
in the message. No pulumi import here.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.node_shapes import SYSTEM_TYPES
from policies.stack_config import StackScaling
from sim.capacity.catalog import lookup
from sim.capacity.cpu_models import CPU_MODELS, MAX_WEIGHTS_SHARE
from sim.errors import ScenarioError, StackConfigError
from sim.scenario import Slo

Environment = Literal["dev", "staging", "prod"]

#: Tags every taggable AWS resource carries (checked by `infra.guardrails`).
REQUIRED_TAGS: tuple[str, ...] = ("scaleplan:stack", "owner", "cost-center")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_gpu_instance_types(types: tuple[str, ...]) -> tuple[str, ...]:
    for name in types:
        try:
            shape = lookup(name)
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
        if shape.gpus == 0:
            raise ValueError(f"instance type {name!r} has no GPU; use a g5/g6/p4d/p5 type")
        if name.startswith("ml."):
            raise ValueError(f"{name!r} is a SageMaker type; node pools and ASGs need EC2 types")
    return types


#: EC2 GPU instance types from the catalog, at least one (node pools and ASGs).
GpuInstanceTypes = Annotated[
    tuple[str, ...], Field(min_length=1), AfterValidator(_check_gpu_instance_types)
]


class NetworkSettings(_Model):
    """A new VPC across `azs`, or existing subnets (`vpc_id` + subnet ids)."""

    cidr: str = "10.0.0.0/16"
    azs: tuple[str, ...] = Field(min_length=2, description="EKS needs subnets in >= 2 AZs")
    # One NAT gateway is cheaper (dev); one per AZ survives an AZ outage (prod).
    nat_per_az: bool = False
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        net = ipaddress.ip_network(value)
        if net.prefixlen > 20:
            raise ValueError(
                f"cidr {value}: use /20 or larger to fit one public and one private /24+"
            )
        return value

    @model_validator(mode="after")
    def _existing(self) -> NetworkSettings:
        if (self.vpc_id is None) != (not self.private_subnet_ids):
            raise ValueError("give vpc_id and private_subnet_ids together, or neither")
        return self


class ClusterSettings(_Model):
    """The EKS control plane."""

    version: str = Field(default="1.33", pattern=r"^1\.\d{2}$")
    # The ranges `pulumi up` (CI runner egress, office/VPN) reaches the API from.
    # Empty means a private endpoint only, which the guardrails allow only in an
    # existing VPC, where a runner inside it can be named (docs/infra.md).
    public_access_cidrs: tuple[str, ...] = ()

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"public_access_cidrs: {cidr!r} is not a CIDR block") from None
        return cidrs

    log_types: tuple[str, ...] = ("api", "audit", "authenticator")


class NodePoolSettings(_Model):
    """One managed GPU node group."""

    name: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    instance_types: GpuInstanceTypes
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)
    disk_size_gb: int = Field(default=200, ge=50, description="model weights + images")

    @model_validator(mode="after")
    def _sizes(self) -> NodePoolSettings:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"node pool {self.name}: need min_size ({self.min_size}) <= desired_size "
                f"({self.desired_size}) <= max_size ({self.max_size})"
            )
        return self


class SystemNodeSettings(_Model):
    """The untainted on-demand node group for everything that is not a model server.

    CoreDNS, KEDA, the cluster autoscaler, Prometheus and the retraining job
    tolerate no GPU taint: without this group they stay Pending. The default type
    fits that job (2 CPU, 8 GiB, `infra.retrain_command.JOB_RESOURCES`) on a node.
    """

    instance_types: tuple[str, ...] = Field(default=("m7i.xlarge",), min_length=1)
    min_size: int = Field(default=2, ge=1, description="CoreDNS keeps two replicas")
    max_size: int = Field(default=3, ge=1)
    desired_size: int = Field(default=2, ge=1)
    disk_size_gb: int = Field(default=50, ge=20)

    @field_validator("instance_types")
    @classmethod
    def _types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        for name in types:
            if name not in SYSTEM_TYPES:
                raise ValueError(
                    f"system node type {name!r}: use one of {', '.join(sorted(SYSTEM_TYPES))}"
                )
        return types

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodeSettings:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"system nodes: need min_size ({self.min_size}) <= desired_size "
                f"({self.desired_size}) <= max_size ({self.max_size})"
            )
        return self


class ServiceSettings(_Model):
    """The model server Deployment on the GPU nodes."""

    name: str = Field(default="llm", pattern=r"^[a-z0-9-]{1,40}$")
    namespace: str = Field(default="inference", pattern=r"^[a-z0-9-]{1,40}$")
    image: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    # Size of the model's weights as loaded on the GPUs; the guardrails check they
    # leave room for the KV cache on `gpus_per_replica` GPUs. None: not checked.
    weights_gib: float | None = Field(default=None, gt=0)
    gpus_per_replica: int = Field(default=1, ge=1, le=8)
    port: int = Field(default=8000, ge=1, le=65535)
    cpu: str = "4"
    memory: str = "16Gi"
    replicas: int = Field(default=1, ge=0, description="initial replicas; the autoscaler owns it")
    # Context length the server reserves KV cache for; None: the model's own maximum,
    # which a large model on 24 GB GPUs cannot hold.
    max_model_len: int | None = Field(default=None, ge=256)
    # Shared memory for the tensor-parallel workers (NCCL); memory-backed, so it
    # counts against `memory`.
    shm_gi: int = Field(default=8, ge=1)
    # Node-local disk for downloaded weights (an emptyDir on the node's volume).
    model_cache_gi: int = Field(default=100, ge=10)


class AddonSettings(_Model):
    """Helm chart versions of the cluster add-ons (pinned: upgrades are deliberate)."""

    nvidia_device_plugin_version: str = "0.17.1"
    keda_version: str = "2.17.0"
    cluster_autoscaler_chart_version: str = "9.49.0"
    prometheus_chart_version: str = "25.27.0"
    prometheus_adapter_chart_version: str = "4.11.0"
    dcgm_exporter_chart_version: str = "3.6.1"


class WarmPoolSettings(_Model):
    """Pre-initialised stopped instances: a warm start instead of a full boot."""

    min_size: int = Field(default=0, ge=0)
    max_prepared: int | None = Field(default=None, ge=0)
    state: Literal["Stopped", "Running", "Hibernated"] = "Stopped"


class AsgSettings(_Model):
    """The EC2 Auto Scaling group serving directly on GPU instances."""

    instance_types: GpuInstanceTypes
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    on_demand_base_capacity: int = Field(default=0, ge=0)
    on_demand_pct_above_base: int = Field(default=100, ge=0, le=100)
    spot_allocation_strategy: Literal["price-capacity-optimized", "capacity-optimized"] = (
        "price-capacity-optimized"
    )
    warm_pool: WarmPoolSettings | None = None
    ami_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    volume_gb: int = Field(default=200, ge=50)
    # What the instances serve; None: the service's image and model, which must then
    # fit one instance's GPUs (the guardrails check).
    image: str | None = Field(default=None, min_length=1)
    model_id: str | None = Field(default=None, min_length=1)
    max_model_len: int | None = Field(default=None, ge=256)

    @model_validator(mode="after")
    def _sizes(self) -> AsgSettings:
        if self.min_size > self.max_size:
            raise ValueError(f"asg: min_size ({self.min_size}) is above max_size ({self.max_size})")
        if self.on_demand_base_capacity > self.max_size:
            raise ValueError("asg: on_demand_base_capacity exceeds max_size")
        if self.warm_pool is not None and (
            self.on_demand_pct_above_base < 100 or len(self.instance_types) > 1
        ):
            # EC2 Auto Scaling user guide, "Warm pools": not supported with a mixed
            # instances policy or with Spot Instances.
            raise ValueError(
                "asg: a warm pool needs one instance type and on-demand only "
                "(on_demand_pct_above_base: 100); AWS does not support warm pools with "
                "mixed instances policies or Spot"
            )
        return self

    @property
    def uses_mixed_instances(self) -> bool:
        """True when the group buys through a mixed instances policy (no warm pool)."""
        return self.warm_pool is None


class ServerlessSettings(_Model):
    """A SageMaker serverless endpoint (CPU only: SageMaker serverless has no GPUs).

    It serves a small CPU model as the spillover while GPU capacity boots: the
    Hugging Face CPU inference container loads `model_id` from the Hub at cold
    start (`HF_MODEL_ID`, `HF_TASK`), or `model_data_url` from S3. The simulator
    describes the same endpoint (`sim_spillover`): the model's CPU service time and
    cold start from `sim.capacity.cpu_models`, this memory size and max concurrency.
    """

    image: str = Field(min_length=1)
    model_id: str | None = Field(default=None, min_length=1)
    task: str = "text-generation"
    # Weights as the CPU container holds them (float32: 4 bytes a parameter); for a
    # model the simulator knows, default and check from `sim.capacity.cpu_models`.
    weights_gib: float | None = Field(default=None, gt=0)
    model_data_url: str | None = Field(default=None, pattern=r"^s3://")
    # SageMaker serverless limits: memory 1024-6144 MB in 1 GB steps, max concurrency 1-200.
    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 4096
    max_concurrency: int = Field(default=20, ge=1, le=200)
    provisioned_concurrency: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _model(self) -> ServerlessSettings:
        if (self.model_id is None) == (self.model_data_url is None):
            raise ValueError("serverless: give exactly one of model_id (Hub) and model_data_url")
        known = CPU_MODELS.get(self.model_id or "")
        weights_gib = self.weights_gib
        if weights_gib is None and known is not None:
            weights_gib = known.weights_gib
        # The weights, the runtime and a request's activations share `memory_mb`.
        if weights_gib is not None and weights_gib * 1024 > MAX_WEIGHTS_SHARE * self.memory_mb:
            raise ValueError(
                f"serverless: {weights_gib:g} GiB of weights leave too little of "
                f"{self.memory_mb} MB for the runtime; use a smaller model (SageMaker "
                "serverless has no GPUs and at most 6 GB)"
            )
        # A rounded figure (2 for 1.84) is fine; another model's size is a mistake.
        if (
            known is not None
            and abs((self.weights_gib or known.weights_gib) - known.weights_gib) > 0.25
        ):
            raise ValueError(
                f"serverless: weights_gib {self.weights_gib:g} for {self.model_id}, whose float32 "
                f"weights are {known.weights_gib:g} GiB (sim.capacity.cpu_models); leave "
                "weights_gib out"
            )
        return self

    def sim_spillover(self) -> dict[str, object]:
        """This endpoint as the simulator's spillover pool (a `ServerlessEndpoint` mapping).

        Raises:
            StackConfigError: the simulator has no CPU service model for the endpoint's
                model (an S3 `model_data_url`, or a Hub model it does not know): planning
                with another model's times would describe a different endpoint.
        """
        if self.model_id is None or self.model_id not in CPU_MODELS:
            served = self.model_id or f"the model at {self.model_data_url}"
            known = ", ".join(sorted(CPU_MODELS))
            raise StackConfigError(
                f"scaleplan:serverless serves {served}, which the simulator has no CPU service "
                f"model for (known: {known}); measure it (benchmarks/serverless_cpu_qwen.py "
                "shows how) and add it to sim/capacity/cpu_models.py, or deploy a known model"
            )
        return {
            "kind": "serverless",
            "model": self.model_id,
            "memory_gb": self.memory_mb // 1024,
            "max_replicas": self.max_concurrency,
            # the endpoint starts with its provisioned concurrency warm and keeps it
            # unless a policy (spillover's second actuator target) changes it
            "initial_replicas": self.provisioned_concurrency,
        }

    @model_validator(mode="after")
    def _provisioned(self) -> ServerlessSettings:
        if self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"serverless: provisioned_concurrency ({self.provisioned_concurrency}) must not "
                f"exceed max_concurrency ({self.max_concurrency})"
            )
        return self


class RetrainingSettings(_Model):
    """The scheduled retraining job: `planner retrain` on this stack's metrics (issue 13).

    A CronJob on the system nodes runs it under the job's IRSA role with the store
    in the stack's bundle bucket (`infra.retrain_command.retrain_args` builds its
    arguments from these fields). `slo` is the stack's SLO: what the planner
    optimises for, read by `planner retrain --stack` from this block.
    """

    # Off: the CronJob stays (history kept, runnable by hand) but is suspended.
    enabled: bool = True
    schedule: str = "0 3 * * *"
    # History the job learns from and scores on, in days.
    days: float = Field(default=14, gt=0, le=90)
    source: Literal["prometheus", "cloudwatch"] = "prometheus"
    # None: the in-cluster Prometheus the program installs (the prometheus chart's
    # server service, `infra.components.metrics.PROMETHEUS_URL`).
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    rl_budget_min: int = Field(default=20, ge=0)
    trials: int = Field(default=20, ge=1)
    slo: Slo
    # shadow: a new champion is recorded in the store, nothing live changes. active
    # (the job applies it, `--apply --yes --mode active`) is refused for now: see _mode.
    mode: Literal["shadow", "active"] = "shadow"
    active_deadline_s: int = Field(default=4 * 3600, ge=600)
    # The planner image built from this repository's Dockerfile. None: this stack's
    # own ECR repository (an output of the stack) at `image_tag`.
    image: str | None = Field(default=None, min_length=1)
    image_tag: str = Field(default="0.1.0", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and ("/example/" in value or value.endswith(":latest")):
            raise ValueError(
                f"image {value!r}: use the planner image built from this repository's "
                "Dockerfile, pinned to a version tag or digest (or leave image unset to use "
                "the stack's own ECR repository)"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        # Kubernetes CronJobs take five fields (no seconds, no year).
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"schedule {value!r} is not a 5-field cron expression "
                '(minute hour day-of-month month day-of-week, e.g. "0 3 * * *")'
            )
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        # `planner apply` from the pod would call scaling, EKS node-group and CloudWatch
        # alarm APIs the job's role does not grant (it grants only what a shadow run
        # calls), and it writes no HPA (only `planner emit` + `pulumi up` do): a nightly
        # AccessDenied, not an apply.
        if value == "active":
            raise ValueError(
                "mode active is not supported by the scheduled job yet: its IAM role grants "
                "none of the scaling, EKS node-group or CloudWatch alarm calls that `planner "
                "apply` makes; keep mode: shadow and apply the champion from a deploy runner "
                "(`planner apply --stack <stack> --bundle <path> --yes --mode active`)"
            )
        return value

    @model_validator(mode="after")
    def _deadline(self) -> RetrainingSettings:
        # The RL budget is one stage of a run; a deadline inside it kills every run.
        if self.active_deadline_s <= self.rl_budget_min * 60:
            raise ValueError(
                f"active_deadline_s ({self.active_deadline_s}) must exceed the RL budget "
                f"({self.rl_budget_min} min = {self.rl_budget_min * 60} s) plus the "
                "tuning and scoring; raise it or lower rl_budget_min"
            )
        return self


class BucketSettings(_Model):
    """The policy-bundle bucket."""

    force_destroy: bool = False
    noncurrent_days: int = Field(default=90, ge=1, description="keep old bundle versions")


class StackSettings(_Model):
    """Everything one stack deploys, validated."""

    project: str = "scaleplan"
    stack: str = Field(pattern=r"^[a-z0-9-]{1,32}$")
    environment: Environment
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    owner: str = Field(min_length=1)
    cost_center: str = Field(min_length=1)
    network: NetworkSettings
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    gpu_node_pools: tuple[NodePoolSettings, ...] = Field(min_length=1)
    system_nodes: SystemNodeSettings = Field(default_factory=SystemNodeSettings)
    addons: AddonSettings = Field(default_factory=AddonSettings)
    service: ServiceSettings
    asg: AsgSettings | None = None
    serverless: ServerlessSettings | None = None
    retraining: RetrainingSettings
    bucket: BucketSettings = Field(default_factory=BucketSettings)
    scaling: StackScaling | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StackSettings:
        names = [p.name for p in self.gpu_node_pools]
        if len(set(names)) != len(names):
            raise ValueError(f"gpuNodePools: names must be unique, got {names}")
        for az in self.network.azs:
            if not az.startswith(self.region):
                raise ValueError(f"network.azs: {az} is not in region {self.region}")
        if self.retraining.source == "cloudwatch" and self.asg is None:
            raise ValueError(
                "retraining.source cloudwatch reads the ASG's metrics and this stack has no "
                "asg; use source: prometheus (the cluster's own metrics)"
            )
        if self.scaling is not None:
            if self.scaling.asg is not None and self.asg is None:
                raise ValueError("scaling.asg is set but the stack has no asg; add scaleplan:asg")
            if self.scaling.serverless is not None:
                if self.serverless is None:
                    raise ValueError("scaling.serverless is set but the stack has no serverless")
                if self.serverless.provisioned_concurrency < 1:
                    raise ValueError(
                        "scaling.serverless scales provisioned concurrency: set "
                        "serverless.provisioned_concurrency >= 1"
                    )
        return self

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable AWS resource of this stack carries."""
        return {
            "scaleplan:stack": self.stack,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "scaleplan:environment": self.environment,
        }

    def with_scaling(
        self, scaling: StackScaling, source: str = "scaleplan:scaling"
    ) -> StackSettings:
        """These settings with another emitted policy, re-validated as a whole.

        The emit step (issue 11) is to call this (then `infra.guardrails.check_plan`) before it
        writes a new policy into a stack file, so a policy for a target the stack
        lacks fails there, not at `pulumi up`.

        Raises:
            StackConfigError: the policy does not fit this stack.
        """
        try:
            return StackSettings.model_validate(
                {**self.model_dump(), "scaling": scaling.model_dump()}
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise StackConfigError(
                f"{source}: does not fit stack {self.stack}: {problems}"
            ) from None

    def resource_name(self, suffix: str) -> str:
        """A physical-name prefix unique to this stack, e.g. `scaleplan-prod-gpu`."""
        return f"{self.project}-{self.stack}-{suffix}"
