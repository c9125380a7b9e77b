"""One self-contained HTML report: inline CSS, PNG plots embedded as base64 data URIs.

The file references nothing outside itself (no scripts, fonts or images), so it can
be mailed, attached to a ticket or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING

from planner.report.table import fmt_latency, fmt_ratio

if TYPE_CHECKING:
    from planner.whatif import WhatIfReport

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.oracle td { font-style: italic; color: #2a7a2a; }
.ok { color: #2a7a2a; } .miss { color: #b22; }
img { max-width: 100%; }
.meta { color: #666; }
"""

_PLOT_TITLES = {
    "demand_capacity.png": "Demand vs capacity per policy",
    "latency.png": "p95 latency over time",
    "cost_vs_slo.png": "Cost vs SLO attainment (oracle marked)",
}


def _summary_rows(report: WhatIfReport) -> str:
    rows = []
    for r in report.results:
        mark = '<span class="ok">yes</span>' if r.meets_slo else '<span class="miss">no</span>'
        cells = [
            html.escape(r.policy),
            f"{r.cost_usd:,.2f}",
            fmt_ratio(r.cost_vs_oracle),
            f"{r.gpu_hours:,.1f}",
            f"{r.slo_attainment:.2%}",
            fmt_latency(r.p50_latency_s),
            fmt_latency(r.p95_latency_s),
            fmt_latency(r.p99_latency_s),
            f"{r.dropped:,}",
            f"{r.scaling_actions:,}",
            mark,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    oracle = report.oracle
    rows.append(
        '<tr class="oracle"><td>oracle (offline optimum)</td>'
        f"<td>{oracle.cost_usd:,.2f}</td><td>1.00x</td><td>{oracle.gpu_hours:,.1f}</td>"
        + "<td></td>" * 7
        + "</tr>"
    )
    return "\n".join(rows)


def render_html(report: WhatIfReport, plots: dict[str, bytes]) -> str:
    """The report page; `plots` maps file names to PNG bytes (see `plots.render_plots`)."""
    scenario = report.scenario
    workload = report.workload
    hours = workload.duration_s / 3600.0
    headers = (
        "policy",
        "cost USD",
        "vs oracle",
        "GPU-h",
        "SLO attainment",
        "p50",
        "p95",
        "p99",
        "dropped",
        "actions",
        "meets SLO",
    )
    figures = []
    for name, data in plots.items():
        encoded = base64.b64encode(data).decode("ascii")
        title = html.escape(_PLOT_TITLES.get(name, name))
        figures.append(
            f'<h2>{title}</h2>\n<img alt="{title}" src="data:image/png;base64,{encoded}">'
        )
    notes = "".join(
        f"<li>{html.escape(r.policy)}: {html.escape(note)}</li>"
        for r in report.results
        for note in r.notes
    )
    notes_block = f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""
    timing = ", ".join(
        f"{html.escape(k)} {v:.2f} s" for k, v in report.timings_s.items() if math.isfinite(v)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>scaleplan what-if: {html.escape(scenario.name)}</title>
<style>{_CSS}</style></head>
<body>
<h1>What-if: {html.escape(scenario.name)}</h1>
<p class="meta">{html.escape(scenario.description)}</p>
<p class="meta">workload {html.escape(workload.source or scenario.workload.format)},
{hours:.1f} h; engine {html.escape(report.engine)}; seed {report.seed};
SLO {scenario.slo.target_attainment:.1%} of requests within
{fmt_latency(scenario.slo.latency_s)}; decision interval {scenario.decision_interval_s:g} s</p>
<h2>Summary</h2>
<table><thead><tr>{"".join(f"<th>{h}</th>" for h in headers)}</tr></thead>
<tbody>
{_summary_rows(report)}
</tbody></table>
{notes_block}
{"".join(figures)}
<p class="meta">stage timings: {timing}</p>
</body></html>
"""
