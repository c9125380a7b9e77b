"""The guardrails `planner emit` runs before it writes anything.

The rules are `infra.guardrails`' (the same ones the Pulumi program and the
CrossGuard pack run): the stack's settings with the new block re-validated as a
whole (`StackSettings.with_scaling`), `check_plan` (bounds within the stack's
envelope, the GPU budget), and `check_change` on every capacity step the block
schedules (the floor, the maximum, the max step).
"""

from __future__ import annotations

import itertools

from planner.emit.target import StackTarget
from policies.stack_config import StackScaling, TargetName
from sim.errors import StackConfigError

TARGETS: tuple[TargetName, ...] = ("eks", "asg", "serverless")


def guardrail_problems(
    scaling: StackScaling, stack: StackTarget, *, max_step: int | None = None
) -> list[str]:
    """Every guardrail the block breaks on this stack (empty: it may be written)."""
    from infra.guardrails import check_change, check_plan

    try:
        settings = stack.settings.with_scaling(scaling, source=f"stack {stack.stack}")
    except StackConfigError as exc:
        return [str(exc)]
    found = list(check_plan(scaling, settings))
    for name in TARGETS:
        target = scaling.target(name)
        if target is None:
            continue
        where = f"{stack.stack}/{name}"
        if target.schedule is not None:
            values = target.schedule.desired
            # The first value lands on whatever runs then: it is held to the bounds only.
            found += check_change(f"{where} schedule", values[0], values[0], target.bounds)
            for hour, (before, after) in enumerate(itertools.pairwise(values), start=1):
                found += check_change(
                    f"{where} schedule hour {hour}", before, after, target.bounds, max_step
                )
        if target.keda is not None:
            for cron in target.keda.cron:
                # A cron window jumps from the floor to its desired replicas at once.
                found += check_change(
                    f"{where} cron {cron.start!r}",
                    target.bounds.min,
                    cron.desired,
                    target.bounds,
                    max_step,
                )
    return [str(v) for v in found]
