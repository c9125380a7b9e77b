"""What a stack costs per hour at its minimum and maximum size.

Computed from the stack settings and the instance prices in
`sim.capacity.catalog` (us-east-1 list prices; the system nodes' CPU types from
`infra.node_shapes`), so the numbers in
`docs/infra.md` come from the same config `pulumi up` deploys. Fixed costs are
itemised with their AWS list prices: the EKS control plane ($0.10/h, Amazon
EKS pricing page) and NAT gateways ($0.045/h each, Amazon VPC pricing page).
Excluded: data transfer, NAT per-GB processing, EBS, CloudWatch, S3, KMS, and
SageMaker serverless (billed per request, compute duration and provisioned
concurrency use, not per instance-hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.node_shapes import node_shape
from infra.settings import StackSettings
from sim.capacity.catalog import lookup

EKS_CONTROL_PLANE_USD_PER_H = 0.10
NAT_GATEWAY_USD_PER_H = 0.045


@dataclass(frozen=True)
class HourlyCost:
    """USD per hour of one stack at the bottom and the top of its bounds."""

    stack: str
    fixed_usd_per_h: float
    min_usd_per_h: float
    max_usd_per_h: float
    lines: tuple[tuple[str, float, float], ...]


def _price(types: tuple[str, ...], spot: bool) -> float:
    # A pool of several types may land on any of them: price the dearest so
    # the maximum is an upper bound.
    prices = [lookup(t).spot_usd_per_h if spot else lookup(t).on_demand_usd_per_h for t in types]
    return max(prices)


def hourly_cost(settings: StackSettings) -> HourlyCost:
    """Hourly cost at minimum and maximum size, itemised per pool.

    Sizes come from the emitted policy's bounds where the stack has one (they
    set the ASG min/max), else from the pool settings. Node groups are priced at
    their min_size and max_size; the ASG's spot share follows its on-demand base
    and percentage above base.
    """
    lines: list[tuple[str, float, float]] = []
    nats = len(settings.network.azs) if settings.network.nat_per_az else 1
    if settings.network.vpc_id is not None:
        nats = 0
    fixed = EKS_CONTROL_PLANE_USD_PER_H + nats * NAT_GATEWAY_USD_PER_H
    lines.append(("eks control plane + nat", fixed, fixed))
    for pool in settings.gpu_node_pools:
        unit = _price(pool.instance_types, pool.capacity_type == "SPOT")
        lines.append((f"node pool {pool.name}", pool.min_size * unit, pool.max_size * unit))
    system = settings.system_nodes
    unit = max(node_shape(t).on_demand_usd_per_h for t in system.instance_types)
    lines.append(("system nodes", system.min_size * unit, system.max_size * unit))
    if settings.asg is not None:
        a = settings.asg
        bounds = settings.scaling.asg.bounds if settings.scaling and settings.scaling.asg else None
        lo, hi = (bounds.min, bounds.max) if bounds is not None else (a.min_size, a.max_size)
        od, spot = _price(a.instance_types, False), _price(a.instance_types, True)

        def cost(n: int) -> float:
            base = min(n, a.on_demand_base_capacity)
            above = n - base
            od_above = above * a.on_demand_pct_above_base / 100.0
            return (base + od_above) * od + (above - od_above) * spot

        lines.append(("asg", cost(lo), cost(hi)))
    total_min = sum(line[1] for line in lines)
    total_max = sum(line[2] for line in lines)
    return HourlyCost(
        stack=settings.stack,
        fixed_usd_per_h=fixed,
        min_usd_per_h=total_min,
        max_usd_per_h=total_max,
        lines=tuple(lines),
    )


def cost_table(costs: list[HourlyCost]) -> str:
    """A Markdown table of per-stack hourly costs (for docs/infra.md)."""
    rows = ["| stack | fixed $/h | min $/h | max $/h |", "|---|---:|---:|---:|"]
    for c in costs:
        fixed, lo, hi = c.fixed_usd_per_h, c.min_usd_per_h, c.max_usd_per_h
        rows.append(f"| {c.stack} | {fixed:.3f} | {lo:.2f} | {hi:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    from pathlib import Path

    from infra.stack_file import load_stack_file

    root = Path(__file__).resolve().parents[1]
    results = [
        hourly_cost(load_stack_file(root / f"Pulumi.{s}.yaml")) for s in ("dev", "staging", "prod")
    ]
    print(cost_table(results))
    for c in results:
        for name, lo, hi in c.lines:
            print(f"  {c.stack:8s} {name:28s} {lo:9.2f} {hi:9.2f}")
