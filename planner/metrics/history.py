"""Demand history from a metric source: rates per bin, what is missing, whether it will do.

A `DemandHistory` is what the retraining job learns from: the mean arrival rate
of each bin (and, when asked for, the ready capacity), on a fixed grid from
`start`. A bin the source had no datapoint for is NaN, never zero: a collection
gap is not an idle hour, and a policy tuned on invented zeros would under-provision.
`history_problems` says, in sentences, why a history is too thin to retrain on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from planner.atomic import write_bytes_atomic
from sim.errors import UserInputError

FloatArray = npt.NDArray[np.float64]


class Gap(NamedTuple):
    """A run of missing bins: from the start of the first to the end of the last (a pair)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Coverage:
    """How much of a history's grid has data.

    Attributes:
        expected_bins: Bins in the window.
        present_bins: Bins with a demand datapoint.
        missing_share: Missing bins over expected bins (1.0 for an empty window).
        gaps: Every run of missing bins, oldest first, including leading and trailing ones.
        longest_gap_s: Length of the longest run (0 when none is missing).
        first_present: Start of the first bin with data; None when there is none.
        last_present_end: End of the last bin with data; None when there is none.
    """

    expected_bins: int
    present_bins: int
    missing_share: float
    gaps: tuple[Gap, ...]
    longest_gap_s: float
    first_present: datetime | None
    last_present_end: datetime | None

    @property
    def covered_s(self) -> float:
        """Seconds from the first bin with data to the end of the last one."""
        if self.first_present is None or self.last_present_end is None:
            return 0.0
        return (self.last_present_end - self.first_present).total_seconds()


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compared by identity
class DemandHistory:
    """Mean arrivals per second per bin from one metric source.

    Attributes:
        source: Where it came from, e.g. `cloudwatch:asg/NAME` or `prometheus:URL QUERY`.
        start: UTC start of the first bin, on a whole second.
        step_s: Bin width in whole seconds.
        rps: Mean arrival rate per bin (requests per second); NaN where missing.
        capacity: Ready replicas or instances per bin (NaN where missing); None if not queried.
    """

    source: str
    start: datetime
    step_s: float
    rps: FloatArray
    capacity: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            raise ValueError(f"DemandHistory.start must be UTC, got {self.start!r}")
        if self.start.microsecond:
            raise ValueError("DemandHistory.start must be on a whole second")
        if not (self.step_s >= 1 and float(self.step_s).is_integer()):
            raise ValueError(f"DemandHistory.step_s must be whole seconds >= 1, got {self.step_s}")
        object.__setattr__(self, "rps", _frozen_series(self.rps, "rps"))
        if self.capacity is not None:
            capacity = _frozen_series(self.capacity, "capacity")
            if capacity.shape != self.rps.shape:
                raise ValueError("DemandHistory.capacity must have one value per rps bin")
            object.__setattr__(self, "capacity", capacity)

    @property
    def end(self) -> datetime:
        """End of the last bin."""
        return self.start + timedelta(seconds=self.step_s * len(self.rps))

    @property
    def days(self) -> float:
        """Length of the window in days (missing bins included)."""
        return self.step_s * len(self.rps) / 86400.0

    def coverage(self) -> Coverage:
        """Bins expected and present, and every run of missing bins."""
        present = np.isfinite(self.rps)
        n = len(self.rps)
        n_present = int(present.sum())
        gaps = tuple(Gap(self._bin_start(a), self._bin_start(b)) for a, b in _runs(~present))
        idx = np.flatnonzero(present)
        return Coverage(
            expected_bins=n,
            present_bins=n_present,
            missing_share=(n - n_present) / n if n else 1.0,
            gaps=gaps,
            longest_gap_s=max((g.seconds for g in gaps), default=0.0),
            first_present=self._bin_start(int(idx[0])) if len(idx) else None,
            last_present_end=self._bin_start(int(idx[-1]) + 1) if len(idx) else None,
        )

    def write_rate_csv(self, path: Path) -> None:
        """Write the demand as a rate-csv trace (`sim.workload.loaders.load_rate_csv` reads it).

        Header `timestamp,value`; timestamp is the bin start in whole epoch seconds,
        value the bin's mean rate. Only bins with data are written, so a missing bin
        is a missing row, which the loader reads back as a missing bin; leading and
        trailing missing bins shorten the trace instead. Written atomically.
        """
        start_s = int(self.start.timestamp())
        step = int(self.step_s)
        lines = ["timestamp,value"]
        lines += [
            f"{start_s + i * step},{float(self.rps[i])!r}"
            for i in np.flatnonzero(np.isfinite(self.rps))
        ]
        write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("ascii"))

    def _bin_start(self, index: int) -> datetime:
        return self.start + timedelta(seconds=self.step_s * index)


def history_problems(
    h: DemandHistory, days: float, *, max_missing_share: float = 0.05, max_gap_s: float = 3600.0
) -> list[str]:
    """Why `h` is too thin to retrain on for a window of `days`; empty when it will do.

    Checks, in order: any data at all; the span from the first to the last bin with
    data against `days` (a shortfall within `max_gap_s` is tolerated, as a gap would
    be: the newest minutes are often not published yet); the share of missing bins;
    every gap between datapoints longer than `max_gap_s`. Leading and trailing
    missing bins count in the span, not as gaps, so nothing is reported twice.
    """
    cov = h.coverage()
    if cov.present_bins == 0:
        return [f"no demand datapoints at all in {_span(h.start, h.end)} ({h.source})"]
    problems: list[str] = []
    first, last_end = cov.first_present, cov.last_present_end
    if first is not None and last_end is not None and cov.covered_s < days * 86400.0 - max_gap_s:
        covered_days = math.floor(cov.covered_s / 8640.0) / 10.0  # never rounds up to `days`
        problems.append(
            f"covers {covered_days:.1f} of {days:g} days (data from {_span(first, last_end)})"
        )
    if cov.missing_share > max_missing_share:
        problems.append(
            f"{_percent(cov.missing_share)} % of {h.step_s:g} s bins missing "
            f"({cov.expected_bins - cov.present_bins} of {cov.expected_bins}; "
            f"limit {_percent(max_missing_share)} %)"
        )
    for gap in cov.gaps:
        inside = first is not None and last_end is not None and first < gap.start < last_end
        if inside and gap.seconds > max_gap_s:
            problems.append(
                f"gap {_span(gap.start, gap.end)} "
                f"({_hours(gap.seconds)}, limit {_hours(max_gap_s)})"
            )
    return problems


def bin_values(
    points: Iterable[tuple[datetime, float]],
    start: datetime,
    step_s: float,
    n_bins: int,
    what: str,
) -> FloatArray:
    """Datapoints placed on the grid `start + i * step_s`; bins without one are NaN.

    A non-finite value (Prometheus' NaN of 0/0, +Inf) leaves its bin missing. A
    negative one is an error: neither a request rate nor a replica count can be
    below zero, so the query or the publisher is wrong and the history would lie.

    Raises:
        UserInputError: a negative value, a timestamp off the grid, or two values in one bin.
    """
    values = np.full(n_bins, np.nan)
    seen = np.zeros(n_bins, dtype=bool)
    for when, value in points:
        offset_s = (to_utc(when) - start).total_seconds()
        index = round(offset_s / step_s)
        if abs(offset_s - index * step_s) > 1e-3:
            raise UserInputError(
                f"{what}: datapoint at {when.isoformat()} is off the {step_s:g} s grid from "
                f"{start.isoformat()}; the source did not honour the requested step"
            )
        if not 0 <= index < n_bins:
            continue  # outside the window asked for: a source may return its boundary sample
        if seen[index]:
            raise UserInputError(f"{what}: two datapoints for the bin at {when.isoformat()}")
        seen[index] = True
        if math.isfinite(value):
            if value < 0:
                raise UserInputError(
                    f"{what}: negative value {value:g} at {when.isoformat()}; a rate or a "
                    "count cannot be negative; check the metric or the query"
                )
            values[index] = value
    return values


def align_down(when: datetime, step_s: float) -> datetime:
    """`when` rounded down to a multiple of `step_s` since the epoch (whole seconds, UTC)."""
    epoch_s = math.floor(to_utc(when).timestamp() / step_s) * step_s
    return datetime.fromtimestamp(epoch_s, UTC)


def align_up(when: datetime, step_s: float) -> datetime:
    """`when` rounded up to a multiple of `step_s` since the epoch (whole seconds, UTC)."""
    epoch_s = math.ceil(to_utc(when).timestamp() / step_s) * step_s
    return datetime.fromtimestamp(epoch_s, UTC)


def _frozen_series(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.array(values, dtype=np.float64)  # a copy: the caller's array may change
    if array.ndim != 1:
        raise ValueError(f"DemandHistory.{name} must be 1-D")
    finite = array[np.isfinite(array)]
    if np.isinf(array).any() or (finite < 0).any():
        raise ValueError(f"DemandHistory.{name}: values must be >= 0 or NaN (missing)")
    array.setflags(write=False)
    return array


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of True in `mask`."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def to_utc(when: datetime) -> datetime:
    """`when` in UTC; a naive datetime is taken as UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _stamp(when: datetime) -> str:
    when = to_utc(when)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ" if when.second else "%Y-%m-%dT%H:%MZ")


def _span(start: datetime, end: datetime) -> str:
    return f"{_stamp(start)}..{_stamp(end)}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _percent(share: float) -> str:
    return f"{100 * share:.3g}"
