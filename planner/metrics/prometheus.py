"""Demand and capacity history from the Prometheus HTTP API (`/api/v1/query_range`).

Each query must return one series (aggregate it with `sum(...)`). A range query
is evaluated at the instants `start, start + step, ...`; the value at instant `t`
is taken as the bin `[t - step, t)` (a `rate(...[w])` at `t` looks back from `t`),
so bins are complete periods that ended at their instant. Prometheus refuses more
than 11,000 points per series in one range query (`exceeded maximum resolution of
11,000 points per timeseries`), so a longer range is split into chunks of at most
11,000 steps; neighbouring chunks share their boundary instant, which is kept once.
An instant with no sample (no data in the rate's window, no target up) or a NaN
leaves its bin missing, never zero.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from planner.metrics.history import DemandHistory, FloatArray, align_down, bin_values, to_utc
from sim.errors import UserInputError

#: Most steps one range query may span: Prometheus refuses `(end - start) / step > 11000`.
MAX_STEPS_PER_QUERY = 11_000


class NoSeriesData(UserInputError):
    """A query matched no series over the whole window."""


def default_demand_query(namespace: str, rate_window: str = "2m") -> str:
    """Requests per second finished by the vLLM servers of `namespace`, summed over pods.

    vLLM exports no arrivals counter; `vllm:request_success_total` counts finished
    requests (every `finished_reason`), which trail arrivals by one request's latency,
    well inside a 60 s bin for interactive traffic. The 2-minute window holds at least
    two scrapes at the common 15-60 s scrape intervals (`rate` needs two samples);
    widen it for slower scrapes.
    """
    return f'sum(rate(vllm:request_success_total{{namespace="{namespace}"}}[{rate_window}]))'


def default_capacity_query(namespace: str) -> str:
    """vLLM replicas of `namespace` whose metrics endpoint answered the last scrape.

    `up == 1` needs no extra exporter (kube-state-metrics' ready-replica gauges
    would), and vLLM serves `/metrics` only once its API server is up, so a
    replica still loading its model is not counted. When no target is up the count
    is empty, and the bin reads as missing rather than zero: Prometheus cannot tell
    "scaled to nothing" from "nothing scraped".
    """
    return f'count(up{{namespace="{namespace}",job=~".*vllm.*"}} == 1)'


@dataclass(frozen=True)
class RangeChunk:
    """One range query: evaluation instants `start, start + step, ..., end` (end included)."""

    start: datetime
    end: datetime


def plan_chunks(first: datetime, last: datetime, step_s: int) -> list[RangeChunk]:
    """Range queries over the instants `first .. last` every `step_s`, each of <= 11,000 steps."""
    chunks = []
    span = timedelta(seconds=MAX_STEPS_PER_QUERY * step_s)
    t = first
    while True:
        end = min(last, t + span)
        chunks.append(RangeChunk(t, end))
        if end >= last:
            return chunks
        t = end  # the next chunk starts on this one's last instant (deduplicated when read)


def fetch_prometheus(
    url: str,
    demand_query: str,
    start: datetime,
    end: datetime,
    step_s: float = 60,
    capacity_query: str | None = None,
    timeout_s: float = 30,
    capacity_optional: bool = False,
) -> DemandHistory:
    """Demand (and optional capacity) over [start, end) from the Prometheus at `url`.

    Args:
        url: Base URL of the Prometheus server (its API is under `/api/v1/`).
        demand_query: PromQL giving the demand in requests per second, one series.
        start: Start of the window (UTC; naive means UTC), rounded down to a step.
        end: End of the window, rounded down to a step (only whole bins).
        step_s: Bin width in whole seconds.
        capacity_query: PromQL giving ready replicas, one series; None skips capacity.
        timeout_s: Per-request timeout, also passed to Prometheus as the query timeout.
        capacity_optional: A capacity query that matches nothing leaves the capacity
            unknown (None) instead of failing: for a default query the user did not write.

    Raises:
        UserInputError: Prometheus unreachable or refusing the query, a query returning
            several series or none at all, or a negative value.
    """
    if not (step_s >= 1 and float(step_s).is_integer()):
        raise UserInputError(f"Prometheus step {step_s:g} s: use whole seconds, at least 1")
    step = int(step_s)
    base = url.rstrip("/")
    first = align_down(to_utc(start), step)
    last = align_down(to_utc(end), step)
    n_bins = int((last - first).total_seconds() // step)
    if n_bins < 1:
        raise UserInputError(
            f"Prometheus window {start.isoformat()} .. {end.isoformat()} holds no whole {step} s "
            "step; widen it"
        )
    # Bin i is [first + i*step, first + (i+1)*step), read at its end instant.
    chunks = plan_chunks(first + timedelta(seconds=step), last, step)

    def series(query: str, what: str) -> FloatArray:
        points = _query_series(base, query, chunks, step, timeout_s)
        # Shift each instant back one step to the start of the bin it closes.
        return bin_values(
            ((t - timedelta(seconds=step), v) for t, v in points),
            first,
            step,
            n_bins,
            f"Prometheus {base} {what} query {query!r}",
        )

    def capacity() -> FloatArray | None:
        if capacity_query is None:
            return None
        try:
            return series(capacity_query, "capacity")
        except NoSeriesData:
            if capacity_optional:
                return None
            raise

    return DemandHistory(
        source=f"prometheus:{base} {demand_query}",
        start=first,
        step_s=float(step),
        rps=series(demand_query, "demand"),
        capacity=capacity(),
    )


def _query_series(
    base: str, query: str, chunks: list[RangeChunk], step: int, timeout_s: float
) -> list[tuple[datetime, float]]:
    """The one series `query` returns over every chunk, instants deduplicated, oldest first."""
    values: dict[float, float] = {}
    labels_seen: list[dict[str, str]] = []
    for chunk in chunks:
        result = _query_range(base, query, chunk, step, timeout_s)
        if len(result) > 1:
            raise UserInputError(
                f"Prometheus {base}: query {query!r} returned {len(result)} series "
                f"({_describe(result)}); aggregate it with sum(...) to one series"
            )
        for entry in result:
            labels = entry.get("metric", {})
            if labels not in labels_seen:
                labels_seen.append(labels)
            for stamp, text in entry.get("values", []):
                values.setdefault(float(stamp), _number(text, base, query))
    if len(labels_seen) > 1:
        raise UserInputError(
            f"Prometheus {base}: query {query!r} returned different series over the window "
            f"({', '.join(_labels(m) for m in labels_seen)}); aggregate it with sum(...) to one "
            "series"
        )
    if not values:
        raise NoSeriesData(
            f"Prometheus {base}: query {query!r} returned no data from "
            f"{chunks[0].start.isoformat()} to {chunks[-1].end.isoformat()}; check the metric "
            "name and label matchers (the namespace) in the Prometheus UI"
        )
    return [(datetime.fromtimestamp(t, UTC), v) for t, v in sorted(values.items())]


def _query_range(
    base: str, query: str, chunk: RangeChunk, step: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The `result` of one `query_range` call (a matrix), or a UserInputError saying why not."""
    form = urllib.parse.urlencode(
        {
            "query": query,
            "start": f"{chunk.start.timestamp():.3f}",
            "end": f"{chunk.end.timestamp():.3f}",
            "step": str(step),
            "timeout": f"{max(1, math.floor(timeout_s))}s",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/query_range",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = _api_error(exc.read()) or exc.reason
        raise UserInputError(
            f"Prometheus {base} refused query {query!r} (HTTP {exc.code}): {detail}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserInputError(
            f"cannot reach Prometheus at {base} ({reason}); check --prometheus-url and that "
            "the server is up and reachable from here"
        ) from None
    document = _json(body)
    if document is None or document.get("status") != "success":
        detail = _api_error(body) or "not a Prometheus API answer"
        raise UserInputError(f"Prometheus {base}: query {query!r} failed: {detail}")
    data = document.get("data", {})
    if data.get("resultType") != "matrix":
        raise UserInputError(
            f"Prometheus {base}: query {query!r} gave a {data.get('resultType')!r} result, "
            "not a range of values; is the URL the Prometheus server itself?"
        )
    result: list[dict[str, Any]] = data.get("result", [])
    return result


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _api_error(body: bytes) -> str | None:
    """Prometheus' own error message (`errorType: error`) from an API answer, if any."""
    document = _json(body)
    if document is None or "error" not in document:
        return None
    kind = document.get("errorType")
    return f"{kind}: {document['error']}" if kind else str(document["error"])


def _number(text: str, base: str, query: str) -> float:
    try:
        return float(text)  # "NaN", "+Inf" and "-Inf" parse; the grid treats them as missing
    except (TypeError, ValueError):
        raise UserInputError(
            f"Prometheus {base}: query {query!r} returned {text!r}, not a number"
        ) from None


def _describe(result: list[dict[str, Any]]) -> str:
    shown = ", ".join(_labels(entry.get("metric", {})) for entry in result[:3])
    return shown + (f" and {len(result) - 3} more" if len(result) > 3 else "")


def _labels(metric: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"
