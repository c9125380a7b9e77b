"""`RunResult`: what one policy achieved on one scenario, in one engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.control import ActuationRecord
from sim.workload.model import FloatArray


@dataclass(frozen=True)
class TimeSeries:
    """Per-decision-interval series for plots. All arrays share `time_s`."""

    time_s: FloatArray
    demand_rps: FloatArray
    ready: FloatArray
    desired: FloatArray
    pending: FloatArray
    p95_latency_s: FloatArray  # NaN where no request finished in the interval
    cost_usd: FloatArray  # cumulative

    def to_dict(self) -> dict[str, list[float | None]]:
        def clean(values: FloatArray) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in values]

        return {name: clean(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class RunResult:
    """Outcome of one policy on one scenario.

    `slo_attainment` is the share of all arrivals (dropped ones count as misses)
    whose latency met the SLO; requests still in flight at the end are excluded.
    `cost_vs_oracle` is filled in by the caller once the oracle is known.
    `decisions` are the control loop's accepted capacity changes, each with the
    reason the policy (and the loop's clamp) gave: why the policy scaled.
    """

    policy: str
    engine: str
    seed: int
    cost_usd: float
    cost_by_pool: dict[str, float]
    gpu_hours: float
    arrivals: int
    served: int
    dropped: int
    in_flight: int
    slo_attainment: float
    slo_target: float
    p50_latency_s: float
    p95_latency_s: float
    p99_latency_s: float
    scaling_actions: int
    series: TimeSeries
    cold_starts: int = 0
    retried: int = 0
    cost_vs_oracle: float | None = None
    notes: tuple[str, ...] = field(default=())
    decisions: tuple[ActuationRecord, ...] = field(default=())

    @property
    def meets_slo(self) -> bool:
        return self.slo_attainment >= self.slo_target

    def summary(self) -> dict[str, Any]:
        """The JSON row of `planner simulate --json`."""
        return {
            "policy": self.policy,
            "cost_usd": self.cost_usd,
            "gpu_hours": self.gpu_hours,
            "slo_attainment": self.slo_attainment,
            "p50_latency_s": self.p50_latency_s,
            "p95_latency_s": self.p95_latency_s,
            "p99_latency_s": self.p99_latency_s,
            "dropped": self.dropped,
            "scaling_actions": self.scaling_actions,
            "cost_vs_oracle": self.cost_vs_oracle,
            "meets_slo": self.meets_slo,
        }
