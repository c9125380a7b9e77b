"""The retraining report: JSON (every figure, for machines) and one self-contained HTML page.

The page answers in order: what was decided and why; every candidate's score on
the scoring window with its spread over seeds and its ratio to the oracle; how
each family was tuned; what would meet the SLO when nothing did; what was
missing from the metrics; how to reproduce a score with `planner simulate`.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from planner.retrain.inputs import PulledHistory
from planner.retrain.pipeline import ContestOutcome, ContestSettings
from sim.scenario import Scenario

REPORT_SCHEMA = 1


def build_report(
    *,
    run_id: str,
    created_at: datetime,
    key: str,
    history: PulledHistory,
    scenario: Scenario,
    settings: ContestSettings,
    outcome: ContestOutcome | None,
    action: str,
    reason: str,
    champion_before: str | None,
    champion_after: str | None,
    notes: list[str],
) -> dict[str, Any]:
    """The report as JSON-ready data (see the module docstring)."""
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "run_id": run_id,
        "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stack": key,
        "history": {
            "source": history.label,
            "trace": str(history.trace),
            "format": history.trace_format,
            "start_h": history.start_h,
            "problems": history.problems,
            "observed_capacity": history.capacity,
        },
        "cluster": scenario.model_dump(mode="json", exclude={"workload", "base_dir", "policies"}),
        "settings": settings.to_json(),
        "decision": {
            "action": action,
            "reason": reason,
            "champion_before": champion_before,
            "champion_after": champion_after,
            "mode": "shadow" if action == "promote" else None,
        },
        "notes": list(notes),
    }
    if outcome is None:
        return report
    board = outcome.board
    report.update(
        windows=outcome.windows.to_json(),
        candidates=[s.to_json() for s in board.ranked()],
        oracle=[
            {"seed": seed, **o.to_json()}
            for seed, o in zip(board.seeds, board.oracles, strict=True)
        ],
        tuning=[
            {
                "family": t.family,
                "chosen": t.chosen,
                "trials": t.trials,
                "feasible_trials": t.feasible_trials,
                "params": t.params,
                "train_cost_usd": t.train_cost_usd,
                "train_slo_attainment": t.train_attainment,
                "fit_slo_attainment": t.fit_attainment,
                "validation_slo_attainment": t.validation_attainment,
                "finalists": t.finalists,
                "chosen_rank": t.chosen_rank,
                "wall_s": t.wall_s,
            }
            for t in outcome.tuned
        ],
        rl=None
        if outcome.rl is None
        else {
            "timesteps": outcome.rl.timesteps,
            "wall_s": outcome.rl.wall_s,
            "warm_started_from": outcome.rl.warm_started_from,
        },
        remedies=[_remedy_json(r) for r in outcome.remedies],
        timings_s=outcome.timings_s,
        reproduce=_reproduce(outcome),
    )
    report["notes"] += outcome.notes
    return report


def _remedy_json(remedy: Any) -> dict[str, Any]:
    found: dict[str, Any] = remedy.to_json()
    return found


def _reproduce(outcome: ContestOutcome) -> str:
    start_h, duration_h = outcome.windows.score
    base = outcome.scenario.base_dir
    return (
        f"planner simulate --scenario {Path(base) / 'scenario.yaml'} --start-h {start_h:g} "
        f"--duration-h {duration_h:g} --seeds {len(outcome.board.seeds)} --policies <bundle:PATH>"
    )


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """`report.json` and `report.html` in `out_dir` (atomically); their paths."""
    from planner.atomic import write_bytes_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    write_bytes_atomic(json_path, (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    write_bytes_atomic(html_path, render_html(report).encode("utf-8"))
    return [json_path, html_path]


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.ok { color: #2a7a2a; } .miss { color: #b22; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _spread(block: dict[str, float] | None, fmt: str) -> str:
    if block is None:
        return "n/a"
    return (
        f"{format(block['mean'], fmt)} "
        f"<small>[{format(block['min'], fmt)}, {format(block['max'], fmt)}]</small>"
    )


def _candidates_table(report: dict[str, Any]) -> str:
    rows = []
    for c in report.get("candidates", []):
        mark = (
            '<span class="ok">meets</span>'
            if c["meets_slo"]
            else '<span class="miss">misses</span>'
        )
        rows.append(
            f"<tr><td>{_e(c['label'])}</td><td>{_e(c['role'])}</td><td>{mark}</td>"
            f"<td>{_spread(c['slo_attainment'], '.2%')}</td>"
            f"<td>{_spread(c['cost_usd'], ',.2f')}</td>"
            f"<td>{_spread(c['cost_vs_oracle'], '.2f')}</td>"
            f"<td>{_spread(c['scaling_actions'], '.0f')}</td></tr>"
        )
    head = (
        "<tr><th>candidate</th><th>role</th><th>SLO</th><th>attainment mean [min, max]</th>"
        "<th>cost USD</th><th>x oracle</th><th>scaling actions</th></tr>"
    )
    return f"<table id='candidates'>{head}{''.join(rows)}</table>"


def _oracle_rows(report: dict[str, Any]) -> str:
    rows = [
        f"<li>seed {o['seed']}: USD {o['cost_usd']:,.2f} at {o['attainment']:.2%}"
        + ("" if o.get("feasible", True) else " (infeasible within the pool's bounds)")
        + "</li>"
        for o in report.get("oracle", [])
        if o.get("cost_usd") is not None and o.get("attainment") is not None
    ]
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _tuning_table(report: dict[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(t['family'])}</td><td>{_e(t['chosen'])}</td><td>{t['trials']}</td>"
        f"<td>{t['feasible_trials']}</td><td>{_share(t.get('fit_slo_attainment'))}</td>"
        f"<td>{_share(t.get('validation_slo_attainment'))}</td>"
        f"<td>{t['train_cost_usd']:,.2f}</td><td>{t['wall_s']:.1f}</td>"
        f"<td><code>{_e(json.dumps(t['params'], sort_keys=True))}</code></td></tr>"
        for t in report.get("tuning", [])
    ]
    head = (
        "<tr><th>family</th><th>kept</th><th>trials</th><th>feasible</th>"
        "<th>attainment (fitting)</th><th>attainment (validation)</th>"
        "<th>cost USD</th><th>seconds</th><th>parameters</th></tr>"
    )
    return f"<table id='tuning'>{head}{''.join(rows)}</table>"


def _remedies_block(report: dict[str, Any]) -> str:
    remedies = report.get("remedies") or []
    if not remedies:
        return ""
    rows = [
        f"<tr><td>{_e(r.get('change'))}</td><td>{_e(r.get('policy'))}</td>"
        f"<td>{r.get('slo_attainment', 0.0):.2%}</td><td>{r.get('cost_usd', 0.0):,.2f}</td>"
        f"<td>{r.get('extra_cost_usd', 0.0):+,.2f}</td>"
        f"<td>{'meets' if r.get('meets_slo') else 'misses'}</td></tr>"
        for r in remedies
    ]
    return (
        "<h2>What would meet the SLO</h2><p>Nothing meets the SLO with this pool. Each change "
        "below was simulated on the scoring window:</p><table id='remedies'><tr><th>change</th>"
        "<th>policy</th><th>attainment</th><th>cost USD</th><th>extra USD</th><th>SLO</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _observed(report: dict[str, Any]) -> str:
    seen = report["history"].get("observed_capacity")
    if not seen or not seen.get("present_share"):
        return ""
    return (
        f"<p id='observed'>What the stack ran over the history: {seen['mean']:,.1f} ready "
        f"replicas on average, {seen['peak']:,.0f} at peak ({seen['present_share']:.0%} of bins "
        "with a reading).</p>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    decision = report["decision"]
    problems = report["history"]["problems"]
    missing = (
        "<h2>Missing metrics</h2><ul>" + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>"
        if problems
        else ""
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.get("notes", []))
    windows = report.get("windows")
    window_text = (
        f"trained on hours {windows['train_h'][0]:g}+{windows['train_h'][1]:g}, scored on "
        f"{windows['score_h'][0]:g}+{windows['score_h'][1]:g}"
        if windows
        else "no contest was run"
    )
    body = [
        (
            f"<h1>Recommendation for {_e(report['stack'])}</h1>"
            if decision["action"] == "recommend"
            else f"<h1>Retraining {_e(report['stack'])}: {_e(decision['action'])}</h1>"
        ),
        f"<p id='decision'>{_e(decision['reason'])}.</p>",
        f"<p>Champion before: {_e(decision['champion_before'])}; after: "
        f"{_e(decision['champion_after'])}"
        + (" (starts in shadow mode)" if decision.get("mode") == "shadow" else "")
        + "</p>",
        f"<p>History: {_e(report['history']['source'])}; {window_text}. Run {_e(report['run_id'])}"
        f", {_e(report['created_at'])}.</p>",
        _observed(report),
        missing,
    ]
    if "candidates" in report:
        body += [
            "<h2>Candidates on the scoring window</h2>",
            _candidates_table(report),
            "<h3>Oracle (replay-verified offline optimum) per seed</h3>",
            _oracle_rows(report),
            "<h2>Tuning on the training window</h2>",
            _tuning_table(report),
            _remedies_block(report),
            f"<p>Reproduce: <code>{_e(report.get('reproduce', ''))}</code></p>",
        ]
    if notes:
        body.append(f"<h2>Notes</h2><ul>{notes}</ul>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>scaleplan retrain {_e(report['stack'])}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
