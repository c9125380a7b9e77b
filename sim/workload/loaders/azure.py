"""Azure LLM inference trace 2023 (`TIMESTAMP,ContextTokens,GeneratedTokens`).

One row per request (Patel et al., "Splitwise", ISCA 2024; Azure/AzurePublicDataset).
Arrival time is `TIMESTAMP` minus the first row's, in seconds. Two requests may share
a timestamp (they arrived together), so equal timestamps are allowed; a timestamp
earlier than the previous row's is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.errors import TraceFormatError
from sim.workload.loaders._csv import (
    check_order,
    non_negative,
    numbers,
    read_table,
    request_trace,
    timestamps,
)
from sim.workload.model import RequestTrace

FIELDS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def load_azure_llm(path: Path, time_unit: str | None = None) -> RequestTrace:
    """Load an Azure LLM inference trace CSV as a `RequestTrace` with tokens.

    Args:
        path: The CSV file.
        time_unit: Unit of numeric timestamps (`s`, `ms`, `us`); None detects.

    Raises:
        TraceFormatError: Missing/empty file, wrong header, bad or unsorted values,
            numeric timestamps that do not look like seconds and no `time_unit`.
    """
    table = read_table(path, FIELDS, header="required", what="azure-llm")
    if table.header != list(FIELDS):
        raise TraceFormatError(
            f"{path}: line 1 is {','.join(table.header or [])!r}, an azure-llm trace starts "
            f"with the header {','.join(FIELDS)}; check the format (requests-csv for other "
            "request files)"
        )
    arrival_s, epoch_s = timestamps(table, "TIMESTAMP", time_unit)
    check_order(table, "TIMESTAMP", arrival_s, duplicates_ok=True)
    tokens = []
    for field in FIELDS[1:]:
        values = numbers(table, field)
        non_negative(table, field, values)
        fractional = values != np.rint(values)
        if fractional.any():
            row = int(np.argmax(fractional))
            raise table.fail(row, field, f"{values[row]:g} is not a whole number", "fix the count")
        tokens.append(values.astype(np.int64))
    return request_trace(arrival_s, epoch_s, tokens[0], tokens[1], f"azure-llm:{path.name}")
