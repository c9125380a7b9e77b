"""Score the learned policy and the baselines on the held-back window over seeds.

Every policy runs in the fluid engine on the same held-back window with each
evaluation seed (the seed draws the arrivals, provisioning delays and spot
events); the oracle is solved once on the window. Scores are the mean and the
standard deviation over seeds, and each policy's cost as a ratio to the oracle.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from planner.oracle import solve_reference
from planner.runs import RunTask, execute_run, scenario_inputs
from policies.spec import PolicySpecBase
from sim.result import RunResult
from sim.scenario import Scenario


@dataclass(frozen=True)
class PolicyScore:
    """One policy over the evaluation seeds."""

    name: str
    cost_usd: tuple[float, ...]
    attainment: tuple[float, ...]
    oracle_cost_usd: float
    slo_target: float

    @property
    def cost_mean(self) -> float:
        return statistics.fmean(self.cost_usd)

    @property
    def cost_std(self) -> float:
        return statistics.pstdev(self.cost_usd)

    @property
    def attainment_mean(self) -> float:
        return statistics.fmean(self.attainment)

    @property
    def attainment_std(self) -> float:
        return statistics.pstdev(self.attainment)

    @property
    def cost_vs_oracle(self) -> float | None:
        return self.cost_mean / self.oracle_cost_usd if self.oracle_cost_usd > 0 else None

    @property
    def seeds_meeting_slo(self) -> int:
        return sum(1 for a in self.attainment if a >= self.slo_target)

    def to_json(self) -> dict[str, Any]:
        return {
            "cost_usd": list(self.cost_usd),
            "cost_usd_mean": self.cost_mean,
            "cost_usd_std": self.cost_std,
            "slo_attainment": list(self.attainment),
            "slo_attainment_mean": self.attainment_mean,
            "slo_attainment_std": self.attainment_std,
            "cost_vs_oracle": self.cost_vs_oracle,
            "seeds_meeting_slo": self.seeds_meeting_slo,
        }


@dataclass(frozen=True)
class Evaluation:
    """Every policy's score on one window, and the oracle's cost there."""

    window_h: tuple[float, float]
    seeds: tuple[int, ...]
    oracle_cost_usd: float
    scores: tuple[PolicyScore, ...]

    def score(self, name: str) -> PolicyScore:
        return next(s for s in self.scores if s.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "window_h": list(self.window_h),
            "seeds": list(self.seeds),
            "oracle_cost_usd": self.oracle_cost_usd,
            "policies": {s.name: s.to_json() for s in self.scores},
        }


#: Runs a policy on (scenario, seed): the learned one is built from its model.
RunFn = Callable[[Scenario, int], RunResult]


def evaluate(
    scenario: Scenario,
    window_h: tuple[float, float],
    *,
    learned: dict[str, RunFn],
    baselines: dict[str, PolicySpecBase],
    seeds: Sequence[int],
) -> Evaluation:
    """Score `learned` runs and `baselines` specs on `scenario` (already windowed)."""
    workload, _ = scenario_inputs(scenario)
    oracle_cost = float(solve_reference(scenario, workload).cost_usd)
    target = scenario.slo.target_attainment
    scores: list[PolicyScore] = []
    runners: dict[str, RunFn] = dict(learned)
    for name, spec in baselines.items():
        runners[name] = _spec_runner(spec)
    for name, run in runners.items():
        results = [run(scenario, seed) for seed in seeds]
        scores.append(
            PolicyScore(
                name,
                tuple(r.cost_usd for r in results),
                tuple(r.slo_attainment for r in results),
                oracle_cost,
                target,
            )
        )
    return Evaluation(window_h, tuple(seeds), oracle_cost, tuple(scores))


def _spec_runner(spec: PolicySpecBase) -> RunFn:
    def run(scenario: Scenario, seed: int) -> RunResult:
        return execute_run(RunTask(scenario, spec, seed, "fluid"))

    return run
