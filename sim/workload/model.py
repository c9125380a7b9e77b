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

# Monday 1970-01-05 00:00 UTC: the calendar anchor of t = 0 for workloads whose date is
# unknown (ServeGen, synthetic), so hour-of-day and weekday schedules line up.
MONDAY_EPOCH_S = 4 * 86400.0

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

    # Measured on the Azure LLM inference trace 2023, conv hour (Patel et al.,
    # "Splitwise", ISCA 2024), 19,366 requests: ContextTokens mean 1154.7, CV 0.960;
    # GeneratedTokens mean 211.1, CV 0.771 (sim/scenarios/fixtures/azure_conv.csv).
    input_mean: float = 1154.7
    input_cv: float = 0.960
    output_mean: float = 211.1
    output_cv: float = 0.771

    def sample(self, rng: np.random.Generator, n: int) -> tuple[IntArray, IntArray]:
        """Draw `n` (input, output) token counts, lognormal with this profile's moments.

        Counts are rounded and at least 1 (a request has a prompt and emits a token).
        """
        return (
            _lognormal_counts(rng, self.input_mean, self.input_cv, n),
            _lognormal_counts(rng, self.output_mean, self.output_cv, n),
        )


def _lognormal_counts(rng: np.random.Generator, mean: float, cv: float, n: int) -> IntArray:
    """Lognormal draws with the given mean and CV: sigma^2 = ln(1 + cv^2)."""
    sigma2 = float(np.log1p(cv * cv))
    mu = float(np.log(mean)) - sigma2 / 2.0
    draws = rng.lognormal(mu, np.sqrt(sigma2), size=n)
    return np.maximum(np.rint(draws), 1.0).astype(np.int64)


@dataclass(frozen=True)
class ClientFits:
    """Per-client, per-bin burstiness fits (ServeGen). Arrays have shape (clients, bins)."""

    rate_rps: FloatArray
    pattern: NDArray[np.int8]
    shape: FloatArray
    scale: FloatArray
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        dims = {self.rate_rps.shape, self.pattern.shape, self.shape.shape, self.scale.shape}
        if len(dims) != 1 or self.rate_rps.ndim != 2:
            raise ValueError(f"ClientFits arrays must share one 2-D shape, got {dims}")
        if self.names and len(self.names) != self.rate_rps.shape[0]:
            raise ValueError("ClientFits.names needs one name per client row")


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

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        for name in ("input_tokens", "output_tokens"):
            tokens = getattr(self, name)
            if tokens is not None and len(tokens) != n:
                raise ValueError(f"RequestTrace.{name} has {len(tokens)} entries for {n} arrivals")

    @property
    def n_requests(self) -> int:
        return len(self.arrival_s)


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

    def __post_init__(self) -> None:
        if self.rate_rps.shape != self.missing.shape or self.rate_rps.ndim != 1:
            raise ValueError("RateEnvelope.rate_rps and missing must be 1-D of equal length")
        if self.clients is not None and self.clients.rate_rps.shape[1] != len(self.rate_rps):
            raise ValueError("RateEnvelope.clients must have one column per bin")

    @property
    def duration_s(self) -> float:
        return float(self.bin_s * len(self.rate_rps))


Workload = RequestTrace | RateEnvelope
