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

from planner.metrics.cloudwatch import fetch_cloudwatch
from planner.metrics.history import DemandHistory
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
    held = DemandHistory(  # the pull from the group's first datapoint on
        source=pulled.source,
        start=pulled.start + timedelta(seconds=first * pulled.step_s),
        step_s=pulled.step_s,
        rps=pulled.rps[first:],
    )
    rates = np.array(held.rps, dtype=float)
    envelope = RateEnvelope(
        bin_s=held.step_s,
        rate_rps=rates,
        missing=~np.isfinite(rates),
        epoch_s=held.start.timestamp(),
        source=held.source,
    )
    coverage = held.coverage()
    return LiveHistory(
        envelope,
        f"demand history: {held.days:.1f} days of {group} RequestCount from CloudWatch "
        f"({held.step_s:.0f} s bins, {coverage.present_bins} with data, longest "
        f"gap {coverage.longest_gap_s / 3600.0:.1f} h)",
    )
