"""The terminal view of a what-if run: one rich table, policies as rows, oracle last."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from planner.whatif import WhatIfReport


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}x"


def fmt_latency(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1.0 else f"{value:.2f} s"


def whatif_table(report: WhatIfReport) -> Table:
    """Cost, GPU-hours, attainment, latency, drops and churn per policy."""
    slo = report.scenario.slo
    title = (
        f"{report.scenario.name} | engine {report.engine} | seed {report.seed} | "
        f"SLO {slo.target_attainment:.1%} within {fmt_latency(slo.latency_s)}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("policy", style="bold")
    for name in ("cost USD", "vs oracle", "GPU-h", "SLO att.", "p50", "p95", "p99"):
        table.add_column(name, justify="right")
    table.add_column("dropped", justify="right")
    table.add_column("actions", justify="right")
    table.add_column("meets SLO", justify="center")
    for result in report.results:
        ok = "[green]yes[/green]" if result.meets_slo else "[red]no[/red]"
        table.add_row(
            result.policy,
            f"{result.cost_usd:,.2f}",
            fmt_ratio(result.cost_vs_oracle),
            f"{result.gpu_hours:,.1f}",
            f"{result.slo_attainment:.2%}",
            fmt_latency(result.p50_latency_s),
            fmt_latency(result.p95_latency_s),
            fmt_latency(result.p99_latency_s),
            f"{result.dropped:,}",
            f"{result.scaling_actions:,}",
            ok,
        )
    table.add_section()
    table.add_row(
        "[italic]oracle (offline optimum)[/italic]",
        f"{report.oracle.cost_usd:,.2f}",
        "1.00x",
        f"{report.oracle.gpu_hours:,.1f}",
        *([""] * 7),
    )
    notes = [f"{r.policy}: {note}" for r in report.results for note in r.notes]
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table
