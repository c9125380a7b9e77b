"""Demand and capacity history of an Auto Scaling group from CloudWatch `GetMetricData`.

Demand is the serving image's `RequestCount` (namespace `scaleplan`, statistic Sum
per period) divided by the period: the mean arrival rate of each bin. Capacity is
the group's `GroupInServiceInstances` (namespace `AWS/AutoScaling`, Average per
period), which the Auto Scaling service publishes once group metrics collection is
enabled on the group. Calls stay within CloudWatch's per-call limits and retention
through `planner.aws.metrics` (`plan_calls`); a bin with no datapoint is missing
(NaN), never zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from planner.aws.metrics import MetricQuery, finest_period, get_metric_data, group_queries
from planner.metrics.history import DemandHistory, align_down, bin_values, to_utc
from sim.errors import UserInputError

#: Namespace and metric the Auto Scaling service publishes (group metrics collection on).
AUTOSCALING_NAMESPACE = "AWS/AutoScaling"
IN_SERVICE = "GroupInServiceInstances"


def capacity_query(group: str) -> MetricQuery:
    """In-service instances of `group`, averaged over each period."""
    return MetricQuery(
        "capacity",
        AUTOSCALING_NAMESPACE,
        IN_SERVICE,
        (("AutoScalingGroupName", group),),
        "Average",
    )


def demand_query(group: str) -> MetricQuery:
    """`RequestCount` Sum of `group` (the query `planner.aws.metrics` defines for the live loop)."""
    return next(q for q in group_queries(group) if q.id == "requests")


def fetch_cloudwatch(
    client: Any,
    group: str,
    start: datetime,
    end: datetime,
    period_s: int | None = None,
    now: datetime | None = None,
) -> DemandHistory:
    """Demand (and in-service capacity) of Auto Scaling group `group` over [start, end).

    The window is widened to whole periods at the start and cut to whole periods at
    the end, so every bin is a complete period (a partly elapsed one would read low).

    Args:
        client: A boto3 CloudWatch client.
        group: Auto Scaling group name (the `AutoScalingGroupName` dimension).
        start: Start of the window (UTC; naive means UTC).
        end: End of the window.
        period_s: Bin width, a multiple of 60 s; None picks the finest period CloudWatch
            still keeps for `start` (60 s within 15 days, then 300 s, then 3600 s).
        now: The current time, for the retention rules; None reads the clock.

    Raises:
        UserInputError: an empty window, a period finer than CloudWatch keeps, a
            negative datapoint, or a client error from CloudWatch.
    """
    now = to_utc(now or datetime.now(UTC))
    start, end = to_utc(start), to_utc(end)
    period = period_s or _finest_whole_period(start, now)
    first = align_down(start, period)
    last = align_down(end, period)
    n_bins = int((last - first).total_seconds() // period)
    if n_bins < 1:
        raise UserInputError(
            f"CloudWatch window {start.isoformat()} .. {end.isoformat()} holds no whole "
            f"{period} s period; widen it"
        )
    from botocore.exceptions import BotoCoreError, ClientError  # lazy: botocore is heavy

    queries = [demand_query(group), capacity_query(group)]
    try:
        series = get_metric_data(client, queries, first, last, period, now=now)
    except (ClientError, BotoCoreError) as exc:
        raise UserInputError(
            f"CloudWatch GetMetricData for Auto Scaling group {group!r} failed: {exc}; check "
            "the region, the endpoint and the credentials (cloudwatch:GetMetricData)"
        ) from None
    what = f"CloudWatch {group}"
    request_sums = bin_values(series["requests"], first, period, n_bins, f"{what} RequestCount")
    capacity = bin_values(series["capacity"], first, period, n_bins, f"{what} {IN_SERVICE}")
    return DemandHistory(
        source=f"cloudwatch:asg/{group}",
        start=first,
        step_s=float(period),
        rps=request_sums / period,
        capacity=capacity,
    )


def _finest_whole_period(start: datetime, now: datetime) -> int:
    """The finest period kept for the period-aligned start (aligning may make it older)."""
    period = finest_period(start, now)
    while (coarser := finest_period(align_down(start, period), now)) > period:
        period = coarser
    return period
