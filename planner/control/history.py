"""Demand history for a forecasting policy run live: the group's own CloudWatch metrics.

In the simulator a forecasting policy (predictive, anomaly, spillover, or an RL policy
over one) fits its forecast at `reset` on the trace before the run
(`PolicyContext.history`). Live, the same history is the Auto Scaling group's
`RequestCount` over the last days, read through the retraining job's CloudWatch
source (`planner.metrics.cloudwatch`, within GetMetricData's limits and CloudWatch's
retention: 60 s bins within 15 days). Without it the policy runs on its reactive
floor alone and says so in every decision's reason.

Bins CloudWatch has no datapoint for stay missing (never zero); the bins before the
group's first datapoint are dropped, so a young group's history starts where its
metrics do. The policy itself decides whether that is enough to fit (it needs
`min_history_days + backtest_days`) and says why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.metrics.cloudwatch import fetch_cloudwatch
from policies.spec import PolicySpecBase
from sim.workload.model import RateEnvelope

#: Days read when the policy fits a forecast and the user names none: the default
#: predictive policy fits on up to 28 days but needs 4 (2 to fit, 2 to backtest), and
#: 14 days keep CloudWatch's 60 s resolution (it lasts 15 days) and two weekly cycles.
DEFAULT_HISTORY_DAYS = 14.0


@dataclass(frozen=True)
class LiveHistory:
    """The history handed to the policy (None when there is none) and what it holds."""

    envelope: RateEnvelope | None
    note: str


def history_days(spec: PolicySpecBase, asked: float | None) -> float:
    """Days to read: the user's, else `DEFAULT_HISTORY_DAYS` for a policy that fits a
    forecast and 0 for one that does not (it would never look at them)."""
    if asked is not None:
        return asked
    return DEFAULT_HISTORY_DAYS if spec.fits_history() else 0.0


def live_history(cloudwatch: Any, group: str, days: float, now: datetime) -> LiveHistory:
    """The last `days` of `group`'s demand as a rate envelope ending at `now`.

    Raises:
        UserInputError: CloudWatch refused the query (from `fetch_cloudwatch`).
    """
    if days <= 0:
        return LiveHistory(None, "no demand history read (the policy fits no forecast)")
    pulled = fetch_cloudwatch(cloudwatch, group, now - timedelta(days=days), now, now=now)
    present = np.isfinite(pulled.rps)
    if not present.any():
        return LiveHistory(
            None,
            f"no RequestCount datapoint for {group} in the last {days:g} days: the policy "
            "runs on its reactive floor until it has history",
        )
    first = int(np.argmax(present))
    rates = np.array(pulled.rps[first:], dtype=float)
    envelope = RateEnvelope(
        bin_s=pulled.step_s,
        rate_rps=rates,
        missing=~np.isfinite(rates),
        epoch_s=pulled.start.timestamp() + first * pulled.step_s,
        source=pulled.source,
    )
    held_days = envelope.duration_s / 86400.0
    gap_h = _longest_run(envelope.missing) * pulled.step_s / 3600.0
    return LiveHistory(
        envelope,
        f"demand history: {held_days:.1f} days of {group} RequestCount from CloudWatch "
        f"({pulled.step_s:.0f} s bins, {int((~envelope.missing).sum())} with data, longest "
        f"gap {gap_h:.1f} h)",
    )


def _longest_run(flags: npt.NDArray[np.bool_]) -> int:
    """Length of the longest run of True in `flags`."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0
