"""A forecasting policy run live fits on the group's own CloudWatch history (moto over HTTP).

Five days of one-minute `RequestCount` sums with a daily cycle go into a moto server
through PutMetricData; `planner control` with a predictive bundle reads them back
through GetMetricData before its first decision, and the decision's reason is a
forecast's. Without the history (or with `--history-days 0`) the same policy says it
falls back to its reactive floor: the test can fail either way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.control.history import DEFAULT_HISTORY_DAYS, history_days, live_history
from policies.kinds import spec_from_dict
from tests.planner.apply.conftest import GROUP, LiveStack, client, put_demand
from tests.planner.apply.test_apply_cli import make_bundle

runner = CliRunner()
DAYS = 5
#: Mean requests per minute, and the daily swing around it.
MEAN_PER_MIN, SWING = 600.0, 0.5


def per_minute(when: datetime) -> float:
    """A daily cycle: peak at noon UTC, trough at midnight."""
    phase = 2 * math.pi * (when.hour * 60 + when.minute) / 1440
    return MEAN_PER_MIN * (1 - SWING * math.cos(phase))


def put_history(endpoint: str, days: float, gap: tuple[int, int] | None = None) -> datetime:
    """One-minute sums for `days` up to two minutes ago (a `gap` of minute indexes left
    out); returns the first minute written."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = int(days * 1440)
    first = now - timedelta(minutes=minutes + 2)
    points = [
        {
            "MetricName": "RequestCount",
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": GROUP}],
            "Timestamp": first + timedelta(minutes=i),
            "Value": per_minute(first + timedelta(minutes=i)),
        }
        for i in range(minutes)
        if gap is None or not gap[0] <= i < gap[1]
    ]
    cloudwatch = client(endpoint, "cloudwatch")
    for start in range(0, len(points), 1000):  # PutMetricData takes 1,000 datapoints a call
        cloudwatch.put_metric_data(Namespace="scaleplan", MetricData=points[start : start + 1000])
    return first


def test_the_history_is_the_groups_requests_per_second_with_gaps_missing(
    live_stack: LiveStack,
) -> None:
    first = put_history(live_stack.endpoint, 1.0, gap=(600, 660))
    now = datetime.now(UTC)
    found = live_history(client(live_stack.endpoint, "cloudwatch"), GROUP, 3.0, now)
    envelope = found.envelope
    assert envelope is not None and envelope.bin_s == 60.0
    # the two empty days before the first datapoint are dropped: it starts at `first`
    assert envelope.epoch_s == pytest.approx(first.timestamp())
    assert envelope.duration_s == pytest.approx((now - first).total_seconds() // 60 * 60, abs=60)
    rates = envelope.rate_rps
    assert np.isnan(rates[600:660]).all() and envelope.missing[600:660].all()
    expected = [per_minute(first + timedelta(minutes=i)) / 60 for i in range(0, 600, 97)]
    assert rates[0:600:97] == pytest.approx(expected)
    assert "longest gap 1.0 h" in found.note


def test_no_datapoint_means_no_history_and_says_so(live_stack: LiveStack) -> None:
    found = live_history(client(live_stack.endpoint, "cloudwatch"), GROUP, 2.0, datetime.now(UTC))
    assert found.envelope is None and "no RequestCount datapoint" in found.note


def test_only_forecasting_policies_read_history_by_default() -> None:
    predictive = spec_from_dict({"kind": "predictive"})
    rl = spec_from_dict({"kind": "rl", "algo": "ppo", "base": {"kind": "predictive"}})
    assert history_days(predictive, None) == DEFAULT_HISTORY_DAYS
    assert history_days(rl, None) == DEFAULT_HISTORY_DAYS
    assert history_days(spec_from_dict({"kind": "hpa"}), None) == 0.0
    assert history_days(spec_from_dict({"kind": "hpa"}), 3.0) == 3.0


def control(stack: LiveStack, bundle: Path, *extra: str) -> str:
    args = [
        "control", "--bundle", str(bundle), "--stack", "prod", "--target", "aws",
        "--interval-s", "60", "--replica-capacity-rps", "2", "--once", "--mode", "shadow",
        "--project-dir", str(stack.project_dir), "--endpoint-url", stack.endpoint,
        "--audit-log", str(stack.audit), *extra,
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_predictive_bundle_forecasts_from_cloudwatch_history_live(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    put_history(live_stack.endpoint, DAYS)
    put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=60)
    bundle = make_bundle(tmp_path / "bundles", {"kind": "predictive"}, name="prod-predictive")
    out = control(live_stack, bundle, "--history-days", str(DAYS + 1))
    assert f"demand history: {DAYS:.1f} days of {GROUP} RequestCount" in out
    decision = next(line for line in out.splitlines() if "shadow: running" in line)
    assert "forecast" in decision and "fallback" not in decision, decision
    without = control(live_stack, bundle, "--history-days", "0")
    decision = next(line for line in without.splitlines() if "shadow: running" in line)
    assert "fallback: reactive" in decision and "no history" in decision, decision
