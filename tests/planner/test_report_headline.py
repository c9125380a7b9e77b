"""The report's headline, assumptions, JSON document and terminal table.

One real what-if run (the bundled default scenario, half an hour, fluid engine)
supplies the scenario, workload and series; each test then sets the policies'
costs and attainments and the oracle's verdict, so the headline's choice is
checked against numbers chosen to discriminate (the cheapest policy overall
misses the SLO; the oracle is infeasible or not).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from rich.console import Console

from planner.oracle import OracleSummary
from planner.report.assumptions import assumptions_for
from planner.report.document import whatif_document
from planner.report.headline import MONTH_S, headline_for, oracle_facts
from planner.report.table import whatif_table
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.whatif import WhatIfReport, run_whatif
from sim.capacity.cpu_models import DEFAULT_SERVERLESS_MODEL, cpu_model
from sim.capacity.pools import GpuNodePool, ServerlessEndpoint
from sim.scenario import Scenario

WINDOW_H = 0.5


@pytest.fixture(scope="module")
def real_report() -> WhatIfReport:
    scenario = resolve_scenario(
        None, WorkloadOverrides(duration_h=WINDOW_H), policies=["hpa", "step"]
    )
    return run_whatif(scenario, engine="fluid", workers=1)


def with_runs(
    report: WhatIfReport,
    oracle: OracleSummary,
    runs: list[tuple[str, float, float]],
    *,
    dropped: int = 0,
) -> WhatIfReport:
    """`report` with policies named and scored as `runs` (name, cost USD, attainment)."""
    base = report.results[0]
    results = tuple(
        replace(
            base,
            policy=name,
            cost_usd=cost,
            slo_attainment=attainment,
            dropped=dropped,
            cost_vs_oracle=oracle.ratio(cost),
        )
        for name, cost, attainment in runs
    )
    return replace(report, oracle=oracle, results=results)


def feasible_oracle(cost: float = 4.0) -> OracleSummary:
    return OracleSummary(
        cost_usd=cost,
        gpu_hours=cost,
        predicted_attainment=0.97,
        attainment=0.961,
        feasible=True,
        lower_bound_usd=3.0,
        schedule=(8.0, 10.0, 9.0),
    )


def infeasible_oracle(needed: int | None) -> OracleSummary:
    return OracleSummary(
        cost_usd=20.0,
        gpu_hours=20.0,
        predicted_attainment=0.90,
        attainment=0.93,
        feasible=False,
        best_attainment_at_max=0.93,
        needed_max_replicas=needed,
        schedule=(32.0, 32.0),
    )


def table_text(report: WhatIfReport) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(whatif_table(report))
    return console.export_text()


def test_headline_is_the_cheapest_policy_that_meets_the_slo(real_report: WhatIfReport) -> None:
    # The cheapest run misses the 95 % target: the headline must skip it.
    report = with_runs(
        real_report,
        feasible_oracle(4.0),
        [("cheap-miss", 3.0, 0.90), ("mid-meets", 5.0, 0.96), ("dear-meets", 7.0, 0.99)],
    )
    headline = headline_for(report)
    assert headline.meets_slo and headline.policy == "mid-meets"
    monthly = 5.0 * MONTH_S / (WINDOW_H * 3600.0)
    assert headline.cost_usd_per_month == pytest.approx(monthly) == pytest.approx(7200.0)
    assert headline.cost_vs_oracle == pytest.approx(1.25)
    assert "mid-meets, USD 7,200 per month" in headline.text
    assert "1.25x the oracle" in headline.text
    assert headline.remedies == ()
    document = whatif_document(report)
    assert document["headline"]["policy"] == "mid-meets"
    assert document["headline"]["cost_usd_per_month"] == pytest.approx(7200.0)
    rows = {row["policy"]: row for row in document["results"]}
    assert rows["dear-meets"]["cost_usd_per_month"] == pytest.approx(7.0 * 1440.0)
    assert document["oracle"]["cost_usd_per_month"] == pytest.approx(4.0 * 1440.0)


def test_infeasible_slo_says_how_many_replicas_it_would_take(real_report: WhatIfReport) -> None:
    report = with_runs(
        real_report, infeasible_oracle(needed=40), [("a", 6.0, 0.91), ("b", 9.0, 0.925)]
    )
    headline = headline_for(report)
    assert not headline.meets_slo and headline.policy == "b"
    assert not headline.oracle_feasible
    remedies = {remedy.kind: remedy for remedy in headline.remedies}
    assert set(remedies) == {"max_capacity", "provisioning_delay", "looser_slo"}
    capacity = remedies["max_capacity"]
    assert capacity.helps is True and capacity.value == 40
    # g5.xlarge: one GPU per node, one replica per GPU.
    assert "from 32 to 40 (40 GPUs on 40 g5.xlarge nodes)" in capacity.text
    delay = remedies["provisioning_delay"]
    assert delay.helps is False and "93.0%" in delay.text
    # The best attainment reached is the oracle's at max (93 %), above b's 92.5 %.
    assert remedies["looser_slo"].value == pytest.approx(0.93)
    # No ratios when the oracle is infeasible: the table says n/a, the JSON null.
    text = table_text(report)
    assert "infeasible" in text and "n/a" in text
    assert "from 32 to 40" in text
    document = json.loads(json.dumps(whatif_document(report), allow_nan=False))
    assert [row["cost_vs_oracle"] for row in document["results"]] == [None, None]
    assert document["headline"]["remedies"][0]["value"] == 40


def test_no_amount_of_capacity_is_said_plainly(real_report: WhatIfReport) -> None:
    report = with_runs(real_report, infeasible_oracle(needed=None), [("a", 6.0, 0.91)])
    capacity = headline_for(report).remedies[0]
    assert capacity.kind == "max_capacity" and capacity.helps is False
    assert capacity.value is None and "does not help" in capacity.text


def test_feasible_but_missed_points_at_the_delay_and_a_looser_slo(
    real_report: WhatIfReport,
) -> None:
    report = with_runs(real_report, feasible_oracle(4.0), [("a", 6.0, 0.9377), ("b", 5.0, 0.91)])
    closest = report.results[0]
    remedies = {remedy.kind: remedy for remedy in headline_for(report).remedies}
    assert remedies["max_capacity"].helps is False
    assert "peaking at 10 replicas" in remedies["max_capacity"].text
    delay = remedies["provisioning_delay"]
    # The default pool: node boot 120 s + image pull 90 s + model load 60 s.
    assert delay.helps is True and delay.value == pytest.approx(270.0)
    slo = remedies["looser_slo"]
    assert slo.value == pytest.approx(0.937)  # rounded down: a target the run reached
    # Target 95 % and nothing dropped: a's own p95 is the objective it would have met.
    assert f"slo.latency_s {closest.p95_latency_s:.3g} s" in slo.text
    dropped = with_runs(real_report, feasible_oracle(4.0), [("a", 6.0, 0.9377)], dropped=5)
    assert "latency_s" not in headline_for(dropped).remedies[2].text


def test_oracle_attainment_is_the_replayed_one_in_the_table(real_report: WhatIfReport) -> None:
    report = with_runs(real_report, feasible_oracle(4.0), [("a", 5.0, 0.96)])
    text = table_text(report)
    oracle_line = next(line for line in text.splitlines() if "oracle (offline" in line)
    assert "96.10%" in oracle_line and "1.00x" in oracle_line
    assert "Cheapest policy that meets the SLO: a" in text
    assert "USD 1.006 per GPU-hour (catalog)" in text
    assert "provisioning delay 270 s mean" in text
    # A summary without a replayed attainment shows the model's prediction instead.
    legacy = OracleSummary(cost_usd=4.0, gpu_hours=4.0, predicted_attainment=0.97)
    assert oracle_facts(legacy).attainment == pytest.approx(0.97)
    assert oracle_facts(legacy).feasible


def test_json_prices_are_resolved_never_null(real_report: WhatIfReport) -> None:
    document = json.loads(json.dumps(whatif_document(real_report), allow_nan=False))
    pool = document["scenario"]["pool"]
    assert pool["price_usd_per_h"] == pytest.approx(1.006)  # g5.xlarge, catalog
    assert pool["gpus_per_node"] == 1
    assumptions = document["assumptions"]
    assert assumptions["instance_type"] == "g5.xlarge"
    assert assumptions["price_usd_per_gpu_h"] == pytest.approx(1.006)
    assert assumptions["price_source"] == "catalog"
    assert assumptions["provisioning_delay_s"] == pytest.approx(270.0)
    assert assumptions["replica_capacity_rps"] == pytest.approx(real_report.replica_capacity_rps)
    assert assumptions["window_s"] == pytest.approx(WINDOW_H * 3600.0)
    assert document["headline"]["text"] == headline_for(real_report).text


def _with_pool(scenario: Scenario, pool: GpuNodePool | ServerlessEndpoint) -> Scenario:
    return Scenario.model_validate({**scenario.model_dump(), "pool": pool.model_dump()})


def test_assumptions_per_gpu_hour_with_spot_and_without_gpus(real_report: WhatIfReport) -> None:
    pool = GpuNodePool(
        instance_type="g5.12xlarge",
        price_usd_per_h=6.0,
        spot_price_usd_per_h=2.0,
        spot_share=0.5,
        max_replicas=32,
    )
    four_gpus = assumptions_for(_with_pool(real_report.scenario, pool), 1.5)
    assert four_gpus.gpus_per_node == 4 and four_gpus.price_source == "scenario"
    assert four_gpus.price_usd_per_node_h == pytest.approx(4.0)  # half on-demand, half spot
    assert four_gpus.price_usd_per_gpu_h == pytest.approx(1.0)
    assert "USD 1 per GPU-hour (scenario)" in four_gpus.summary()
    serverless = assumptions_for(_with_pool(real_report.scenario, ServerlessEndpoint()), 0.1)
    assert serverless.price_usd_per_gpu_h is None and serverless.instance_type is None
    assert serverless.serverless is not None and serverless.serverless["role"] == "primary"
    # The cold start of the default model: container start, download and load of its weights.
    assert math.isclose(
        serverless.provisioning_delay_s, cpu_model(DEFAULT_SERVERLESS_MODEL).cold_start_mean_s()
    )
    assert "per GB-second" in serverless.summary()
    assert "served by Qwen2.5-0.5B-Instruct on CPU (6 GB serverless)" in serverless.summary()


def test_a_policy_meeting_an_slo_the_oracle_calls_infeasible_has_no_ratio(
    real_report: WhatIfReport,
) -> None:
    report = with_runs(real_report, infeasible_oracle(needed=40), [("a", 6.0, 0.96)])
    headline = headline_for(report)
    assert headline.meets_slo and headline.cost_vs_oracle is None
    assert "no ratio: the oracle found no schedule within bounds" in headline.text
