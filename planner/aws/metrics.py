"""CloudWatch `GetMetricData` within its limits, and live readings for the control loop.

Limits (CloudWatch API reference, GetMetricData; CloudWatch concepts, "Metrics
retention"): at most 500 metric queries and 100,800 datapoints per call; data at
60 s resolution is kept 15 days, at 300 s 63 days, at 3600 s 455 days. `plan_calls`
splits a request into calls that respect both limits (by queries, then by time)
and refuses a period finer than the retention of its oldest datapoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.errors import UserInputError

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
#: (age limit in seconds, finest period kept that long) from CloudWatch's retention table.
RETENTION: tuple[tuple[float, int], ...] = (
    (15 * 86400, 60),
    (63 * 86400, 300),
    (455 * 86400, 3600),
)

#: Metrics the serving image publishes per Auto Scaling group (namespace `scaleplan`).
NAMESPACE = "scaleplan"
REQUESTS = "RequestCount"  # Sum per period: arrivals
GPU_UTILISATION = "GPUUtilization"  # Average, percent
QUEUE = "QueueLengthPerReplica"  # Average, requests waiting per replica


@dataclass(frozen=True)
class MetricQuery:
    """One metric and statistic; `id` names it in the result (lowercase first letter)."""

    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    def to_api(self, period_s: int) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": period_s,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True)
class Call:
    """One GetMetricData call: its queries and its [start, end) window."""

    queries: tuple[MetricQuery, ...]
    start: datetime
    end: datetime


def finest_period(start: datetime, now: datetime) -> int:
    """The finest period CloudWatch still holds for data as old as `start`."""
    age_s = (now - start).total_seconds()
    for limit_s, period in RETENTION:
        if age_s <= limit_s:
            return period
    raise UserInputError(
        f"CloudWatch keeps no data older than 455 days; {start.isoformat()} is {age_s / 86400:.0f} "
        "days old. Start the window later."
    )


def plan_calls(
    queries: Sequence[MetricQuery], start: datetime, end: datetime, period_s: int, now: datetime
) -> list[Call]:
    """Calls covering every query over [start, end) within both per-call limits.

    Raises:
        UserInputError: `period_s` is finer than CloudWatch keeps for `start`.
    """
    if end <= start:
        raise UserInputError(f"metric window is empty: {start.isoformat()} .. {end.isoformat()}")
    needed = finest_period(start, now)
    if period_s % 60:
        raise UserInputError(f"period {period_s} s: CloudWatch periods are multiples of 60 s")
    if period_s < needed:
        raise UserInputError(
            f"period {period_s} s is finer than CloudWatch keeps data from {start.isoformat()} "
            f"(finest: {needed} s; 60 s data lasts 15 days); use --period-s {needed} or later data"
        )
    points = math.ceil((end - start).total_seconds() / period_s)
    per_query = min(points, MAX_DATAPOINTS_PER_CALL)
    queries_per_call = max(1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // per_query))
    span = timedelta(seconds=per_query * period_s)
    calls = []
    for i in range(0, len(queries), queries_per_call):
        chunk = tuple(queries[i : i + queries_per_call])
        t = start
        while t < end:
            calls.append(Call(chunk, t, min(end, t + span)))
            t += span
    return calls


def get_metric_data(
    client: Any,
    queries: Sequence[MetricQuery],
    start: datetime,
    end: datetime,
    period_s: int,
    now: datetime | None = None,
) -> dict[str, list[tuple[datetime, float]]]:
    """Values of every query, by id, oldest first (pages followed, calls within limits)."""
    out: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
    for call in plan_calls(queries, start, end, period_s, now or datetime.now(UTC)):
        token: str | None = None
        while True:
            args: dict[str, Any] = {
                "MetricDataQueries": [q.to_api(period_s) for q in call.queries],
                "StartTime": call.start,
                "EndTime": call.end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                args["NextToken"] = token
            response = client.get_metric_data(**args)
            for result in response["MetricDataResults"]:
                out[result["Id"]] += list(
                    zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
                )
            token = response.get("NextToken")
            if not token:
                break
    for values in out.values():
        values.sort(key=lambda tv: tv[0])
    return out


def group_queries(group: str) -> list[MetricQuery]:
    """Demand, GPU utilisation and queue of an Auto Scaling group."""
    dims = (("AutoScalingGroupName", group),)
    return [
        MetricQuery("requests", NAMESPACE, REQUESTS, dims, "Sum"),
        MetricQuery("utilisation", NAMESPACE, GPU_UTILISATION, dims, "Average"),
        MetricQuery("queue", NAMESPACE, QUEUE, dims, "Average"),
    ]


@dataclass(frozen=True)
class LiveMetrics:
    """The newest values, or why there are none: `held` is set when the loop must not decide."""

    demand_rps: float | None
    utilisation: float | None
    queue_per_replica: float | None
    held: str | None


def latest(
    series: dict[str, list[tuple[datetime, float]]], now: datetime, period_s: int, stale_s: float
) -> LiveMetrics:
    """The newest demand (required), utilisation and queue; held when demand is missing or stale."""

    def newest(key: str) -> tuple[datetime, float] | None:
        values = series.get(key) or []
        return values[-1] if values else None

    demand = newest("requests")
    if demand is None:
        return LiveMetrics(None, None, None, "no RequestCount datapoint in the window (missing)")
    age_s = (now - _aware(demand[0])).total_seconds() - period_s
    if age_s > stale_s:
        return LiveMetrics(
            None,
            None,
            None,
            f"RequestCount is stale: newest datapoint {age_s:.0f} s old (limit {stale_s:.0f} s)",
        )
    util = newest("utilisation")
    queue = newest("queue")
    return LiveMetrics(
        demand_rps=demand[1] / period_s,
        utilisation=None if util is None else min(1.0, max(0.0, util[1] / 100.0)),
        queue_per_replica=None if queue is None else queue[1],
        held=None,
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
