"""CloudWatch source against a moto server over HTTP, loaded with a week of metrics.

What moto 5.2's GetMetricData honours, checked here: MetricStat queries with
Sum and Average per Period, the AutoScalingGroupName dimension, ScanBy, and
periods without datapoints left out of the answer (which we read as missing).
What it does not, and how the tests stand in for it:
- it accepts `PutMetricData` into the reserved `AWS/AutoScaling` namespace (real
  CloudWatch refuses; the Auto Scaling service itself publishes
  GroupInServiceInstances), so the test plays that service;
- it keeps 60 s data forever and never pages (no NextToken, no 100,800-datapoint
  limit): the retention rule is checked on our side before any call;
- it scans every stored datapoint for every period (reading a week of two metrics
  at 60 s took 26 s on a 2-core machine), so the week is read whole at 3600 s and
  the day with the gap at 60 s: the same code on the same stored week.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from planner.metrics.cloudwatch import fetch_cloudwatch
from planner.metrics.history import Gap, history_problems
from sim.errors import UserInputError
from tests.planner.apply.conftest import REGION, client, fake_aws

GROUP = "scaleplan-prod-asg"
#: The clock the tests inject: the week ends here.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WEEK_START = NOW - timedelta(days=7)
#: RequestCount is not published for three hours on the fourth day.
GAP = (WEEK_START + timedelta(days=3, hours=2), WEEK_START + timedelta(days=3, hours=5))
BATCH = 1000  # datums per PutMetricData call (the API's limit)


def demand_rps(when: datetime) -> float:
    """Mean requests per second of the hour holding `when`: 1.0 .. 3.0."""
    return 1.0 + 0.5 * (int(when.timestamp()) // 3600 % 5)


def in_service(when: datetime) -> float:
    """In-service instances of the hour holding `when`: 2 .. 4."""
    return 2.0 + int(when.timestamp()) // 3600 % 3


def _put(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for i in range(0, len(data), BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + BATCH])


def _datum(name: str, when: datetime, value: float, group: str = GROUP) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
        "Timestamp": when,
        "Value": value,
    }


@pytest.fixture(scope="module")
def loaded_week(moto_server: str) -> Iterator[Any]:
    """A CloudWatch client on moto holding a week of one-minute metrics of GROUP."""
    mp = pytest.MonkeyPatch()
    fake_aws(mp, moto_server)
    cloudwatch = client(moto_server, "cloudwatch")
    minutes = [WEEK_START + timedelta(minutes=i) for i in range(7 * 1440)]
    # The serving image publishes its request count once a minute (Sum = 60 * rate).
    _put(
        cloudwatch,
        "scaleplan",
        [
            _datum("RequestCount", t, 60 * demand_rps(t))
            for t in minutes
            if not GAP[0] <= t < GAP[1]
        ],
    )
    _put(
        cloudwatch,
        "AWS/AutoScaling",
        [_datum("GroupInServiceInstances", t, in_service(t)) for t in minutes],
    )
    yield cloudwatch
    mp.undo()


def test_a_week_at_one_hour_has_each_hours_rate_and_the_gap_missing(loaded_week: Any) -> None:
    h = fetch_cloudwatch(loaded_week, GROUP, WEEK_START, NOW, period_s=3600, now=NOW)
    assert h.source == f"cloudwatch:asg/{GROUP}"
    assert (h.start, h.step_s, len(h.rps)) == (WEEK_START, 3600.0, 168)
    hours = [WEEK_START + timedelta(hours=i) for i in range(168)]
    gap_hours = [GAP[0] <= t < GAP[1] for t in hours]
    expected = [np.nan if gap else demand_rps(t) for t, gap in zip(hours, gap_hours, strict=True)]
    np.testing.assert_allclose(h.rps, expected, rtol=1e-12)
    assert sum(gap_hours) == 3
    # Capacity comes from the Auto Scaling namespace and has no gap.
    assert h.capacity is not None
    np.testing.assert_allclose(h.capacity, [in_service(t) for t in hours])
    assert h.coverage().gaps == (Gap(*GAP),)
    assert history_problems(h, 7) == [
        "gap 2026-11-28T14:00Z..2026-11-28T17:00Z (3.0 h, limit 1.0 h)"
    ]


def test_the_day_with_the_gap_at_the_finest_period_has_every_minute(loaded_week: Any) -> None:
    day = GAP[0].replace(hour=0)
    # An unaligned window: widened to whole minutes at the start, cut at the end.
    h = fetch_cloudwatch(
        loaded_week,
        GROUP,
        day + timedelta(seconds=20),
        day + timedelta(days=1, seconds=50),
        now=NOW,
    )
    assert (h.start, h.step_s, len(h.rps)) == (day, 60.0, 1440)  # 60 s: within 15 days
    minutes = [day + timedelta(minutes=i) for i in range(1440)]
    missing = np.array([GAP[0] <= t < GAP[1] for t in minutes])
    np.testing.assert_array_equal(np.isnan(h.rps), missing)
    np.testing.assert_allclose(
        h.rps[~missing], [demand_rps(t) for t, m in zip(minutes, missing, strict=True) if not m]
    )
    assert h.capacity is not None and not np.isnan(h.capacity).any()
    cov = h.coverage()
    assert (cov.present_bins, cov.gaps) == (1440 - 180, (Gap(*GAP),))
    assert history_problems(h, 1) == [
        "12.5 % of 60 s bins missing (180 of 1440; limit 5 %)",
        "gap 2026-11-28T14:00Z..2026-11-28T17:00Z (3.0 h, limit 1.0 h)",
    ]


def test_an_unknown_group_has_no_datapoints_and_says_so(loaded_week: Any) -> None:
    h = fetch_cloudwatch(loaded_week, "other-asg", GAP[0], GAP[0] + timedelta(hours=2), now=NOW)
    assert np.isnan(h.rps).all()
    assert history_problems(h, 1)[0].startswith("no demand datapoints at all")


def test_a_negative_request_count_is_an_error_not_a_zero(loaded_week: Any) -> None:
    when = WEEK_START + timedelta(hours=1)
    _put(loaded_week, "scaleplan", [_datum("RequestCount", when, -5.0, group="broken-asg")])
    with pytest.raises(UserInputError, match="negative value"):
        fetch_cloudwatch(loaded_week, "broken-asg", when, when + timedelta(minutes=5), now=NOW)


def test_retention_picks_a_coarser_period_and_refuses_a_finer_one(loaded_week: Any) -> None:
    old = NOW - timedelta(days=20)
    h = fetch_cloudwatch(loaded_week, GROUP, old, old + timedelta(hours=1), now=NOW)
    assert h.step_s == 300.0  # 60 s data is kept 15 days, 300 s data 63 days
    with pytest.raises(UserInputError, match="finer than CloudWatch keeps"):
        fetch_cloudwatch(loaded_week, GROUP, old, old + timedelta(hours=1), period_s=60, now=NOW)


def test_an_unreachable_endpoint_is_a_user_error(loaded_week: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    dead = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(UserInputError, match="GetMetricData for Auto Scaling group"):
        fetch_cloudwatch(dead, GROUP, GAP[0], GAP[1], now=NOW)
