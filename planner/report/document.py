"""The `planner simulate --json` document: the run's figures, its headline and assumptions.

`WhatIfReport.to_json` gives the scenario, the oracle and one row per policy; this
adds what a reader needs to act on them without the HTML: the headline (or what it
would take to meet the SLO) and the assumptions behind every cost. The scenario's
pool is written resolved: a price or GPU count left to the instance catalog appears
as the catalog's number instead of null.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.json_values import json_safe
from planner.report.assumptions import assumptions_for, resolved_pool_json
from planner.report.headline import MONTH_S, headline_for, per_month

if TYPE_CHECKING:
    from planner.whatif import WhatIfReport


def whatif_document(report: WhatIfReport) -> dict[str, Any]:
    """The JSON document of `report` (schema in docs/cli.md)."""
    document = report.to_json()
    scenario = document.get("scenario")
    if isinstance(scenario, dict) and isinstance(scenario.get("pool"), dict):
        scenario["pool"] = resolved_pool_json(report.scenario.pool)
    duration_s = report.workload.duration_s
    for row, result in zip(document.get("results", []), report.results, strict=True):
        row["cost_usd_per_month"] = json_safe(per_month(result.cost_usd, duration_s))
    oracle = document.get("oracle")
    if isinstance(oracle, dict):
        oracle["cost_usd_per_month"] = json_safe(per_month(report.oracle.cost_usd, duration_s))
    document["headline"] = headline_for(report).to_json()
    assumptions = assumptions_for(report.scenario, report.replica_capacity_rps).to_json()
    assumptions["window_s"] = duration_s
    assumptions["month_s"] = MONTH_S
    document["assumptions"] = json_safe(assumptions)
    return document
