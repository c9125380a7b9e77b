"""A streaming detector of demand departing upwards from its baseline.

The relative residual of observed demand against an expected one (a forecast, or
an exponentially weighted mean of the demand: the baseline) is standardised
against the residuals of a rolling window (a rolling z-score, the classic
streaming detector; cf. the Numenta Anomaly Benchmark's windowed scoring). An
anomalous residual (z at or above the threshold, demand above expected) is kept
out of the window, so a surge keeps its z-score while it lasts.

The window lives in arrays with its running sums (kept about the window's first
value so that they stay small: O(1) a reading), so that compiled code can advance
the same detector over readings a policy is not asked at (`Band.detector`,
`sim.fluid.quiet_kernel.advance_quiet`): `sim.fluid.detector_kernel.score_reading` is
`ResidualDetector.follow` and `score` with the same floats in the same order. This
module loads no compiler: the control loop and the policies import it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: `ResidualDetector.state`, as compiled code reads and writes it
S_HEAD, S_COUNT, S_SHIFT, S_SUM, S_SUM_SQ, S_BASELINE = range(6)
#: `ResidualDetector.params`
P_WINDOW_S, P_MIN_SAMPLES, P_MIN_STD, P_THRESHOLD, P_WEIGHT, P_HEADROOM = range(6)
#: `score_reading`'s verdicts: kept in the window, anomalous (kept out), not followed
KEPT, ANOMALOUS, UNFOLLOWED = range(3)


class ResidualDetector:
    """A rolling z-score of relative residuals, and the baseline they may be taken against.

    Args:
        window_s: Look-back of the residual statistics.
        min_samples: Residuals needed before the detector may fire.
        min_std: Floor of the residual spread (relative units), so a very quiet window
            does not make every wobble an anomaly.
        threshold: z-score of the residual that counts as an anomaly.
        headroom: Extra share of the demand an anomaly implies (`implied`).
        capacity: Residuals the window holds before it grows (it grows as needed).
    """

    def __init__(
        self,
        window_s: float,
        min_samples: int,
        min_std: float,
        threshold: float,
        headroom: float = 0.0,
        capacity: int = 64,
    ) -> None:
        self.window_s = window_s
        self.min_samples = min_samples
        self.min_std = min_std
        self.threshold = threshold
        self.headroom = headroom
        self.times = np.zeros(capacity)
        self.values = np.zeros(capacity)
        # the parameters once more as compiled code reads them (`score_reading`)
        self.params = np.array([window_s, min_samples, min_std, threshold, 0.0, headroom])
        self.state = np.zeros(6)
        self.reset(0.0)

    def reset(self, baseline_weight: float) -> None:
        """Empty the window and the baseline; the baseline moves by `baseline_weight` of
        each observation's difference from it."""
        self.params[P_WEIGHT] = self.weight = baseline_weight
        self.head = self.count = 0
        self.shift = self.total = self.total_sq = 0.0
        self.baseline: float | None = None

    def follow(self, observed: float) -> float:
        """Move the baseline towards `observed`; return where it was (`observed` at first)."""
        previous = observed if self.baseline is None else self.baseline
        self.baseline = previous + self.weight * (observed - previous)
        return previous

    def zscore(self, time_s: float, residual: float) -> float | None:
        """z of `residual` against the window (None until `min_samples` are in), after
        the residuals older than `window_s` have left it."""
        times, capacity = self.times, self.times.shape[0]
        while self.count and times[self.head] <= time_s - self.window_s:
            shifted = float(self.values[self.head]) - self.shift
            self.total -= shifted
            self.total_sq -= shifted * shifted
            self.head = (self.head + 1) % capacity
            self.count -= 1
        count = self.count
        if count < self.min_samples:
            return None
        mean_shifted = self.total / count
        variance = max(self.total_sq / count - mean_shifted * mean_shifted, 0.0)
        spread = max(math.sqrt(variance), self.min_std)
        return (residual - (self.shift + mean_shifted)) / spread

    def remember(self, time_s: float, residual: float) -> None:
        """Add `residual` at `time_s` to the window."""
        if not self.count:
            self.shift, self.total, self.total_sq = residual, 0.0, 0.0
        capacity = self.times.shape[0]
        if self.count == capacity:
            self._grow()
            capacity = self.times.shape[0]
        slot = (self.head + self.count) % capacity
        self.times[slot], self.values[slot] = time_s, residual
        self.count += 1
        shifted = residual - self.shift
        self.total += shifted
        self.total_sq += shifted * shifted

    def score(self, time_s: float, residual: float) -> tuple[float | None, bool]:
        """(z, anomalous) of `residual`; one that is not anomalous joins the window."""
        z = self.zscore(time_s, residual)
        anomalous = z is not None and z >= self.threshold and residual > 0.0
        if not anomalous:
            self.remember(time_s, residual)
        return z, anomalous

    def implied(self, observed: float, expected_ahead: float, residual: float) -> float:
        """The demand an anomaly implies ahead: the expected demand there scaled by the
        current excess (at least the demand observed), plus the headroom."""
        return max(observed, expected_ahead * (1.0 + residual)) * (1.0 + self.headroom)

    def _grow(self) -> None:
        order = (self.head + np.arange(self.count)) % self.times.shape[0]
        size = 2 * self.times.shape[0]
        times, values = np.zeros(size), np.zeros(size)
        times[: self.count], values[: self.count] = self.times[order], self.values[order]
        self.times, self.values, self.head = times, values, 0

    def export(self) -> None:
        """Write the scalars into `state` for compiled code (`score_reading`)."""
        self.state[:] = (
            self.head, self.count, self.shift, self.total, self.total_sq,
            math.nan if self.baseline is None else self.baseline,
        )  # fmt: skip

    def adopt(self) -> None:
        """Take the scalars back from `state`, as compiled code left them."""
        head, count, shift, total, total_sq, baseline = self.state.tolist()
        self.head, self.count = int(head), int(count)
        self.shift, self.total, self.total_sq = shift, total, total_sq
        self.baseline = None if baseline != baseline else baseline
