"""The oracle as the planner uses it: solved offline, summarised, replayed as a schedule.

`sim.oracle.solve_oracle` is the solver; this module is where the planner calls
it. An engine never sees the future: to replay the oracle it gets a plain
`SchedulePolicy` (`oracle_replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.json_values import json_safe
from sim.replay import SchedulePolicy
from sim.scenario import Scenario
from sim.workload.model import Workload


@dataclass(frozen=True)
class OracleSummary:
    """The offline optimum's totals (the reference every policy is divided by)."""

    cost_usd: float
    gpu_hours: float
    #: SLO attainment the capacity model predicts for the oracle's schedule (0..1).
    predicted_attainment: float
    #: Ready replicas per decision interval.
    schedule: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"cost_usd": json_safe(self.cost_usd), "gpu_hours": json_safe(self.gpu_hours)}

    def ratio(self, cost_usd: float) -> float | None:
        """`cost_usd` as a multiple of the oracle's cost; None when the oracle costs nothing."""
        return cost_usd / self.cost_usd if self.cost_usd > 0 else None


def solve_reference(scenario: Scenario, workload: Workload) -> OracleSummary:
    """Run the oracle and keep what the report needs."""
    from sim.oracle import solve_oracle

    solved = solve_oracle(scenario, workload)
    return OracleSummary(
        cost_usd=float(solved.cost_usd),
        gpu_hours=float(solved.gpu_hours),
        predicted_attainment=float(solved.predicted_attainment),
        schedule=tuple(float(v) for v in solved.replicas),
    )


def oracle_replay(scenario: Scenario, workload: Workload, name: str = "oracle") -> SchedulePolicy:
    """The oracle's schedule for `workload` as a replay policy for any engine."""
    from sim.oracle import solve_oracle

    return solve_oracle(scenario, workload).replay_policy(name)
