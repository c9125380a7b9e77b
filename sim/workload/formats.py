"""The trace formats `load_trace` reads (a scenario's `workload.format`, besides synthetic).

A module of its own so the scenario schema can name them without importing the
loaders (which would close an import cycle through `sim.workload.build`).
"""

from __future__ import annotations

from typing import Literal, get_args

TraceFormat = Literal["azure-llm", "servegen", "nab", "requests-csv", "rate-csv"]
FORMATS: tuple[str, ...] = get_args(TraceFormat)
