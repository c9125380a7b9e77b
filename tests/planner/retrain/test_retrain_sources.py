"""Retraining cycles on real metric sources: CloudWatch on a moto server, a real Prometheus.

Each cycle pulls history over HTTP, plans on the default scenario's cluster, and
runs the whole contest; a first usable run promotes (no champion yet), a rerun on
a newer champion keeps it, and a window holding a collection gap keeps the
champion and names the gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from planner.executor import LocalExecutor
from planner.metrics.prometheus import default_demand_query
from planner.retrain.inputs import HistorySource
from planner.retrain.job import RetrainRequest, RetrainResult, run_retrain
from planner.retrain.pipeline import ContestSettings
from planner.store.local import LocalStore
from tests.planner.apply.conftest import client, fake_aws, moto_server  # noqa: F401 (fixtures)
from tests.planner.metrics.conftest import PrometheusHistory, prometheus  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "sim" / "scenarios" / "default.yaml"
SETTINGS = ContestSettings(trials=2, seeds=1, families=["threshold", "hpa"])
GROUP = "scaleplan-retrain-asg"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
#: CloudWatch holds a week of 5-minute sums with no datapoint for three hours on day 2.
CW_GAP = (NOW - timedelta(days=5, hours=3), NOW - timedelta(days=5))


def cycle(source: HistorySource, store: Path, now: datetime) -> RetrainResult:
    request = RetrainRequest(
        source=source,
        settings=SETTINGS,
        store_url=str(store),
        scenario_path=SCENARIO,
        out_dir=store.parent / "report",
    )
    with LocalExecutor(max_workers=1) as executor:
        return run_retrain(request, LocalStore(store), executor, now=now)


def demand_rps(when: datetime) -> float:
    """10 .. 14 req/s, changing by the hour (the default cluster's range)."""
    return 10.0 + int(when.timestamp()) // 3600 % 5


@pytest.fixture(scope="module")
def cloudwatch_week(moto_server: str) -> Iterator[str]:  # noqa: F811
    """A moto server holding a week of RequestCount (5-minute sums) for GROUP."""
    mp = pytest.MonkeyPatch()
    fake_aws(mp, moto_server)
    cloudwatch = client(moto_server, "cloudwatch")
    start = NOW - timedelta(days=7)
    data: list[dict[str, Any]] = [
        {
            "MetricName": "RequestCount",
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": GROUP}],
            "Timestamp": t,
            "Value": 300 * demand_rps(t),
        }
        for t in (start + timedelta(minutes=5 * i) for i in range(7 * 288))
        if not CW_GAP[0] <= t < CW_GAP[1]
    ]
    for i in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace="scaleplan", MetricData=data[i : i + 1000])
    # What the group ran: 3 instances, 4 in the afternoons (hours 12-17 UTC).
    capacity = [
        {
            "MetricName": "GroupInServiceInstances",
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": GROUP}],
            "Timestamp": t,
            "Value": 4.0 if 12 <= t.hour < 18 else 3.0,
        }
        for t in (start + timedelta(minutes=5 * i) for i in range(7 * 288))
    ]
    for i in range(0, len(capacity), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/AutoScaling", MetricData=capacity[i : i + 1000])
    yield moto_server
    mp.undo()


def cloudwatch_source(endpoint: str, days: float) -> HistorySource:
    return HistorySource(
        kind="cloudwatch", days=days, asg_name=GROUP, region="us-east-1",
        endpoint_url=endpoint, period_s=300,
    )  # fmt: skip


def test_cloudwatch_cycles_promote_then_keep_and_a_gap_keeps_the_champion(
    cloudwatch_week: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    first = cycle(cloudwatch_source(cloudwatch_week, 2.0), store, NOW)
    assert first.action == "promote", first.reason
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["history"]["source"].startswith("cloudwatch")
    assert report["history"]["format"] == "rate-csv" and not report["history"]["problems"]
    seen = report["history"]["observed_capacity"]
    assert seen["peak"] == 4.0 and seen["present_share"] == 1.0
    assert seen["mean"] == pytest.approx(3.25, abs=0.02)  # 6 of 24 hours at 4
    # The next day's run: the champion is among equals, so it stays.
    second = cycle(cloudwatch_source(cloudwatch_week, 2.0), store, NOW - timedelta(hours=6))
    assert second.action == "keep", second.reason
    assert LocalStore(store).champion("default")["version"] == first.champion  # type: ignore[index]
    gappy = cycle(cloudwatch_source(cloudwatch_week, 7.0), store, NOW)
    assert gappy.action == "keep"
    assert "gap" in gappy.reason and "3.0 h" in gappy.reason, gappy.reason
    assert LocalStore(store).champion("default")["version"] == first.champion  # type: ignore[index]


def prometheus_source(url: str, days: float) -> HistorySource:
    # No queries given: the defaults read the vLLM servers of the namespace.
    return HistorySource(kind="prometheus", days=days, prometheus_url=url, namespace="llm")


def test_prometheus_cycles_promote_and_an_outage_keeps_the_champion(
    prometheus: PrometheusHistory,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    now = datetime.fromtimestamp(prometheus.end_s, UTC)
    first = cycle(prometheus_source(prometheus.url, 2.0), store, now)
    assert first.action == "promote", first.reason
    history = json.loads((tmp_path / "report" / "report.json").read_text())["history"]
    assert default_demand_query("llm") in history["source"]
    # The default capacity query counts the vLLM targets up (not node-exporter): pod p2
    # went down 4.5 days into the 11-day history, so the last two days show two.
    assert history["observed_capacity"] == {"mean": 2.0, "peak": 2.0, "present_share": 1.0}
    # Seven days reach back over the 6-hour outage: the champion stays, the gap is named.
    gappy = cycle(prometheus_source(prometheus.url, 7.0), store, now)
    assert gappy.action == "keep"
    assert "gap" in gappy.reason and "6.0 h" in gappy.reason, gappy.reason
    assert LocalStore(store).champion("default")["version"] == first.champion  # type: ignore[index]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Missing metrics" in html and "6.0 h" in html
    seen = json.loads((tmp_path / "report" / "report.json").read_text())["history"]
    assert seen["observed_capacity"]["peak"] == 3.0  # seven days reach back before p2 went down
    assert seen["observed_capacity"]["present_share"] < 1.0  # the outage
