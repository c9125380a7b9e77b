"""Generic formats: `requests-csv` (one row per request) and `rate-csv` (a rate series).

requests-csv: `timestamp[,input_tokens,output_tokens]`, header optional. Timestamps
are numeric seconds or ISO 8601 datetimes; arrival = timestamp minus the first row's.
Equal timestamps are allowed (requests that arrived together); decreasing ones are
an error. Token columns come as a pair or not at all.

rate-csv: `timestamp,value`, header optional; `value` is a mean rate in requests per
second for the bin starting at `timestamp`. The bin width is given (`bin_s`) or
inferred as the smallest step between rows; timestamps must sit on that grid, and
missing rows become missing bins (collection gaps, not zero load). Duplicate
timestamps are an error: a bin has one rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.errors import TraceFormatError
from sim.workload.loaders._csv import (
    bin_grid,
    check_order,
    non_negative,
    numbers,
    read_table,
    request_trace,
    scatter,
    timestamps,
)
from sim.workload.model import IntArray, RateEnvelope, RequestTrace

REQUEST_FIELDS = ("timestamp", "input_tokens", "output_tokens")
RATE_FIELDS = ("timestamp", "value")


def load_requests_csv(path: Path, time_unit: str | None = None) -> RequestTrace:
    """Load a generic per-request CSV as a `RequestTrace`.

    Raises:
        TraceFormatError: Missing/empty file, one token column, bad or unsorted values.
    """
    table = read_table(path, REQUEST_FIELDS, optional_fields=2, what="requests-csv")
    n_cols = table.frame.shape[1]
    if n_cols == 2:
        raise TraceFormatError(
            f"{path}: 2 fields per row; requests-csv has timestamp alone or "
            "timestamp,input_tokens,output_tokens (add the output_tokens column or drop "
            "input_tokens)"
        )
    arrival_s, epoch_s = timestamps(table, "timestamp", time_unit)
    check_order(table, "timestamp", arrival_s, duplicates_ok=True)
    tokens: list[IntArray | None] = [None, None]
    if n_cols == 3:
        for i, field in enumerate(REQUEST_FIELDS[1:]):
            values = numbers(table, field)
            non_negative(table, field, values)
            tokens[i] = np.rint(values).astype(np.int64)
    return request_trace(arrival_s, epoch_s, tokens[0], tokens[1], f"requests-csv:{path.name}")


def load_rate_csv(
    path: Path, bin_s: float | None = None, time_unit: str | None = None
) -> RateEnvelope:
    """Load a generic rate series (requests per second per bin) as a `RateEnvelope`.

    Raises:
        TraceFormatError: Missing/empty file, duplicate or unsorted timestamps,
            off-grid timestamps, negative or non-numeric rates.
    """
    return _load_series(
        path, bin_s, per_bin_count=False, what="rate-csv", fields=RATE_FIELDS, unit=time_unit
    )


def _load_series(
    path: Path,
    bin_s: float | None,
    *,
    per_bin_count: bool,
    what: str,
    fields: tuple[str, str],
    unit: str | None = None,
) -> RateEnvelope:
    """Shared by rate-csv (values are rates) and NAB (values are counts per bin)."""
    table = read_table(path, fields, header="optional", what=what)
    t_s, epoch_s = timestamps(table, fields[0], unit, series=True)
    check_order(table, fields[0], t_s, duplicates_ok=False)
    values = numbers(table, fields[1])
    non_negative(table, fields[1], values)
    width_s, index, n_bins = bin_grid(table, fields[0], t_s, bin_s)
    rates = values / width_s if per_bin_count else values
    rate_rps, missing = scatter(rates, index, n_bins)
    return RateEnvelope(
        bin_s=width_s,
        rate_rps=rate_rps,
        missing=missing,
        epoch_s=epoch_s,
        source=f"{what}:{path.name}",
    )
