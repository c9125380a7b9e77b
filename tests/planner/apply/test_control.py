"""The live controller: CloudWatch within its limits, the one loop, holds, shadow, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.aws import metrics
from planner.aws.actuator import AsgActuator
from planner.aws.session import AwsConnection
from planner.cli import app
from planner.control.live import LiveController
from planner.control.shadow_report import score
from policies.kinds import spec_from_dict
from sim.contract import PolicyContext
from sim.errors import UserInputError
from tests.planner.apply.conftest import GROUP, REGION, LiveStack, client, put_demand
from tests.planner.apply.test_apply_cli import make_bundle

runner = CliRunner()
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def queries(n: int) -> list[metrics.MetricQuery]:
    return [
        metrics.MetricQuery(f"q{i}", "scaleplan", "RequestCount", (("G", str(i)),), "Sum")
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("n", "days", "period_s"),
    [(1, 14, 60), (1200, 1, 60), (501, 0.5, 60), (3, 60, 300), (900, 400, 3600)],
    ids=["one-metric-14d", "1200-metrics-1d", "501-metrics-12h", "60d-at-5min", "900-metrics-400d"],
)
def test_calls_respect_both_limits_and_cover_every_query(
    n: int, days: float, period_s: int
) -> None:
    start = NOW - timedelta(days=days)
    calls = metrics.plan_calls(queries(n), start, NOW, period_s, NOW)
    covered: dict[str, float] = {}
    for call in calls:
        points = (call.end - call.start).total_seconds() / period_s
        assert len(call.queries) <= metrics.MAX_QUERIES_PER_CALL
        assert points * len(call.queries) <= metrics.MAX_DATAPOINTS_PER_CALL
        for q in call.queries:
            covered[q.id] = covered.get(q.id, 0.0) + (call.end - call.start).total_seconds()
    assert set(covered) == {q.id for q in queries(n)}
    assert all(s == pytest.approx(days * 86400) for s in covered.values())


def test_one_minute_data_is_refused_past_15_days() -> None:
    with pytest.raises(UserInputError, match="60 s data lasts 15 days"):
        metrics.plan_calls(queries(1), NOW - timedelta(days=16), NOW, 60, NOW)
    assert metrics.finest_period(NOW - timedelta(days=16), NOW) == 300
    assert metrics.finest_period(NOW - timedelta(days=64), NOW) == 3600


def controller(stack: LiveStack, mode: str, replicas: int, **kw: object) -> LiveController:
    conn = AwsConnection(REGION, stack.endpoint)
    context = PolicyContext(
        interval_s=60, min_replicas=2, max_replicas=12, replica_capacity_rps=2.0,
        provisioning_s=300, slo_latency_s=30, slo_target=0.95, mean_service_s=0.5, max_batch=1,
    )  # fmt: skip
    return LiveController(
        policy=spec_from_dict({"kind": "fixed", "replicas": replicas}).build(),
        group=AsgActuator(conn.client("autoscaling"), GROUP),
        cloudwatch=conn.client("cloudwatch"),
        context=context,
        mode=mode,  # type: ignore[arg-type]
        floor=2,
        ceiling=12,
        **kw,  # type: ignore[arg-type]
    )


def desired(endpoint: str) -> int:
    asg = client(endpoint, "autoscaling")
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return int(groups["AutoScalingGroups"][0]["DesiredCapacity"])


def test_active_mode_acts_through_the_control_loop_within_the_max_step(
    live_stack: LiveStack,
) -> None:
    put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=60)
    live = controller(live_stack, "active", replicas=8, max_step=2)
    record = live.step()
    assert not record.held
    assert record.demand_rps == pytest.approx(10.0)
    assert record.utilisation == pytest.approx(0.55)
    assert (record.running_desired, record.would_set) == (3, 5)  # 3 -> 8 cut to one step of 2
    assert desired(live_stack.endpoint) == 5
    assert live.group.log[-1].desired == 5
    assert "max step 2" in live.group.log[-1].reason


def test_shadow_mode_records_and_changes_nothing(live_stack: LiveStack, tmp_path: Path) -> None:
    put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=60)
    path = tmp_path / "shadow.jsonl"
    live = controller(live_stack, "shadow", replicas=8, record_path=path)
    record = live.step()
    assert (record.running_desired, record.would_set) == (3, 8)
    assert desired(live_stack.endpoint) == 3
    line = json.loads(path.read_text().splitlines()[0])
    assert (line["would_set"], line["running_desired"], line["mode"]) == (8, 3, "shadow")


@pytest.mark.parametrize(("age_s", "why"), [(None, "missing"), (600, "stale")])
def test_missing_or_stale_demand_keeps_capacity_and_says_why(
    live_stack: LiveStack, age_s: float | None, why: str
) -> None:
    if age_s is not None:
        put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=age_s, points=1)
    live = controller(live_stack, "active", replicas=8)
    live.run(iterations=1, duration_s=None, stop=threading.Event())
    record = live.records[-1]
    assert record.held and why in record.reason and record.reason.startswith("kept 3")
    assert desired(live_stack.endpoint) == 3


def test_shadow_report_scores_both_series_on_the_demand_that_followed(tmp_path: Path) -> None:
    rows = [
        # would_set, running_desired, demand seen at this interval (rps), 1 replica = 2 rps
        (4, 3, 5.0),
        (5, 3, 7.0),  # running 3 x 2 = 6 < 7: running under-provisioned for the previous set
        (5, 4, 9.0),  # would 5 x 2 = 10 >= 9; running 3 x 2 = 6 < 9
        (3, 4, 4.0),
    ]
    records = [
        {"would_set": w, "running_desired": r, "demand_rps": d, "interval_s": 900.0,
         "replica_capacity_rps": 2.0, "held": False}
        for w, r, d in rows
    ]  # fmt: skip
    result = score(records)
    assert result.shadow.capacity_hours == pytest.approx((4 + 5 + 5 + 3) * 0.25)
    assert result.running.capacity_hours == pytest.approx((3 + 3 + 4 + 4) * 0.25)
    assert (result.shadow.under_provisioned, result.running.under_provisioned) == (0, 2)
    assert (result.shadow.actions, result.running.actions) == (2, 1)
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = runner.invoke(
        app, ["shadow-report", "--record", str(path), "--json", str(tmp_path / "s.json")]
    )
    assert out.exit_code == 0, out.output
    assert "capacity-hours" in out.output
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["running"]["under_provisioned"] == 2


def test_control_cli_once_in_shadow_then_sigterm_stops_cleanly(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 7})
    put_demand(live_stack.endpoint, requests_per_min=300.0, age_s=60)
    args = [
        "control", "--bundle", str(bundle), "--stack", "prod", "--target", "aws",
        "--interval-s", "1", "--replica-capacity-rps", "2",
        "--project-dir", str(live_stack.project_dir), "--endpoint-url", live_stack.endpoint,
        "--audit-log", str(live_stack.audit), "--record", str(tmp_path / "rec.jsonl"),
    ]  # fmt: skip
    once = runner.invoke(app, [*args, "--once"])
    assert once.exit_code == 0, once.output
    assert "shadow" in once.output and "finished after 1 decision" in once.output
    assert desired(live_stack.endpoint) == 3
    # the same command as a process: SIGTERM ends it cleanly between decisions
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "planner"), *args, "--duration-s", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()  # the first decision's line
    assert "shadow: running 3, policy 7" in first, first
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)  # it stops between decisions, 1 s apart
    assert process.returncode == 0, rest
    assert "stopped on SIGTERM" in rest
    events = [json.loads(line)["event"] for line in live_stack.audit.read_text().splitlines()]
    assert events[-1] == "control-stopped"
