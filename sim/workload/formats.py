"""The trace formats `load_trace` reads (a scenario's `workload.format`, besides synthetic).

A module of its own so the scenario schema can name them without importing the
loaders (which would close an import cycle through `sim.workload.build`).
"""

from __future__ import annotations

from typing import Literal, get_args

TraceFormat = Literal["azure-llm", "servegen", "nab", "requests-csv", "rate-csv"]
FORMATS: tuple[str, ...] = get_args(TraceFormat)
#: Units of numeric timestamps (`workload.time_unit`, `--time-unit`).
TimeUnit = Literal["s", "ms", "us"]
TIME_UNITS: tuple[str, ...] = get_args(TimeUnit)
#: Formats whose timestamps are a CSV column (ServeGen's windows are fixed seconds).
TIMESTAMPED_FORMATS: tuple[str, ...] = ("azure-llm", "nab", "requests-csv", "rate-csv")
