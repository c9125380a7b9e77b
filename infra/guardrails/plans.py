"""Guardrails over stack settings, emitted policies and live changes.

`check_plan` is what the planner is to run before it emits a policy, `check_change`
on every live change it applies (issue 11); the program and the Automation API driver run
`enforce_stack` (`check_plan`, or `check_settings` without a policy) before
creating anything.
"""

from __future__ import annotations

from infra.guardrails.resources import MAX_GPU_NODES, Violation, format_violations
from infra.settings import StackSettings
from policies.stack_config import Bounds, StackScaling
from sim.capacity.catalog import CATALOG
from sim.errors import StackConfigError


def check_settings(settings: StackSettings) -> list[Violation]:
    """Rules over the stack settings alone (before any resource exists)."""
    out: list[Violation] = []
    env = settings.environment
    total = sum(p.max_size for p in settings.gpu_node_pools)
    total += settings.asg.max_size if settings.asg is not None else 0
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
    if "0.0.0.0/0" in settings.cluster.public_access_cidrs:
        out.append(
            Violation(
                "no-public-endpoint", settings.stack, "cluster.public_access_cidrs has 0.0.0.0/0"
            )
        )
    return out


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
    if eks is not None:
        gpus = sum(
            p.max_size * max(CATALOG[t].gpus for t in p.instance_types)
            for p in settings.gpu_node_pools
        )
        fit = gpus // settings.service.gpus_per_replica
        if eks.bounds.max > fit:
            out.append(
                Violation(
                    "bounds",
                    stack,
                    f"eks.bounds.max {eks.bounds.max} replicas need more GPUs than the node pools "
                    f"hold ({fit} replicas of {settings.service.gpus_per_replica} GPU)",
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
