"""Compile a policy bundle into a stack's `scaleplan:scaling` block.

`compile_bundle(bundle, stack, now=...)` is the one entry point (`planner emit` and
`planner apply` both call it). Per target it picks a native construct where the
platform has one (`planner.emit.native`), a precomputed 48 h capacity schedule for
policies that decide from a forecast or a learned model (`planner.emit.schedule`),
and refuses, naming the reason and the nearest expressible kind, where neither fits.
The table of what becomes what is `CONSTRUCTS` (docs/emit.md prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.emit.native import (
    Blocks,
    Unexpressible,
    aws_predictive,
    hpa_on_eks,
    keda_cron,
    prometheus_query,
    scheduled_actions,
    stack_metric,
    step_scaling,
    target_tracking,
    threshold_band,
)
from planner.emit.target import PoolTarget, StackTarget
from policies.bundle import PolicyBundle
from policies.kinds import SPEC_CLASSES
from policies.spec import PolicySpecBase
from policies.stack_config import (
    CronTrigger,
    Keda,
    Source,
    StackScaling,
    TargetScaling,
    TargetTracking,
)
from sim.errors import PolicyError
from sim.scenario import Scenario

#: (policy kind, target) -> the construct it becomes. `schedule` means the precomputed
#: 48 h capacity schedule; a kind/target pair missing here is refused (see REFUSALS).
#: Kinds not listed at all (the RL policy, any kind added later) get the schedule.
CONSTRUCTS: dict[tuple[str, str], str] = {
    ("hpa", "eks"): "HPA metric target + behavior (KEDA ScaledObject with a prometheus "
    "trigger and the same behavior when the floor is 0)",
    ("aws-target-tracking", "asg"): "EC2 Auto Scaling target tracking policy",
    ("aws-target-tracking", "serverless"): "Application Auto Scaling target tracking on "
    "SageMakerVariantProvisionedConcurrencyUtilization",
    ("step", "asg"): "step scaling: two CloudWatch alarms (high, low) and their step policies",
    ("threshold", "asg"): "step scaling with a two-alarm hysteresis band (upper, lower), "
    "one step each way",
    ("scheduled", "asg"): "scheduled actions (one opening, one closing each window) + the "
    "inner policy's construct",
    ("scheduled", "serverless"): "Application Auto Scaling scheduled actions (min capacity) "
    "+ the inner policy's construct",
    ("scheduled", "eks"): "KEDA ScaledObject: a cron trigger per window + the inner HPA "
    "policy as a prometheus trigger",
    ("predictive", "asg"): "mode aws: EC2 Auto Scaling predictive scaling; mode standard: "
    "48 h schedule (one-shot scheduled actions)",
    ("predictive", "eks"): "48 h schedule as KEDA cron triggers",
    ("predictive", "serverless"): "48 h schedule (one-shot Application Auto Scaling actions)",
    ("anomaly", "asg"): "48 h schedule (one-shot scheduled actions)",
    ("anomaly", "eks"): "48 h schedule as KEDA cron triggers",
    ("anomaly", "serverless"): "48 h schedule (one-shot Application Auto Scaling actions)",
    ("fixed", "asg"): "bounds pinned (min = max)",
    ("fixed", "serverless"): "bounds pinned (min = max)",
    ("fixed", "eks"): "HPA with min = max replicas",
}
#: (kind, target) -> (why not, nearest expressible alternative).
REFUSALS: dict[tuple[str, str], tuple[str, str]] = {
    ("hpa", "asg"): (
        "EC2 Auto Scaling has no HPA behavior (tolerance, stabilisation windows, rate policies)",
        "aws-target-tracking (`planner tune --policy aws-target-tracking`)",
    ),
    ("hpa", "serverless"): (
        "Application Auto Scaling has no HPA behavior",
        "aws-target-tracking with metric: utilisation",
    ),
    ("aws-target-tracking", "eks"): (
        "an HPA has no CloudWatch alarm timing, scale-in ratio or instance warmup",
        "hpa (an HPA metric target with behavior)",
    ),
    ("step", "eks"): (
        "an HPA scales proportionally to the metric, it has no alarms or step adjustments",
        "hpa with a scale-up/scale-down rate policy",
    ),
    ("step", "serverless"): (
        "the stack schema has no step scaling for SageMaker",
        "aws-target-tracking with metric: utilisation",
    ),
    ("threshold", "eks"): (
        "an HPA has one target, not an upper and a lower threshold",
        "hpa with a tolerance covering the band",
    ),
    ("threshold", "serverless"): (
        "the stack schema has no step scaling for SageMaker",
        "aws-target-tracking with metric: utilisation",
    ),
    ("spillover", "eks"): (
        "its split between GPU replicas and serverless concurrency is decided online",
        "predictive (a schedule) here, and `planner control` for the spillover",
    ),
    ("spillover", "asg"): (
        "its split between GPU instances and serverless concurrency is decided online",
        "predictive (a schedule) here, and `planner control` for the spillover",
    ),
    ("spillover", "serverless"): (
        "its serverless share follows the GPU pool's state second by second",
        "aws-target-tracking with metric: utilisation",
    ),
}


#: The stack's pool kinds -> the scenario `pool.kind` that models them.
SCENARIO_POOL_KINDS: dict[str, str] = {
    "eks-gpu-node-pool": "gpu-node-pool",
    "ec2-asg": "ec2-asg",
    "serverless": "serverless",
}


@dataclass(frozen=True)
class Compiled:
    """What `compile_bundle` produced: the block, the construct per target, and notes."""

    scaling: StackScaling
    constructs: dict[str, str]
    notes: tuple[str, ...]


@dataclass
class _Context:
    stack: StackTarget
    now: datetime
    scenario: Scenario | None
    notes: list[str]


def construct_of(kind: str, target: str) -> str:
    """What `kind` becomes on `target` (raises Unexpressible when refused)."""
    if (kind, target) in REFUSALS:
        reason, alternative = REFUSALS[kind, target]
        raise Unexpressible(target, kind, reason, alternative)
    return CONSTRUCTS.get((kind, target), "48 h schedule")


def _schedule(spec: PolicySpecBase, pool: PoolTarget, blocks: Blocks, ctx: _Context) -> None:
    from planner.emit.schedule import compute_schedule
    from sim.scenario import load_default_scenario

    scenario = ctx.scenario
    if scenario is None:
        scenario = load_default_scenario()
        blocks.notes.append(
            f"{pool.name}: no scenario given; the schedule is computed on the bundled default "
            "scenario (pass the scenario the bundle was tuned on with --scenario)"
        )
    computed = compute_schedule(spec, scenario, pool.bounds, now=ctx.now, seed=scenario.seed)
    if SCENARIO_POOL_KINDS[pool.kind] != scenario.pool.kind:
        blocks.notes.append(
            f"{pool.name}: the schedule is in the units of the scenario's {scenario.pool.kind} "
            f"pool, not of this {pool.kind} target; pass a scenario modelling this target for "
            "a schedule in its own units"
        )
    blocks.notes.extend(f"{pool.name}: {n}" for n in computed.notes)
    utilisation = _reactive_utilisation(spec)
    if pool.name != "eks":
        blocks.fields["schedule"] = computed.schedule
        if utilisation is not None and pool.name == "serverless":
            # SageMaker's one-shot actions set the minimum: tracking scales above it.
            blocks.fields["target_tracking"] = TargetTracking(
                metric="provisioned_concurrency_utilisation", target=utilisation
            )
        elif utilisation is not None:
            blocks.notes.append(
                f"{pool.name}: the policy's reactive floor is not emitted: the group's one-shot "
                "actions set desired capacity, which target tracking would scale away before "
                "the forecast load arrives; `planner control` runs the reactive part"
            )
        return
    # EKS has no scheduled-action API: each run of equal hours above the floor becomes
    # a KEDA cron trigger on its date (UTC).
    triggers = []
    for start, end, value in _runs(computed.schedule.changes(), computed.schedule.end):
        if value <= pool.bounds.min:
            continue
        triggers.append(
            CronTrigger(start=_date_cron(start), end=_date_cron(end), timezone="UTC", desired=value)
        )
    if not triggers:
        # Nothing above the floor: the floor is the schedule; a trigger is still needed.
        triggers.append(
            CronTrigger(
                start=_date_cron(computed.schedule.start),
                end=_date_cron(computed.schedule.end),
                timezone="UTC",
                desired=max(1, pool.bounds.min),
            )
        )
    query = threshold = None
    if utilisation is not None:
        # KEDA takes the largest of its triggers: the schedule is a floor under tracking.
        service = ctx.stack.settings.service
        query = prometheus_query("gpu_utilisation", service.namespace, service.name)
        threshold = round(utilisation * 100.0, 6)
    blocks.fields["keda"] = Keda(
        min_replicas=pool.bounds.min,
        cron=tuple(triggers),
        prometheus_query=query,
        prometheus_threshold=threshold,
    )
    blocks.notes.append(
        "eks: the schedule is KEDA cron triggers on calendar dates; they recur a year later "
        "unless replaced, which the next emit does"
    )


def _reactive_utilisation(spec: PolicySpecBase) -> float | None:
    """The utilisation a forecast policy's reactive floor aims at, if it has one."""
    s: Any = spec
    if spec.kind == "predictive" and s.reactive_floor:
        return float(s.max_utilisation)
    if spec.kind == "anomaly":
        return float(s.target_utilisation)
    if spec.kind == "rl" and s.floor_utilisation is not None:
        return float(s.floor_utilisation)
    return None


def _runs(
    changes: list[tuple[datetime, int]], end: datetime
) -> list[tuple[datetime, datetime, int]]:
    bounds = [*(when for when, _ in changes[1:]), end]
    return [(when, until, value) for (when, value), until in zip(changes, bounds, strict=True)]


def _date_cron(when: datetime) -> str:
    return f"{when.minute} {when.hour} {when.day} {when.month} *"


def _compile_kind(spec: PolicySpecBase, pool: PoolTarget, blocks: Blocks, ctx: _Context) -> None:
    kind, target = spec.kind, pool.name
    construct_of(kind, target)  # refuses unexpressible pairs first
    service = ctx.stack.settings.service
    s: Any = spec
    if kind == "hpa":
        keda = ctx.stack.eks_autoscaler == "keda"
        hpa_on_eks(s, blocks, keda=keda, namespace=service.namespace, service=service.name)
    elif kind == "aws-target-tracking":
        target_tracking(s, target, blocks)
    elif kind == "step":
        step_scaling(s, blocks)
    elif kind == "threshold":
        threshold_band(s, blocks)
    elif kind == "scheduled":
        _scheduled(s, pool, blocks, ctx)
    elif kind == "predictive" and target == "asg" and s.mode == "aws":
        aws_predictive(s, blocks)
    elif kind == "fixed":
        _fixed(s, pool, blocks)
    else:
        _schedule(spec, pool, blocks, ctx)


def _fixed(spec: Any, pool: PoolTarget, blocks: Blocks) -> None:
    b = pool.bounds
    replicas = b.max if spec.replicas is None else min(max(spec.replicas, b.min), b.max)
    if pool.name == "eks" and replicas == 0:
        raise Unexpressible(
            "eks", "fixed", "an HPA cannot hold 0 replicas", "fixed with replicas >= 1"
        )
    blocks.bounds = type(b)(min=replicas, max=replicas)
    if pool.name == "eks":
        # min = max: the HPA holds the count whatever its metric says.
        blocks.fields["target_tracking"] = TargetTracking(metric="gpu_utilisation", target=70)


def _scheduled(spec: Any, pool: PoolTarget, blocks: Blocks, ctx: _Context) -> None:
    inner = spec.inner
    if pool.name != "eks":
        scheduled_actions(spec, pool.name, blocks)
        if inner is not None:
            _compile_kind(inner, pool, blocks, ctx)
        return
    triggers = keda_cron(spec, blocks)
    query: str | None = None
    threshold: float | None = None
    if inner is not None:
        if inner.kind != "hpa":
            reason = f"a KEDA ScaledObject's triggers cannot host a {inner.kind!r} inner policy"
            raise Unexpressible("eks", "scheduled", reason, "scheduled with an hpa inner policy")
        inner_blocks = Blocks(bounds=blocks.bounds)
        service = ctx.stack.settings.service
        hpa_on_eks(
            inner, inner_blocks, keda=True, namespace=service.namespace, service=service.name
        )
        keda: Keda = inner_blocks.fields["keda"]
        query, threshold = keda.prometheus_query, keda.prometheus_threshold
        blocks.fields["hpa_behavior"] = inner_blocks.fields["hpa_behavior"]
        blocks.bounds = inner_blocks.bounds
        metric, _ = stack_metric(inner.metric, inner.target, "scheduled.inner")
        blocks.notes.append(f"eks: the inner hpa tracks {metric} through a prometheus trigger")
    blocks.fields["keda"] = Keda(
        min_replicas=blocks.bounds.min,
        cron=tuple(triggers),
        prometheus_query=query,
        prometheus_threshold=threshold,
    )


def compile_target(
    spec: PolicySpecBase, pool: PoolTarget, ctx: _Context
) -> tuple[TargetScaling, str]:
    """One target's block and the construct it uses."""
    construct = construct_of(spec.kind, pool.name)
    blocks = Blocks(bounds=pool.bounds)
    _compile_kind(spec, pool, blocks, ctx)
    try:
        scaling = TargetScaling(bounds=blocks.bounds, **blocks.fields)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise PolicyError(
            f"{pool.name}: the compiled {spec.kind} policy is not a valid block: {problems}"
        ) from None
    ctx.notes.extend(blocks.notes)
    return scaling, construct


def compile_bundle(
    bundle: PolicyBundle,
    stack: StackTarget,
    *,
    now: datetime,
    scenario: Scenario | None = None,
    bundle_path: Path | None = None,
) -> Compiled:
    """Compile `bundle` onto every target of `stack`.

    Args:
        bundle: The policy bundle (`planner tune` writes one).
        stack: The stack's targets and envelope (`planner.emit.target.read_stack_target`;
            restrict it with `StackTarget.only`).
        now: The current time (time-zone aware); schedules start at the next whole hour.
        scenario: The traffic a precomputed schedule is simulated on (the scenario the
            bundle was tuned on); the bundled default scenario when None.
        bundle_path: Where the bundle was read from: a policy that loads files from
            its bundle (the RL policy's model) needs it to run for a schedule.

    Raises:
        Unexpressible: A target cannot express the policy (reason and nearest kind).
        PolicyError: The compiled block is invalid (e.g. a window crossing midnight).
    """
    if now.tzinfo is None:
        raise PolicyError("compile_bundle: now must carry a time zone")
    if not stack.pools:
        raise PolicyError(f"stack {stack.stack}: no target to compile onto")
    spec = bundle.spec
    if bundle_path is not None and getattr(spec, "bundle_path", "") is None:
        spec = spec.model_copy(update={"bundle_path": str(bundle_path)})
    kind = spec.kind
    source_kind = kind if kind in SPEC_CLASSES else None
    ctx = _Context(stack=stack, now=now, scenario=scenario, notes=[])
    window = bundle.training_window
    if scenario is not None and window is not None:
        traffic = scenario.workload.path or scenario.workload.format
        if traffic != window.source:
            ctx.notes.append(
                f"the bundle was tuned on {window.source!r}; schedules are simulated on "
                f"{traffic!r} (scenario {scenario.name})"
            )
    targets: dict[str, TargetScaling] = {}
    constructs: dict[str, str] = {}
    for pool in stack.pools:
        targets[pool.name], constructs[pool.name] = compile_target(spec, pool, ctx)
    source = Source(bundle_id=bundle.name, version=str(bundle.version), policy_kind=source_kind)
    data = {"schema_version": 1, "source": source.model_dump(), **_dumped(targets)}
    try:
        scaling = StackScaling.model_validate(data, context={"now": now})
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise PolicyError(
            f"stack {stack.stack}: the compiled block is invalid: {problems}"
        ) from None
    return Compiled(scaling=scaling, constructs=constructs, notes=tuple(ctx.notes))


def _dumped(targets: dict[str, TargetScaling]) -> dict[str, Any]:
    # Dumped and re-validated as a whole so every cross-field rule of the schema runs,
    # including the ones on eks that a bare TargetScaling does not know about.
    # exclude_unset: an eks block must not gain the AWS-only fields' defaults.
    return {
        name: t.model_dump(exclude_none=True, exclude_unset=True) for name, t in targets.items()
    }
