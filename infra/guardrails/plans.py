"""Guardrails over stack settings, emitted policies and live changes.

`check_plan` is what the planner is to run before it emits a policy, `check_change`
on every live change it applies (issue 11); the program and the Automation API driver run
`enforce_stack` (`check_plan`, or `check_settings` without a policy) before
creating anything.
"""

from __future__ import annotations

from infra.guardrails.exposure import (
    API_ALLOWLIST_PREFIX_V4,
    API_ALLOWLIST_PREFIX_V6,
    is_open_cidr,
)
from infra.guardrails.resources import MAX_GPU_NODES, format_violations
from infra.guardrails.views import Violation
from infra.node_shapes import node_shape, replicas_per_node
from infra.settings import ServiceSettings, StackSettings
from policies.stack_config import Bounds, StackScaling
from sim.errors import StackConfigError

#: Share of a replica's GPU memory the weights may take; the rest holds the KV
#: cache and activations (vLLM preallocates 90 % of each GPU, and a server whose
#: weights fill most of that has no room for a useful batch).
WEIGHTS_SHARE_MAX = 0.75


def check_settings(settings: StackSettings) -> list[Violation]:
    """Rules over the stack settings alone (before any resource exists)."""
    out: list[Violation] = []
    env = settings.environment
    total = sum(p.max_size for p in settings.gpu_node_pools)
    if settings.asg is not None:
        total += settings.asg.max_size
        warm = settings.asg.warm_pool
        # A running warm pool keeps its instances up (billed) beside the group.
        if warm is not None and warm.state == "Running":
            total += warm.max_prepared if warm.max_prepared is not None else settings.asg.max_size
    limit = MAX_GPU_NODES[env]
    if total > limit:
        out.append(
            Violation(
                "max-gpu-nodes",
                settings.stack,
                f"pools reach {total} GPU nodes; {env} limit {limit}",
            )
        )
    if env == "prod":
        od_pool = any(
            p.capacity_type == "ON_DEMAND" and p.min_size >= 1 for p in settings.gpu_node_pools
        )
        od_asg = settings.asg is not None and settings.asg.on_demand_base_capacity >= 1
        if not (od_pool or od_asg):
            out.append(
                Violation(
                    "spot-not-only-capacity",
                    settings.stack,
                    "prod needs on-demand base capacity (an ON_DEMAND pool with min_size >= 1 "
                    "or asg.on_demand_base_capacity >= 1)",
                )
            )
    cidrs = settings.cluster.public_access_cidrs
    broad = [c for c in cidrs if is_open_cidr(c, API_ALLOWLIST_PREFIX_V4, API_ALLOWLIST_PREFIX_V6)]
    if broad:
        out.append(
            Violation(
                "no-public-endpoint",
                settings.stack,
                f"cluster.public_access_cidrs {', '.join(broad)} is wider than a "
                f"/{API_ALLOWLIST_PREFIX_V4} (IPv6 /{API_ALLOWLIST_PREFIX_V6}); list the "
                "runner's and office's ranges",
            )
        )
    out.extend(check_packing(settings)[1])
    asg = settings.asg
    if asg is not None and asg.model_id is None:
        smallest = min(node_shape(t).gpus for t in asg.instance_types)
        if settings.service.gpus_per_replica > smallest:
            out.append(
                Violation(
                    "asg-model",
                    settings.stack,
                    f"the ASG would serve the service's model ({settings.service.model_id}, "
                    f"{settings.service.gpus_per_replica} GPUs) on {smallest}-GPU instances; "
                    "set asg.model_id to a model that fits one instance",
                )
            )
    if not cidrs and settings.network.vpc_id is None:
        out.append(
            Violation(
                "unreachable-endpoint",
                settings.stack,
                "a private-only API endpoint in a VPC this stack creates cannot be reached by "
                "whatever runs `pulumi up`; set cluster.public_access_cidrs to the runner's "
                "egress range, or deploy into an existing VPC (network.vpc_id) with a runner in it",
            )
        )
    return out


def check_packing(settings: StackSettings) -> tuple[int, list[Violation]]:
    """Replicas the GPU node pools hold at their max sizes, and packing violations.

    A replica needs GPUs, CPU and memory on one node; the fewest replicas any
    allowed instance type holds decide a pool's count, since the node group may
    launch any of them. A type on which CPU or memory leaves GPUs idle, or on
    which no replica fits, is a violation, as are weights that leave too little
    GPU memory for the KV cache.
    """
    s: ServiceSettings = settings.service
    out: list[Violation] = []
    total = 0
    for pool in settings.gpu_node_pools:
        per_node = []
        for name in pool.instance_types:
            shape = node_shape(name)
            fit = replicas_per_node(shape, s.cpu, s.memory, s.gpus_per_replica)
            per_node.append(fit)
            used = fit * s.gpus_per_replica
            if fit == 0:
                out.append(
                    Violation(
                        "packing",
                        f"{settings.stack}/{pool.name}",
                        f"no replica ({s.gpus_per_replica} GPU, {s.cpu} CPU, {s.memory}) fits on "
                        f"{name} ({shape.gpus} GPU, {shape.allocatable_cpu_m}m CPU, "
                        f"{shape.allocatable_memory_mib} MiB allocatable)",
                    )
                )
            elif used < shape.gpus:
                out.append(
                    Violation(
                        "packing",
                        f"{settings.stack}/{pool.name}",
                        f"{fit} replica(s) of {s.cpu} CPU / {s.memory} fit on {name}: "
                        f"{shape.gpus - used} of its {shape.gpus} GPUs stay idle; lower "
                        "service.cpu/memory or change gpus_per_replica",
                    )
                )
            if s.weights_gib is not None:
                room = s.gpus_per_replica * shape.gpu_memory_gib_per_gpu * WEIGHTS_SHARE_MAX
                if s.weights_gib > room:
                    out.append(
                        Violation(
                            "gpu-memory",
                            f"{settings.stack}/{pool.name}",
                            f"{s.weights_gib:g} GiB of weights on {s.gpus_per_replica} x "
                            f"{shape.gpu_memory_gib_per_gpu} GiB GPUs of {name} leave no room "
                            f"for the KV cache (at most {room:g} GiB); raise gpus_per_replica",
                        )
                    )
        total += pool.max_size * min(per_node)
    return total, out


def enforce_stack(settings: StackSettings) -> None:
    """Refuse a stack whose settings or emitted policy break a guardrail.

    Raises:
        StackConfigError: listing every violation; nothing should be created.
    """
    violations = (
        check_plan(settings.scaling, settings)
        if settings.scaling is not None
        else check_settings(settings)
    )
    if violations:
        raise StackConfigError(
            f"stack {settings.stack} breaks guardrails:\n" + format_violations(violations)
        )


def check_plan(scaling: StackScaling, settings: StackSettings) -> list[Violation]:
    """Guardrails the planner runs before it emits or applies `scaling` to a stack.

    Checks the emitted bounds against the stack's envelope: replicas must fit on
    the GPU node pools, the ASG may not grow past its configured max size (the
    budget line), serverless provisioned concurrency stays within max concurrency.
    """
    out = list(check_settings(settings))
    stack = settings.stack
    eks = scaling.eks
    fit, _ = check_packing(settings)  # its violations are among check_settings'
    if eks is not None and eks.bounds.max > fit:
        s = settings.service
        out.append(
            Violation(
                "bounds",
                stack,
                f"eks.bounds.max {eks.bounds.max} replicas need more nodes than the node pools "
                f"hold ({fit} replicas of {s.gpus_per_replica} GPU, {s.cpu} CPU, {s.memory})",
            )
        )
    asg = scaling.asg
    if asg is not None and settings.asg is not None and asg.bounds.max > settings.asg.max_size:
        out.append(
            Violation(
                "bounds",
                stack,
                f"asg.bounds.max {asg.bounds.max} exceeds the stack's asg.max_size "
                f"{settings.asg.max_size}",
            )
        )
    sls = scaling.serverless
    sls_settings = settings.serverless
    if (
        sls is not None
        and sls_settings is not None
        and sls.bounds.max > sls_settings.max_concurrency
    ):
        out.append(
            Violation(
                "bounds",
                stack,
                f"serverless.bounds.max {sls.bounds.max} exceeds max_concurrency "
                f"{sls_settings.max_concurrency}",
            )
        )
    return out


def check_change(
    target: str, current: int, desired: int, bounds: Bounds, max_step: int | None = None
) -> list[Violation]:
    """Guardrails on one live capacity change (the apply step of issue 11, any actuator).

    Args:
        target: What is being changed, for messages (e.g. `prod/asg`).
        current: Capacity in force now.
        desired: Capacity the policy asks for.
        bounds: The emitted bounds of the target (the floor is `bounds.min`).
        max_step: Largest change allowed in one action; None for no limit.
    """
    out: list[Violation] = []
    if desired < bounds.min:
        out.append(
            Violation("bounds", target, f"desired {desired} is below the floor {bounds.min}")
        )
    if desired > bounds.max:
        out.append(Violation("bounds", target, f"desired {desired} is above max {bounds.max}"))
    if max_step is not None and abs(desired - current) > max_step:
        out.append(
            Violation(
                "max-step",
                target,
                f"change {current} -> {desired} exceeds the max step of {max_step}; "
                "apply it in smaller steps or raise max_step",
            )
        )
    return out
