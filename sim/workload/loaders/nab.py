"""Numenta Anomaly Benchmark series (`timestamp,value`, a count per bin).

NAB's `nyc_taxi.csv` counts taxi passengers per 30 minutes; read as load, a count
per bin divided by the bin width is a rate. The bin width is given or inferred as
the smallest step between rows; rows absent from the grid are missing bins.
"""

from __future__ import annotations

from pathlib import Path

from sim.workload.loaders.generic import _load_series
from sim.workload.model import RateEnvelope


def load_nab(path: Path, bin_s: float | None = None, time_unit: str | None = None) -> RateEnvelope:
    """Load a NAB `timestamp,value` CSV: value / bin_s is the rate of each bin.

    Raises:
        TraceFormatError: as for rate-csv.
    """
    return _load_series(
        path,
        bin_s,
        per_bin_count=True,
        what="nab",
        fields=("timestamp", "value"),
        unit=time_unit,
    )
