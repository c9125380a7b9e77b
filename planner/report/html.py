"""One self-contained HTML report: inline CSS, PNG plots embedded as base64 data URIs.

The file references nothing outside itself (no scripts, fonts or images), so it can
be mailed, attached to a ticket or opened offline. It reads top down as a capacity
planner asks: the headline (which policy, what it costs per month, or what it
would take), the assumptions behind the costs, the table, the plots, and why each
policy scaled when it did.
"""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING

from planner.report.assumptions import assumptions_for, gpus_for
from planner.report.decisions import DecisionRow, kind_counts, rows_of
from planner.report.formats import fmt_clock, fmt_latency, fmt_ratio
from planner.report.headline import Headline, headline_for, oracle_facts, per_month
from planner.report.table import peak_replicas

if TYPE_CHECKING:
    from planner.whatif import WhatIfReport
    from sim.result import RunResult

#: Decisions listed per policy in the page; the rest are counted, and all of them go
#: to `planner simulate --decisions FILE.csv`. Keeps a 14-day report to a few MB.
MAX_DECISION_ROWS = 300

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; }
#summary td { white-space: nowrap; }
figure { margin: 1em 0; }
.scroll { overflow-x: auto; }
th:first-child, td:first-child { text-align: left; }
tr.oracle td { font-style: italic; color: #2a7a2a; }
.ok { color: #2a7a2a; } .miss { color: #b22; }
img { max-width: 100%; }
.meta { color: #666; }
.headline { border-left: 6px solid; padding: 0.6em 1em; margin: 1em 0; background: #f7f7f7; }
.headline.ok { border-color: #2a7a2a; } .headline.miss { border-color: #b22; }
.headline p { font-size: 1.15em; margin: 0; color: #222; }
.headline li { color: #222; }
table.decisions td:last-child { text-align: left; }
table.decisions td, table.decisions th { font-size: 0.9em; }
details { margin: 0.6em 0; }
"""

_PLOT_TITLES = {
    "demand_capacity.png": "Capacity vs demand per policy, in replicas (GPUs on the right)",
    "latency.png": "p95 latency over time against the SLO",
    "cost_vs_slo.png": "Cost vs SLO attainment (oracle marked)",
}

_HEADERS = (
    "policy",
    "cost USD",
    "USD per month",
    "vs oracle",
    "GPU-h",
    "SLO attainment",
    "p50",
    "p95",
    "p99",
    "peak replicas",
    "dropped",
    "actions",
    "meets SLO",
)


def _gpus(report: WhatIfReport, replicas: float) -> str:
    gpus = gpus_for(report.scenario.pool, round(replicas)) if math.isfinite(replicas) else None
    return "" if gpus is None else f" ({gpus:,} GPUs)"


def _mark(ok: bool) -> str:
    return '<span class="ok">yes</span>' if ok else '<span class="miss">no</span>'


def _summary_rows(report: WhatIfReport) -> str:
    duration_s = report.workload.duration_s
    rows = []
    for r in report.results:
        ready_peak = peak_replicas(r)
        cells = [
            html.escape(r.policy),
            f"{r.cost_usd:,.2f}",
            f"{per_month(r.cost_usd, duration_s):,.0f}",
            fmt_ratio(r.cost_vs_oracle),
            f"{r.gpu_hours:,.1f}",
            f"{r.slo_attainment:.2%}",
            fmt_latency(r.p50_latency_s),
            fmt_latency(r.p95_latency_s),
            fmt_latency(r.p99_latency_s),
            f"{ready_peak:,}{_gpus(report, ready_peak)}",
            f"{r.dropped:,}",
            f"{r.scaling_actions:,}",
            _mark(r.meets_slo),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    oracle = report.oracle
    facts = oracle_facts(oracle)
    peak = max(oracle.schedule, default=math.nan)
    cells = [
        "oracle (offline optimum)",
        f"{oracle.cost_usd:,.2f}",
        f"{per_month(oracle.cost_usd, duration_s):,.0f}",
        "1.00x" if facts.feasible else "infeasible",
        f"{oracle.gpu_hours:,.1f}",
        f"{facts.attainment:.2%}",
        "",
        "",
        "",
        f"{peak:,.0f}{_gpus(report, peak)}" if math.isfinite(peak) else "",
        "",
        "",
        _mark(facts.attainment >= report.scenario.slo.target_attainment),
    ]
    rows.append('<tr class="oracle">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(rows)


def _headline_block(headline: Headline) -> str:
    remedies = "".join(f"<li>{html.escape(r.text)}</li>" for r in headline.remedies)
    remedies_list = f'<ul class="remedies">{remedies}</ul>' if remedies else ""
    state = "ok" if headline.meets_slo else "miss"
    return (
        f'<section id="headline" class="headline {state}">'
        f"<p>{html.escape(headline.text)}</p>{remedies_list}</section>"
    )


def _decision_table(rows: list[DecisionRow]) -> str:
    shown = rows[:MAX_DECISION_ROWS]
    body = "\n".join(
        f"<tr><td>{fmt_clock(row.time_s)}</td><td>{html.escape(row.target)}</td>"
        f"<td>{row.previous} &rarr; {row.desired}</td><td>{row.change:+d}</td>"
        f"<td>{html.escape(row.reason)}</td></tr>"
        for row in shown
    )
    more = (
        f'<p class="meta">first {len(shown)} of {len(rows)} decisions; all of them with '
        "<code>planner simulate --decisions FILE.csv</code></p>"
        if len(rows) > len(shown)
        else ""
    )
    return (
        '<table class="decisions"><thead><tr><th>time (h:mm:ss)</th><th>target</th>'
        "<th>replicas</th><th>change</th><th>reason</th></tr></thead>"
        f"<tbody>\n{body}\n</tbody></table>{more}"
    )


def _decisions_block(results: tuple[RunResult, ...]) -> str:
    """Per policy: its decisions counted by kind of reason, then each one in time order."""
    sections = []
    for result in results:
        rows = rows_of(result)
        name = html.escape(result.policy)
        if not rows:
            sections.append(f"<details><summary>{name}: no capacity changes</summary></details>")
            continue
        kinds = ", ".join(
            f"{html.escape(kind)} &times;{count}" for kind, count in kind_counts(rows)
        )
        sections.append(
            f"<details><summary>{name}: {len(rows)} capacity changes ({kinds})</summary>"
            f"{_decision_table(rows)}</details>"
        )
    return (
        '<section id="decisions"><h2>Why each policy scaled</h2>'
        '<p class="meta">Every capacity change the control loop applied, with the reason the '
        "policy gave (and the loop's clamp, when it clamped). Times from the window's start."
        "</p>" + "\n".join(sections) + "</section>"
    )


def render_html(report: WhatIfReport, plots: dict[str, bytes]) -> str:
    """The report page; `plots` maps file names to PNG bytes (see `plots.render_plots`)."""
    scenario = report.scenario
    workload = report.workload
    hours = workload.duration_s / 3600.0
    headline = headline_for(report)
    assumptions = assumptions_for(scenario, report.replica_capacity_rps)
    facts = oracle_facts(report.oracle)
    figures = []
    for name, data in plots.items():
        encoded = base64.b64encode(data).decode("ascii")
        title = html.escape(_PLOT_TITLES.get(name, name))
        figures.append(
            f'<figure><h2>{title}</h2>\n<img class="plot" alt="{title}" '
            f'src="data:image/png;base64,{encoded}"></figure>'
        )
    notes = "".join(
        f"<li>{html.escape(r.policy)}: {html.escape(note)}</li>"
        for r in report.results
        for note in r.notes
    )
    if facts.lower_bound_usd is not None:
        notes += f"<li>oracle: proven lower bound USD {facts.lower_bound_usd:,.2f}</li>"
    notes_block = f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""
    timing = ", ".join(
        f"{html.escape(k)} {v:.2f} s" for k, v in report.timings_s.items() if math.isfinite(v)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>scaleplan what-if: {html.escape(scenario.name)}</title>
<style>{_CSS}</style></head>
<body>
<header>
<h1>What-if: {html.escape(scenario.name)}</h1>
<p class="meta">{html.escape(scenario.description)}</p>
<p class="meta">workload {html.escape(workload.source or scenario.workload.format)},
{hours:.1f} h; engine {html.escape(report.engine)}; seed {report.seed};
SLO {scenario.slo.target_attainment:.1%} of requests within
{fmt_latency(scenario.slo.latency_s)}; decision interval {scenario.decision_interval_s:g} s;
costs per month are this window's cost scaled to 30 days of the same traffic</p>
<p class="meta" id="assumptions">Assumptions: {html.escape(assumptions.summary())}</p>
</header>
{_headline_block(headline)}
<h2>Summary</h2>
<div class="scroll"><table id="summary">
<thead><tr>{"".join(f"<th>{h}</th>" for h in _HEADERS)}</tr></thead>
<tbody>
{_summary_rows(report)}
</tbody></table></div>
{notes_block}
{"".join(figures)}
{_decisions_block(report.results)}
<p class="meta">stage timings: {timing}</p>
</body></html>
"""
