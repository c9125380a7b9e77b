"""The terminal view of a what-if run: one rich table, policies as rows, oracle last.

The title carries the headline (the cheapest policy that meets the SLO, or what it
would take), the run's identity and the assumptions behind every cost; the caption
carries the remedies and the runs' notes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rich.markup import escape
from rich.table import Table

from planner.report.assumptions import assumptions_for
from planner.report.formats import fmt_latency, fmt_ratio
from planner.report.headline import headline_for, oracle_facts, per_month

if TYPE_CHECKING:
    from planner.whatif import WhatIfReport
    from sim.result import RunResult

__all__ = ["fmt_latency", "fmt_ratio", "peak_replicas", "whatif_table"]


def peak_replicas(result: RunResult) -> int:
    """Most replicas of the primary pool ready at once (0 for an empty series)."""
    ready = result.series.ready
    finite = ready[np.isfinite(ready)]
    return round(float(finite.max())) if len(finite) else 0


def whatif_table(report: WhatIfReport) -> Table:
    """Cost (run and per month), attainment, latency, capacity and churn per policy."""
    slo = report.scenario.slo
    headline = headline_for(report)
    assumptions = assumptions_for(report.scenario, report.replica_capacity_rps)
    facts = oracle_facts(report.oracle)
    colour = "green" if headline.meets_slo else "red"
    remedies = "".join(f"\n  - {escape(remedy.text)}" for remedy in headline.remedies)
    title = (
        f"[bold {colour}]{escape(headline.text)}[/bold {colour}]{remedies}\n"
        f"{escape(report.scenario.name)} | engine {report.engine} | seed {report.seed} | "
        f"SLO {slo.target_attainment:.1%} within {fmt_latency(slo.latency_s)}\n"
        f"[dim]{escape(assumptions.summary())}[/dim]"
    )
    duration_s = report.workload.duration_s
    table = Table(title=title, title_justify="left")
    table.add_column("policy", style="bold")
    for name in ("cost USD", "USD/month", "vs oracle", "GPU-h", "SLO att.", "p50", "p95", "p99"):
        table.add_column(name, justify="right")
    for name in ("peak repl.", "dropped", "actions"):
        table.add_column(name, justify="right")
    table.add_column("meets SLO", justify="center")
    for result in report.results:
        ok = "[green]yes[/green]" if result.meets_slo else "[red]no[/red]"
        table.add_row(
            escape(result.policy),
            f"{result.cost_usd:,.2f}",
            f"{per_month(result.cost_usd, duration_s):,.0f}",
            fmt_ratio(result.cost_vs_oracle),
            f"{result.gpu_hours:,.1f}",
            f"{result.slo_attainment:.2%}",
            fmt_latency(result.p50_latency_s),
            fmt_latency(result.p95_latency_s),
            fmt_latency(result.p99_latency_s),
            f"{peak_replicas(result):,}",
            f"{result.dropped:,}",
            f"{result.scaling_actions:,}",
            ok,
        )
    table.add_section()
    oracle = report.oracle
    peak = max(oracle.schedule, default=math.nan)
    table.add_row(
        "[italic]oracle (offline optimum)[/italic]",
        f"{oracle.cost_usd:,.2f}",
        f"{per_month(oracle.cost_usd, duration_s):,.0f}",
        "1.00x" if facts.feasible else "infeasible",
        f"{oracle.gpu_hours:,.1f}",
        f"{facts.attainment:.2%}",
        "",
        "",
        "",
        f"{peak:,.0f}" if math.isfinite(peak) else "",
        "",
        "",
        "[green]yes[/green]" if facts.attainment >= slo.target_attainment else "[red]no[/red]",
    )
    lines = []
    if facts.lower_bound_usd is not None:
        lines.append(f"oracle lower bound: USD {facts.lower_bound_usd:,.2f}")
    lines += [f"{escape(r.policy)}: {escape(note)}" for r in report.results for note in r.notes]
    if lines:
        table.caption = "\n".join(lines)
        table.caption_justify = "left"
    return table
