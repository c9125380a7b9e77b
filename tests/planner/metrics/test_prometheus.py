"""Prometheus source against the real server (Debian package), queried over its HTTP API.

The server holds 11 backfilled days (conftest `prometheus`): two
`vllm:request_success_total` counters (finish reasons) whose summed rate is
2..8 req/s, constant within each hour; `up` of three vLLM pods and one other
target; and a 6-hour outage in which no series has a sample.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from planner.metrics.history import Gap, history_problems
from planner.metrics.prometheus import (
    MAX_STEPS_PER_QUERY,
    default_capacity_query,
    default_demand_query,
    fetch_prometheus,
    plan_chunks,
)
from sim.errors import UserInputError
from tests.planner.metrics.conftest import NAMESPACE, PrometheusHistory, hourly_rate

WINDOW_DAYS = 10  # 14,400 one-minute steps: more than one range query may hold
LOOKBACK_S = 300  # Prometheus' default lookback for an instant selector


def _utc(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def expected_demand(p: PrometheusHistory, instant_s: int) -> tuple[float, float]:
    """Bounds of `sum(rate(...[2m]))` at `instant_s`: equal when the window spans one rate.

    The rate over [t - 2m, t] is the counter's increase between the samples present,
    extrapolated over the window: NaN with fewer than two samples, the hour's rate when
    every minute between them has the same one, else between the rates involved.
    """
    present = [s for s in (instant_s - 120, instant_s - 60, instant_s) if p.sampled(s)]
    if len(present) < 2:
        return (np.nan, np.nan)
    rates = [hourly_rate(m) for m in range(present[0] + 60, present[-1] + 60, 60)]
    return (min(rates), max(rates))


def test_ten_days_need_two_range_queries_and_prometheus_refuses_one() -> None:
    first = datetime(2026, 11, 1, tzinfo=UTC)
    steps = WINDOW_DAYS * 1440
    chunks = plan_chunks(first, first + timedelta(minutes=steps), 60)
    assert [(c.start, c.end) for c in chunks] == [
        (first, first + timedelta(minutes=MAX_STEPS_PER_QUERY)),
        (first + timedelta(minutes=MAX_STEPS_PER_QUERY), first + timedelta(minutes=steps)),
    ]
    one = plan_chunks(first, first + timedelta(minutes=MAX_STEPS_PER_QUERY), 60)
    assert len(one) == 1


def test_the_server_refuses_the_unsplit_range(prometheus: PrometheusHistory) -> None:
    # The limit the split exists for is the real server's, not an assumption.
    start = prometheus.end_s - WINDOW_DAYS * 86400
    form = urllib.parse.urlencode(
        {"query": "up", "start": start, "end": prometheus.end_s, "step": 60}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{prometheus.url}/api/v1/query_range?{form}", timeout=10)
    assert refused.value.code == 400
    assert "11,000 points" in json.load(refused.value)["error"]


def test_ten_days_of_demand_and_capacity_with_the_outage_missing(
    prometheus: PrometheusHistory,
) -> None:
    p = prometheus
    start, end = _utc(p.end_s - WINDOW_DAYS * 86400), _utc(p.end_s)
    h = fetch_prometheus(
        p.url + "/",
        default_demand_query(NAMESPACE),
        start,
        end,
        step_s=60,
        capacity_query=default_capacity_query(NAMESPACE),
    )
    assert h.source == f"prometheus:{p.url} {default_demand_query(NAMESPACE)}"
    assert (h.start, h.step_s, len(h.rps)) == (start, 60.0, WINDOW_DAYS * 1440)

    # Bin i is [b, b + 60 s), read at the instant b + 60 s that closes it.
    instants = [p.end_s - WINDOW_DAYS * 86400 + 60 * (i + 1) for i in range(len(h.rps))]
    low, high = np.array([expected_demand(p, t) for t in instants]).T
    assert np.array_equal(np.isnan(h.rps), np.isnan(low))
    exact = low == high
    np.testing.assert_allclose(h.rps[exact], low[exact], rtol=1e-9)
    between = ~np.isnan(low) & ~exact
    assert between.sum() > 200  # the hour boundaries, each read from two rates
    assert (h.rps[between] >= low[between] - 1e-9).all()
    assert (h.rps[between] <= high[between] + 1e-9).all()

    # The outage is exactly one gap of missing demand bins, named as a problem.
    outage = Gap(_utc(p.outage_start_s), _utc(p.outage_end_s))
    assert h.coverage().gaps == (outage,)
    assert history_problems(h, WINDOW_DAYS) == [
        f"gap {outage.start:%Y-%m-%dT%H:%MZ}..{outage.end:%Y-%m-%dT%H:%MZ} (6.0 h, limit 1.0 h)"
    ]

    # Capacity counts the vLLM targets that are up: 3, then 2 once pod p2 is down.
    assert h.capacity is not None
    for i, t in enumerate(instants):
        if p.sampled(t):
            assert h.capacity[i] == 2 + (t < p.p2_down_s), t
        elif p.outage_start_s + LOOKBACK_S <= t < p.outage_end_s:  # nothing in the lookback
            assert np.isnan(h.capacity[i]), t
        else:  # within the lookback of the last sample: its count
            assert h.capacity[i] == 2 + (t < p.p2_down_s), t


def test_a_default_capacity_query_that_matches_nothing_leaves_capacity_unknown(
    prometheus: PrometheusHistory,
) -> None:
    p = prometheus
    window = (_utc(p.end_s - 2 * 3600), _utc(p.end_s - 3600))
    query = default_capacity_query("elsewhere")
    h = fetch_prometheus(
        p.url, default_demand_query(NAMESPACE), *window, capacity_query=query,
        capacity_optional=True,
    )  # fmt: skip
    assert h.capacity is None and not np.isnan(h.rps).all()
    with pytest.raises(UserInputError, match="returned no data"):
        fetch_prometheus(p.url, default_demand_query(NAMESPACE), *window, capacity_query=query)


def test_an_unaligned_window_is_cut_to_whole_steps(prometheus: PrometheusHistory) -> None:
    p = prometheus
    h = fetch_prometheus(
        p.url,
        default_demand_query(NAMESPACE),
        _utc(p.end_s - 3 * 3600 + 17),
        _utc(p.end_s - 3600 - 5),
        step_s=300,
    )
    assert h.start == _utc(p.end_s - 3 * 3600)  # rounded down to the 300 s grid
    assert len(h.rps) == 23  # the partial last step is dropped
    assert h.capacity is None
    assert not np.isnan(h.rps).any()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sum(rate(vllm:request_success_total[2m]", "HTTP 400.*bad_data.*parse error"),
        (
            f'rate(vllm:request_success_total{{namespace="{NAMESPACE}"}}[2m])',
            r"returned 2 series .*finished_reason=\"length\".*aggregate it with sum\(\.\.\.\)",
        ),
        ("sum(rate(no_such_metric_total[2m]))", "returned no data"),
        (f"-1 * {default_demand_query(NAMESPACE)}", "negative value"),
    ],
    ids=["syntax", "several-series", "empty", "negative"],
)
def test_bad_queries_are_user_errors_naming_url_and_query(
    prometheus: PrometheusHistory, query: str, message: str
) -> None:
    end = _utc(prometheus.end_s)
    with pytest.raises(UserInputError, match=message) as error:
        fetch_prometheus(prometheus.url, query, end - timedelta(hours=2), end)
    assert prometheus.url in str(error.value) and query in str(error.value)


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there
    now = datetime.now(UTC)
    with pytest.raises(UserInputError, match=f"cannot reach Prometheus at {url}.*refused"):
        fetch_prometheus(url, "up", now - timedelta(hours=1), now, timeout_s=5)


def test_a_fractional_step_is_refused() -> None:
    now = datetime.now(UTC)
    with pytest.raises(UserInputError, match="whole seconds"):
        fetch_prometheus("http://127.0.0.1:1", "up", now - timedelta(hours=1), now, step_s=0.5)
