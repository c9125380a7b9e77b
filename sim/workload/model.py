"""Workload values: request-level arrivals or a rate envelope with burstiness.

Both are immutable. Times are seconds from the start of the workload (t = 0).
`epoch_s` anchors t = 0 to wall-clock time (UTC seconds) for scheduled policies;
ServeGen's t = 0 is local midnight, so its loader sets `epoch_s` to a midnight.

Gaps in the data are never zero load: they are carried as `missing` (a boolean
mask per bin for envelopes, a list of intervals for request traces) and every
consumer decides explicitly what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class ArrivalPattern(IntEnum):
    """Inter-arrival distribution of one client in one window (ServeGen's `pattern`)."""

    IDLE = 0
    POISSON = 1
    GAMMA = 2
    WEIBULL = 3


@dataclass(frozen=True)
class TokenProfile:
    """Distribution of request sizes, used where a trace has no token counts.

    Lognormal input and output token counts, parameterised by their means and
    coefficients of variation (fitted, for the default, on the Azure LLM conv trace).
    """

    input_mean: float = 1000.0
    input_cv: float = 1.0
    output_mean: float = 200.0
    output_cv: float = 1.0


@dataclass(frozen=True)
class ClientFits:
    """Per-client, per-bin burstiness fits (ServeGen). Arrays have shape (clients, bins)."""

    rate_rps: FloatArray
    pattern: NDArray[np.int8]
    shape: FloatArray
    scale: FloatArray


@dataclass(frozen=True)
class RequestTrace:
    """Request-level arrivals, sorted by time.

    Attributes:
        arrival_s: Arrival times in seconds from t = 0, non-decreasing.
        duration_s: Length of the observed window (arrivals lie in [0, duration_s)).
        input_tokens: Prompt tokens per request, or None when the source has none.
        output_tokens: Generated tokens per request, or None.
        missing: Intervals (start_s, end_s) with no data (not zero load).
        epoch_s: UTC time of t = 0, in seconds since 1970, or None if unknown.
        source: Human-readable origin, e.g. "azure-llm:conv.csv".
    """

    arrival_s: FloatArray
    duration_s: float
    input_tokens: IntArray | None = None
    output_tokens: IntArray | None = None
    missing: tuple[tuple[float, float], ...] = ()
    epoch_s: float | None = None
    source: str = ""


@dataclass(frozen=True)
class RateEnvelope:
    """Mean arrival rate per bin, plus an optional per-client burstiness model.

    Attributes:
        bin_s: Width of one bin in seconds.
        rate_rps: Total mean rate per bin (requests per second); NaN where missing.
        missing: True for bins with no data (collection gaps).
        clients: ServeGen per-client fits; None means Poisson arrivals per bin.
        tokens: Request-size distribution for generated arrivals.
        epoch_s: UTC time of t = 0, in seconds since 1970, or None if unknown.
        source: Human-readable origin.
    """

    bin_s: float
    rate_rps: FloatArray
    missing: BoolArray
    clients: ClientFits | None = None
    tokens: TokenProfile = field(default_factory=TokenProfile)
    epoch_s: float | None = None
    source: str = ""

    @property
    def duration_s(self) -> float:
        return float(self.bin_s * len(self.rate_rps))


Workload = RequestTrace | RateEnvelope
