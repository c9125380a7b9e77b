"""The terminal view of a sweep: one row per scenario x policy x grid point, seeds aggregated.

A sweep with three seeds used to print three rows per configuration with the
parameters folded into the policy label. Here the grid's parameters are columns of
their own, and each figure is the mean over the seeds with the half-width of its
95 % interval (`planner.seeds.Interval`, the same as `simulate --seeds`); the CSV
and JSON outputs keep one row per run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from planner.seeds import Interval
from planner.sweep import SweepRow


@dataclass(frozen=True)
class SweepGroup:
    """The runs of one configuration (scenario, policy, grid point) over its seeds."""

    scenario: str
    policy: str
    params: dict[str, object]
    rows: tuple[SweepRow, ...]

    def interval(self, figure: Callable[[SweepRow], float | None]) -> Interval:
        return Interval.of([v for row in self.rows if (v := figure(row)) is not None])

    @property
    def meeting_slo(self) -> int:
        return sum(1 for row in self.rows if row.meets_slo)


def group_rows(rows: list[SweepRow]) -> list[SweepGroup]:
    """Rows grouped by configuration, in the order the configurations first appear."""
    groups: dict[tuple[str, str], list[SweepRow]] = {}
    for row in rows:
        groups.setdefault((row.scenario, row.policy), []).append(row)
    return [
        SweepGroup(scenario, members[0].policy.split("[")[0], members[0].params, tuple(members))
        for (scenario, _), members in groups.items()
    ]


def _cell(interval: Interval, fmt: Callable[[float], str]) -> str:
    if not math.isfinite(interval.mean):
        return "-"
    if not math.isfinite(interval.low):
        return fmt(interval.mean)
    return f"{fmt(interval.mean)} ± {fmt(interval.half_width)}"


def sweep_table(rows: list[SweepRow]) -> Table:
    """One row per configuration: its parameters, then mean ± 95 % half-width over seeds."""
    groups = group_rows(rows)
    keys: list[str] = []
    for group in groups:
        keys += [key for key in group.params if key not in keys]
    seeds = sorted({row.seed for row in rows})
    table = Table(
        title=(
            f"sweep: {len(rows)} runs, {len(groups)} configurations x {len(seeds)} seeds "
            f"({', '.join(map(str, seeds))}); mean ± half-width of the 95 % interval over seeds"
        ),
        title_justify="left",
    )
    table.add_column("scenario")
    table.add_column("policy")
    for key in keys:
        table.add_column(escape(key), justify="right", no_wrap=True, min_width=len(key))
    for name in ("cost USD", "vs oracle", "SLO att.", "p95 s", "actions", "meets SLO"):
        table.add_column(name, justify="right")
    for group in groups:
        table.add_row(
            escape(group.scenario),
            escape(group.policy),
            *[escape(str(group.params.get(key, "-"))) for key in keys],
            _cell(group.interval(lambda r: r.cost_usd), lambda v: f"{v:,.2f}"),
            _cell(group.interval(lambda r: r.cost_vs_oracle), lambda v: f"{v:.2f}x"),
            _cell(group.interval(lambda r: r.slo_attainment), lambda v: f"{v:.2%}"),
            _cell(group.interval(lambda r: r.p95_latency_s), lambda v: f"{v:.1f}"),
            _cell(group.interval(lambda r: float(r.scaling_actions)), lambda v: f"{v:,.0f}"),
            f"{group.meeting_slo}/{len(group.rows)}",
        )
    return table
