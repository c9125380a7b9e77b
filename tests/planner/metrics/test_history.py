"""DemandHistory: coverage, the problems that make a history too thin, and its rate-csv."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from planner.metrics.history import DemandHistory, Gap, bin_values, history_problems
from sim.errors import UserInputError
from sim.workload.loaders.generic import load_rate_csv

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
DAY_BINS = 1440


def _minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def history(rps: np.ndarray, step_s: float = 60.0) -> DemandHistory:
    return DemandHistory(source="test", start=START, step_s=step_s, rps=rps)


def two_weeks_with_gap(gap: slice) -> DemandHistory:
    rps = np.linspace(1.0, 9.0, 14 * DAY_BINS)
    rps[gap] = np.nan
    return history(rps)


def test_coverage_counts_bins_and_lists_every_gap_with_its_times() -> None:
    rps = np.arange(1.0, 121.0)  # two hours of one-minute bins
    rps[:5] = np.nan  # leading
    rps[30:90] = np.nan  # one hour inside
    rps[119] = np.nan  # trailing
    cov = history(rps).coverage()
    assert (cov.expected_bins, cov.present_bins) == (120, 54)
    assert cov.missing_share == pytest.approx(66 / 120)
    assert cov.gaps == (
        Gap(START, START + _minutes(5)),
        Gap(START + _minutes(30), START + _minutes(90)),
        Gap(START + _minutes(119), START + _minutes(120)),
    )
    assert cov.gaps[1] == (START + _minutes(30), START + _minutes(90))  # a (start, end) pair
    assert cov.longest_gap_s == 3600.0
    assert cov.first_present == START + _minutes(5)
    assert cov.last_present_end == START + _minutes(119)


def test_complete_history_has_no_problems_and_its_window_is_its_bins() -> None:
    h = two_weeks_with_gap(slice(0, 0))
    assert h.end == START + timedelta(days=14)
    assert h.days == 14.0
    assert history_problems(h, 14) == []


def test_a_gap_over_the_limit_is_named_with_its_times_and_length() -> None:
    six_hours = slice(DAY_BINS + 180, DAY_BINS + 540)  # 2026-11-21 03:00 .. 09:00
    problems = history_problems(two_weeks_with_gap(six_hours), 14)
    assert problems == ["gap 2026-11-21T03:00Z..2026-11-21T09:00Z (6.0 h, limit 1.0 h)"]


def test_a_gap_within_the_limit_is_tolerated_and_the_limit_is_a_parameter() -> None:
    fifty_minutes = slice(DAY_BINS, DAY_BINS + 50)
    h = two_weeks_with_gap(fifty_minutes)
    assert history_problems(h, 14) == []
    assert history_problems(h, 14, max_gap_s=1800) == [
        "gap 2026-11-21T00:00Z..2026-11-21T00:50Z (0.8 h, limit 0.5 h)"
    ]


def test_missing_share_over_the_limit_is_reported_with_counts() -> None:
    rps = np.ones(480)
    rps[::8] = np.nan  # 12.5 %, every gap one minute
    problems = history_problems(history(rps), 480 / DAY_BINS)
    assert problems == ["12.5 % of 60 s bins missing (60 of 480; limit 5 %)"]


def test_a_short_history_says_how_many_days_it_covers() -> None:
    rps = np.ones(int(3.25 * DAY_BINS))
    problems = history_problems(history(rps), 14)
    assert problems == ["covers 3.2 of 14 days (data from 2026-11-20T00:00Z..2026-11-23T06:00Z)"]


def test_leading_missing_days_count_in_the_span_not_as_a_gap() -> None:
    # Asked for 14 days; the metric only exists for the last 4.
    h = two_weeks_with_gap(slice(0, 10 * DAY_BINS))
    problems = history_problems(h, 14)
    assert problems[0] == "covers 4.0 of 14 days (data from 2026-11-30T00:00Z..2026-12-04T00:00Z)"
    assert problems[1].startswith("71.4 % of 60 s bins missing")
    assert len(problems) == 2  # no "gap" line for the leading run


def test_a_few_unpublished_newest_minutes_are_not_a_shortfall() -> None:
    h = two_weeks_with_gap(slice(-10, None))
    assert history_problems(h, 14) == []


def test_no_datapoint_at_all_is_said_so() -> None:
    problems = history_problems(history(np.full(60, np.nan)), 14)
    assert problems == [
        "no demand datapoints at all in 2026-11-20T00:00Z..2026-11-20T01:00Z (test)"
    ]


def test_negative_or_infinite_rates_are_refused_not_clipped() -> None:
    with pytest.raises(ValueError, match="NaN"):
        history(np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="NaN"):
        history(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="capacity"):
        DemandHistory("t", START, 60.0, np.ones(3), capacity=np.ones(2))


def test_arrays_are_copied_and_read_only() -> None:
    rps = np.ones(3)
    h = history(rps)
    rps[0] = 7.0
    assert h.rps[0] == 1.0
    with pytest.raises(ValueError):
        h.rps[0] = 2.0


def test_bin_values_places_points_on_the_grid_and_leaves_the_rest_missing() -> None:
    points = [
        (START + _minutes(0), 3.0),
        (START + _minutes(2), float("nan")),  # Prometheus' 0/0: missing, not zero
        (START + _minutes(3), 5.0),
        (START + _minutes(4), float("inf")),  # not a rate: missing
        (START + _minutes(9), 1.0),  # past the window: ignored
    ]
    values = bin_values(points, START, 60, 5, "src")
    np.testing.assert_array_equal(values, [3.0, np.nan, np.nan, 5.0, np.nan])


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(START, -1.0)], "negative value -1"),
        ([(START + timedelta(seconds=30), 1.0)], "off the 60 s grid"),
        ([(START, 1.0), (START, 2.0)], "two datapoints"),
    ],
    ids=["negative", "off-grid", "duplicate"],
)
def test_bin_values_refuses_what_would_make_the_history_lie(
    points: list[tuple[datetime, float]], message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        bin_values(points, START, 60, 4, "src")


def test_rate_csv_loads_back_with_the_same_rates_and_missing_bins(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rps = rng.uniform(0.0, 40.0, 300)
    rps[0] = np.nan  # leading: the trace starts at the first present bin
    rps[40:55] = np.nan
    rps[200] = np.nan
    rps[-3:] = np.nan  # trailing: the trace ends at the last present bin
    h = history(rps)
    path = tmp_path / "rates.csv"
    h.write_rate_csv(path)

    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,value"
    assert lines[1].startswith(f"{int(START.timestamp()) + 60},")
    assert len(lines) - 1 == h.coverage().present_bins

    envelope = load_rate_csv(path, bin_s=60)
    expected = rps[1:-3]
    assert envelope.bin_s == 60
    np.testing.assert_array_equal(envelope.missing, np.isnan(expected))
    np.testing.assert_array_equal(
        envelope.rate_rps[~envelope.missing], expected[~np.isnan(expected)]
    )
    # Bin width inferred from the grid gives the same envelope.
    inferred = load_rate_csv(path)
    assert inferred.bin_s == 60
    np.testing.assert_array_equal(inferred.missing, envelope.missing)


def test_rate_csv_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("old\n")
    history(np.array([1.5, 2.5])).write_rate_csv(path)
    assert path.read_text().splitlines()[1:] == [
        f"{int(START.timestamp())},1.5",
        f"{int(START.timestamp()) + 60},2.5",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["rates.csv"]
    with pytest.raises(UserInputError, match="does not exist"):
        history(np.ones(2)).write_rate_csv(tmp_path / "absent" / "rates.csv")
