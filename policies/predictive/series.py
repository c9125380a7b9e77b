"""Demand series for forecasting: a workload aggregated into fixed bins.

Forecasters work on mean arrival rate per bin (5-15 min for the standard mode,
one hour for the AWS-like mode), not on raw arrivals: aggregation removes the
within-bin burstiness that no seasonal model can predict and keeps statsmodels
fits small. Missing bins (collection gaps) are never read as zero load; they are
linearly interpolated between the nearest observed bins for fitting, and
reported in `DemandSeries.missing` so callers can say how much was filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.errors import FitError
from sim.workload import rate_series
from sim.workload.model import BoolArray, FloatArray, Workload


@dataclass(frozen=True)
class DemandSeries:
    """Mean arrival rate per bin, gaps interpolated.

    Attributes:
        bin_s: Width of one bin in seconds.
        rate_rps: Mean rate per bin, requests per second; interpolated where missing.
        missing: True for bins that had no data before interpolation.
        epoch_s: UTC seconds of the first bin's start, or None if unknown.
    """

    bin_s: float
    rate_rps: FloatArray
    missing: BoolArray
    epoch_s: float | None = None

    @property
    def duration_s(self) -> float:
        return float(self.bin_s * len(self.rate_rps))

    def tail(self, max_bins: int) -> DemandSeries:
        """The last `max_bins` bins (caps fitting cost on very long histories)."""
        if len(self.rate_rps) <= max_bins:
            return self
        cut = len(self.rate_rps) - max_bins
        epoch = None if self.epoch_s is None else self.epoch_s + cut * self.bin_s
        return DemandSeries(self.bin_s, self.rate_rps[cut:], self.missing[cut:], epoch)


def demand_series(workload: Workload, bin_s: float) -> DemandSeries:
    """Aggregate a workload into `bin_s` bins of mean rate, interpolating gaps.

    A trailing partial bin is dropped (its mean would be biased low).

    Raises:
        FitError: the workload has no complete bin, or every bin is missing.
    """
    if bin_s <= 0:
        raise FitError(f"bin width must be positive, got {bin_s}")
    whole = math.floor(workload.duration_s / bin_s + 1e-9)
    if whole == 0:
        raise FitError(
            f"history of {workload.duration_s:g} s is shorter than one {bin_s:g} s bin; "
            "give the policy a longer history"
        )
    rate, missing = rate_series(workload, bin_s)
    rate, missing = rate[:whole], missing[:whole]
    if missing.all():
        raise FitError("every bin of the history is missing; nothing to fit")
    index = np.arange(len(rate))
    filled = np.interp(index, index[~missing], rate[~missing])
    return DemandSeries(bin_s, filled.astype(float), missing, workload.epoch_s)
