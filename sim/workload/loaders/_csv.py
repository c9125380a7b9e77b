"""Shared CSV reading and validation for the trace loaders.

Every loader reads its file as text first, then converts columns with vectorised
pandas calls. Reading as text keeps the mapping "row index -> file line" exact, so
any bad value is reported with its line number, field name and a fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import TraceFormatError
from sim.workload.model import BoolArray, FloatArray, IntArray, RequestTrace


class Table:
    """The rows of one CSV file as text, with the file line of the first data row.

    Attributes:
        path: The file read.
        frame: One string column per field; NaN where a row had too few fields.
        first_line: 1-based file line of `frame`'s first row.
        header: The header fields, or None when the file has none.
    """

    def __init__(
        self, path: Path, frame: pd.DataFrame, first_line: int, header: list[str] | None
    ) -> None:
        self.path = path
        self.frame = frame
        self.first_line = first_line
        self.header = header

    def line(self, row: int) -> int:
        """File line (1-based) of data row `row` (0-based)."""
        return self.first_line + int(row)

    def fail(self, row: int, field: str, problem: str, fix: str) -> TraceFormatError:
        """A `TraceFormatError` naming the file, line and field."""
        return TraceFormatError(
            f"{self.path}: line {self.line(row)}, field '{field}': {problem}; {fix}"
        )


def read_table(
    path: Path,
    fields: tuple[str, ...],
    *,
    optional_fields: int = 0,
    header: str = "optional",
    what: str,
) -> Table:
    """Read a headerless-or-headed CSV file as text and check its shape.

    Args:
        path: File to read.
        fields: Field names in order (used in messages and to check a header).
        optional_fields: How many trailing fields may be absent from every row.
        header: "required", "optional" (detected: no field of line 1 is a number
            or a date) or "none".
        what: Format name for messages, e.g. "azure-llm".

    Raises:
        TraceFormatError: Missing or empty file, ragged rows, wrong field count.
    """
    if not path.is_file():
        raise TraceFormatError(f"{path}: no such file; pass the path of an existing {what} file")
    try:
        frame = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise TraceFormatError(
            f"{path}: the file is empty; a {what} trace needs at least one data row"
        ) from None
    except pd.errors.ParserError as exc:
        raise TraceFormatError(
            f"{path}: malformed CSV ({exc}); every row of a {what} file needs the fields "
            f"{','.join(fields)}"
        ) from None
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{path}: not a UTF-8 text file ({exc}); pass a CSV file") from None
    n_cols = frame.shape[1]
    if not len(fields) - optional_fields <= n_cols <= len(fields):
        raise TraceFormatError(
            f"{path}: {n_cols} fields per row, a {what} file has "
            f"{_arity(len(fields), optional_fields)} ({','.join(fields)})"
        )
    frame.columns = pd.Index(list(fields[:n_cols]))
    names: list[str] | None = None
    first_row = [str(v).strip() for v in frame.iloc[0].tolist()]
    # A header is a first line none of whose fields reads as a value: "yesterday,5"
    # is a bad data row (reported), not a header (silently skipped).
    looks_like_header = not any(_looks_like_value(v) for v in first_row)
    has_header = header == "required" or (header == "optional" and looks_like_header)
    if header == "required" and _looks_like_value(first_row[0]):
        raise TraceFormatError(
            f"{path}: line 1 is data, a {what} file starts with the header {','.join(fields)}; "
            "add the header line"
        )
    first_line = 1
    if has_header:
        names = [str(v).strip() for v in frame.iloc[0].tolist()]
        frame = frame.iloc[1:].reset_index(drop=True)
        first_line = 2
    if frame.empty:
        raise TraceFormatError(f"{path}: no data rows; a {what} trace needs at least one")
    table = Table(path, frame, first_line, names)
    blank = frame.isna().any(axis=1).to_numpy() | (frame == "").all(axis=1).to_numpy()
    if blank.any():
        row = int(np.argmax(blank))
        raise TraceFormatError(
            f"{path}: line {table.line(row)} has fewer than {n_cols} fields or is blank; "
            f"every row needs {','.join(fields[:n_cols])}"
        )
    return table


def _arity(total: int, optional: int) -> str:
    return str(total) if optional == 0 else f"{total - optional} to {total}"


def _looks_like_value(text: str) -> bool:
    if text == "":
        return True
    try:
        float(text)
        return True
    except ValueError:
        pass
    return not pd.isna(pd.to_datetime(text, errors="coerce", format="ISO8601"))


def numbers(table: Table, field: str, *, allow_empty: bool = False) -> FloatArray:
    """Column `field` as floats; the first non-numeric or infinite value is an error."""
    text = table.frame[field]
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(values)
    if allow_empty:
        empty = (text == "").to_numpy()
        values[empty] = 0.0
        bad &= ~empty
    if bad.any():
        row = int(np.argmax(bad))
        value = text.iat[row]
        if value == "":
            raise table.fail(
                row, field, "the field is empty", f"every row needs a number for '{field}'"
            )
        raise table.fail(row, field, f"{value!r} is not a finite number", "fix the value")
    return values


def non_negative(table: Table, field: str, values: FloatArray) -> None:
    """Counts and rates cannot be negative."""
    bad = values < 0
    if bad.any():
        row = int(np.argmax(bad))
        raise table.fail(
            row, field, f"{values[row]:g} is negative", "counts and rates must be >= 0"
        )


#: Seconds per unit of a numeric timestamp column (`--time-unit`, `workload.time_unit`).
UNIT_S: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
#: A first value at or above this is no Unix time in seconds (it would be year 5138):
#: epoch timestamps this large are milliseconds or microseconds.
EPOCH_S_LIMIT = 1e11
#: Read as seconds, a request trace longer than this, or a rate series with bins
#: wider than `SERIES_BIN_LIMIT_S` on a whole-thousand grid, is probably not seconds.
REQUEST_SPAN_LIMIT_S = 30 * 86400.0
SERIES_SPAN_LIMIT_S = 10 * 365 * 86400.0
SERIES_BIN_LIMIT_S = 6 * 3600.0


def timestamps(
    table: Table, field: str, unit: str | None = None, *, series: bool = False
) -> tuple[FloatArray, float | None]:
    """Column `field` as seconds since the first row, plus the UTC epoch of that row.

    The column is either all numbers or all ISO 8601 datetimes (naive ones are taken
    as UTC). Numbers are in `unit` (`s`, `ms` or `us`); with `unit` None they are
    taken as seconds unless they look like milliseconds or microseconds (an epoch
    past year 5138, a request trace spanning over 30 days, a rate series spanning
    over 10 years or binned wider than 6 h on a whole-thousand grid), which is an
    error asking for the unit: a 55-minute trace in milliseconds read as seconds
    would run for 38 days.

    Args:
        table: The source table.
        field: The timestamp field.
        unit: Unit of numeric timestamps; None detects (and refuses when in doubt).
        series: True for rate series (one row per bin), False for request rows.
    """
    text = table.frame[field].str.strip()
    numeric = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    if np.isfinite(numeric[0]):
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.argmax(bad))
            raise table.fail(
                row,
                field,
                f"{text.iat[row]!r} is not a number like the first row",
                "use one timestamp style (numeric or ISO datetimes) for the whole file",
            )
        if unit is None:
            _refuse_unlikely_seconds(table, field, numeric, series)
            unit = "s"
        if unit not in UNIT_S:
            raise TraceFormatError(
                f"{table.path}: time unit {unit!r} is not one of {', '.join(UNIT_S)}"
            )
        # Numbers carry no known epoch (relative and absolute ones look alike).
        return (numeric - numeric[0]) * UNIT_S[unit], None
    if unit not in (None, "s"):
        raise TraceFormatError(
            f"{table.path}: time unit {unit!r} applies to numeric timestamps; field "
            f"'{field}' holds datetimes, which carry their own unit: drop the time unit"
        )
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise table.fail(
            row,
            field,
            f"{text.iat[row]!r} is neither seconds nor an ISO 8601 datetime",
            "write timestamps like 2024-05-01 13:00:00 or as seconds",
        )
    nanos = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return (nanos - nanos[0]).astype(np.float64) / 1e9, float(nanos[0]) / 1e9


def _refuse_unlikely_seconds(table: Table, field: str, numeric: FloatArray, series: bool) -> None:
    """Raise when numeric timestamps are implausible as seconds (see `timestamps`)."""
    span = float(numeric[-1] - numeric[0])
    steps = np.diff(numeric)
    positive = steps[steps > 0]
    step = float(positive.min()) if len(positive) else 0.0
    if numeric[0] >= EPOCH_S_LIMIT:
        why = f"the first value {numeric[0]:.0f} is past year 5138 as Unix seconds"
    elif not series and span > REQUEST_SPAN_LIMIT_S:
        why = f"as seconds the {len(numeric):,} requests would span {_span(span)}"
    elif series and span > SERIES_SPAN_LIMIT_S:
        why = f"as seconds the series would span {_span(span)}"
    elif series and step > SERIES_BIN_LIMIT_S and step % 1000 == 0:
        why = f"as seconds the rows would be {_span(step)} apart"
    else:
        return
    raise TraceFormatError(
        f"{table.path}: field '{field}' does not look like seconds: {why}; as milliseconds "
        f"it spans {_span(span / 1e3)}, as microseconds {_span(span / 1e6)}. Say which: "
        "--time-unit ms or us (workload.time_unit in a scenario), or --time-unit s if "
        "they really are seconds"
    )


def _span(seconds: float) -> str:
    """A duration in the unit a person reads it in."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s"


def check_order(table: Table, field: str, t_s: FloatArray, *, duplicates_ok: bool) -> None:
    """Timestamps must be non-decreasing (strictly increasing unless duplicates are ok)."""
    step = np.diff(t_s)
    bad = step < 0 if duplicates_ok else step <= 0
    if bad.any():
        row = int(np.argmax(bad)) + 1
        if step[row - 1] < 0:
            raise table.fail(
                row,
                field,
                "timestamp is earlier than the previous row's",
                "sort the file by timestamp",
            )
        raise table.fail(
            row,
            field,
            "duplicate timestamp (same as the previous row)",
            "a rate series needs one row per bin; merge or remove the duplicate",
        )


def bin_grid(
    table: Table, field: str, t_s: FloatArray, bin_s: float | None
) -> tuple[float, IntArray, int]:
    """Place sorted, unique timestamps on a regular grid of width `bin_s`.

    Args:
        table: The source table (for messages).
        field: The timestamp field name.
        t_s: Seconds since the first row, strictly increasing.
        bin_s: Bin width; None infers it as the smallest gap between rows.

    Returns:
        (bin_s, index of each row's bin, number of bins). Bins with no row are gaps.
    """
    if bin_s is None:
        if len(t_s) < 2:
            raise TraceFormatError(
                f"{table.path}: one row is not enough to infer the bin width; pass bin_s"
            )
        bin_s = float(np.min(np.diff(t_s)))
    position = t_s / bin_s
    index = np.rint(position).astype(np.int64)
    off_grid = np.abs(position - index) > 1e-6
    if off_grid.any():
        row = int(np.argmax(off_grid))
        raise table.fail(
            row,
            field,
            f"{t_s[row]:g} s after the first row is not a multiple of the bin width {bin_s:g} s",
            "use evenly spaced timestamps or pass the right bin_s",
        )
    return bin_s, index, int(index[-1]) + 1


def scatter(values: FloatArray, index: IntArray, n_bins: int) -> tuple[FloatArray, BoolArray]:
    """Values placed in their bins; bins without a row are NaN and missing."""
    out = np.full(n_bins, np.nan)
    out[index] = values
    missing = np.ones(n_bins, dtype=bool)
    missing[index] = False
    return out, missing


def observed_duration_s(arrival_s: FloatArray) -> float:
    """The observed window of a request trace: up to the whole second after the last arrival.

    A request file does not say when observation stopped; ending at the next whole
    second keeps every arrival inside `[0, duration_s)`.
    """
    return float(np.floor(arrival_s[-1]) + 1.0)


def request_trace(
    arrival_s: FloatArray,
    epoch_s: float | None,
    input_tokens: IntArray | None,
    output_tokens: IntArray | None,
    source: str,
) -> RequestTrace:
    """The `RequestTrace` of a request file's checked columns, over its observed window."""
    return RequestTrace(
        arrival_s=arrival_s,
        duration_s=observed_duration_s(arrival_s),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        epoch_s=epoch_s,
        source=source,
    )
