"""What a stack can scale, read from its `Pulumi.<stack>.yaml`: the compiler's target.

The stack file's other keys (node pools, ASG, serverless endpoint, cluster version)
fix the envelope a policy is compiled into; the `scaleplan:scaling` block itself is
ignored here, since `planner emit` replaces it (a broken old block must not stop a
new one from being emitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from infra.settings import StackSettings
from policies.stack_config import Bounds, TargetName
from sim.errors import StackConfigError, UserInputError

PoolKind = Literal["eks-gpu-node-pool", "ec2-asg", "serverless"]
Autoscaler = Literal["hpa", "keda"]

#: Stack target name -> the kind of pool it scales (the scenario's `pool.kind` vocabulary).
POOL_KINDS: dict[TargetName, PoolKind] = {
    "eks": "eks-gpu-node-pool",
    "asg": "ec2-asg",
    "serverless": "serverless",
}


@dataclass(frozen=True)
class PoolTarget:
    """One scaled target of a stack.

    Attributes:
        name: `eks` (inference replicas), `asg` (instances) or `serverless`
            (provisioned concurrency).
        kind: The pool kind behind it.
        bounds: The capacity envelope the stack's settings allow, in the target's unit.
    """

    name: TargetName
    kind: PoolKind
    bounds: Bounds


@dataclass(frozen=True)
class StackTarget:
    """Everything the compiler needs to know about one stack.

    Attributes:
        stack: The stack name (`dev`, `staging`, `prod`).
        environment: Its environment (sets the GPU budget guardrail).
        cluster_version: The EKS Kubernetes version (`1.33`): the schema the
            rendered HPA / ScaledObject manifests must validate against.
        eks_autoscaler: `keda` when the replica floor is 0 (an HPA cannot scale to
            zero), else `hpa`; the compiler switches to KEDA when a policy needs
            cron windows or a precomputed schedule, and says so in its notes.
        pools: The targets the stack has, in the order eks, asg, serverless.
        settings: The validated stack settings (for the guardrails).
    """

    stack: str
    environment: str
    cluster_version: str
    eks_autoscaler: Autoscaler
    pools: tuple[PoolTarget, ...]
    settings: StackSettings

    def pool(self, name: TargetName) -> PoolTarget | None:
        """The target named `name`, or None if the stack has none."""
        return next((p for p in self.pools if p.name == name), None)

    def only(self, names: tuple[TargetName, ...]) -> StackTarget:
        """This target restricted to `names` (what `--targets` selects).

        Raises:
            UserInputError: A name the stack does not have.
        """
        have = [p.name for p in self.pools]
        missing = [n for n in names if n not in have]
        if missing:
            raise UserInputError(
                f"--targets: stack {self.stack} has no {', '.join(missing)} target; "
                f"it has {', '.join(have)}"
            )
        pools = tuple(p for p in self.pools if p.name in names)
        return StackTarget(
            self.stack,
            self.environment,
            self.cluster_version,
            self.eks_autoscaler,
            pools,
            self.settings,
        )


def eks_bounds(settings: StackSettings) -> Bounds:
    """Replica bounds the GPU node pools allow, packed the way the guardrails pack them.

    A replica needs its GPUs, CPU and memory on one node, and a pool may launch any
    of its instance types, so each pool holds its size times the fewest replicas any
    of its types fits (`infra.node_shapes`, the rule `infra.guardrails.check_packing`
    applies). The floor is what the pools' minimum sizes hold (the on-demand base
    that never scales away), the ceiling what their maximum sizes hold.
    """
    from infra.node_shapes import node_shape, replicas_per_node

    s = settings.service

    def replicas(size_of: str) -> int:
        return sum(
            getattr(pool, size_of)
            * min(
                replicas_per_node(node_shape(t), s.cpu, s.memory, s.gpus_per_replica)
                for t in pool.instance_types
            )
            for pool in settings.gpu_node_pools
        )

    high = replicas("max_size")
    if high < 1:
        raise StackConfigError(
            f"stack {settings.stack}: the GPU node pools hold no replica of "
            f"{s.gpus_per_replica} GPU, {s.cpu} CPU, {s.memory}; raise a pool's max_size "
            "or use a larger instance type"
        )
    return Bounds(min=min(replicas("min_size"), high), max=high)


def stack_target(settings: StackSettings) -> StackTarget:
    """The compiler's view of a validated stack."""
    eks = eks_bounds(settings)
    pools = [PoolTarget("eks", POOL_KINDS["eks"], eks)]
    if settings.asg is not None:
        bounds = Bounds(min=settings.asg.min_size, max=settings.asg.max_size)
        pools.append(PoolTarget("asg", POOL_KINDS["asg"], bounds))
    if settings.serverless is not None and settings.serverless.provisioned_concurrency >= 1:
        # Application Auto Scaling scales provisioned concurrency: the configured
        # provisioned concurrency is the floor, the endpoint's max concurrency the ceiling.
        sls = settings.serverless
        bounds = Bounds(min=sls.provisioned_concurrency, max=sls.max_concurrency)
        pools.append(PoolTarget("serverless", POOL_KINDS["serverless"], bounds))
    return StackTarget(
        stack=settings.stack,
        environment=settings.environment,
        cluster_version=settings.cluster.version,
        eks_autoscaler="keda" if eks.min == 0 else "hpa",
        pools=tuple(pools),
        settings=settings,
    )


def stack_file_path(project_dir: Path, stack: str) -> Path:
    """`<project_dir>/Pulumi.<stack>.yaml`, which must exist.

    Raises:
        UserInputError: No such stack file (naming the stacks that do exist).
    """
    path = Path(project_dir) / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        found = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in Path(project_dir).glob("Pulumi.*.yaml")
        )
        raise UserInputError(
            f"stack {stack!r} has no config file {path}; stacks here: "
            f"{', '.join(found) or 'none'} (create one with `pulumi stack init {stack}`, "
            "or pass --project-dir)"
        )
    return path


def read_stack_target(path: Path, project: str = "scaleplan") -> StackTarget:
    """Read and validate a stack file, leaving out its `scaleplan:scaling` block."""
    from infra.stack_file import SECRET_KEYS, read_stack_file, settings_from_config

    raw = read_stack_file(path)
    region = raw.get("aws:region")
    if not isinstance(region, str):
        raise StackConfigError(f"{path}: missing aws:region; run `pulumi config set aws:region`")
    prefix = f"{project}:"
    values = {
        k.removeprefix(prefix): v
        for k, v in raw.items()
        if k.startswith(prefix) and k.removeprefix(prefix) not in (*SECRET_KEYS, "scaling")
    }
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    settings = settings_from_config(values, stack=stack, region=region, source=str(path))
    return stack_target(settings)
