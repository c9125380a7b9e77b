"""Scoring the challengers and the champion on the window none of them trained on.

Every candidate runs on the scoring window once per seed, and the oracle is solved
(replay-verified) per seed on the same arrivals. A candidate's score is its mean
over seeds with the spread (min and max), and it meets the SLO when its mean
attainment reaches the target: the SLO is a share of all requests, which the mean
over equally long runs estimates; the worst seed is reported beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from planner.executor import Executor
from planner.oracle import OracleSummary
from planner.runs import OracleTask, RunTask, Task, run_tasks
from policies.spec import PolicySpecBase
from sim.result import RunResult
from sim.scenario import Scenario


@dataclass(frozen=True)
class Candidate:
    """A policy in the contest: `role` is challenger or champion; `origin` says where from."""

    label: str
    spec: PolicySpecBase
    role: str
    origin: str
    family: str


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.fmean(values), min(values), max(values))

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "min": self.low, "max": self.high}


@dataclass(frozen=True)
class CandidateScore:
    """One candidate over every seed of the scoring window."""

    candidate: Candidate
    cost_usd: Spread
    slo_attainment: Spread
    cost_vs_oracle: Spread | None
    churn: Spread
    target: float

    @property
    def meets_slo(self) -> bool:
        return self.slo_attainment.mean >= self.target

    def to_json(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "label": c.label,
            "role": c.role,
            "origin": c.origin,
            "family": c.family,
            "spec": c.spec.model_dump(mode="json"),
            "meets_slo": self.meets_slo,
            "cost_usd": self.cost_usd.to_json(),
            "slo_attainment": self.slo_attainment.to_json(),
            "cost_vs_oracle": None
            if self.cost_vs_oracle is None
            else self.cost_vs_oracle.to_json(),
            "scaling_actions": self.churn.to_json(),
        }


@dataclass(frozen=True)
class Scoreboard:
    """Every candidate's score and the oracle of each seed."""

    scores: list[CandidateScore]
    oracles: list[OracleSummary]
    seeds: list[int]

    def ranked(self) -> list[CandidateScore]:
        """Meeting the SLO first, cheapest first among those; then by attainment."""
        return sorted(
            self.scores,
            key=lambda s: (
                not s.meets_slo,
                s.cost_usd.mean if s.meets_slo else -s.slo_attainment.mean,
            ),
        )


def score_candidates(
    window: Scenario,
    candidates: Sequence[Candidate],
    seeds: Sequence[int],
    executor: Executor,
    engine: str,
    on_done: Callable[[int], None] | None = None,
) -> Scoreboard:
    """Run every candidate and the oracle on `window` for each seed (one executor map)."""
    tasks: list[Task] = [OracleTask(window, engine, seed) for seed in seeds]
    tasks += [RunTask(window, c.spec, seed, engine) for c in candidates for seed in seeds]
    outcomes = run_tasks(tasks, executor, on_done)
    oracles = [o.oracle for o in outcomes[: len(seeds)]]
    runs = [o.run for o in outcomes[len(seeds) :]]
    scores = []
    for i, candidate in enumerate(candidates):
        mine = runs[i * len(seeds) : (i + 1) * len(seeds)]
        scores.append(_score(candidate, mine, oracles, window.slo.target_attainment))
    return Scoreboard(scores, oracles, list(seeds))


def _score(
    candidate: Candidate, runs: list[RunResult], oracles: list[OracleSummary], target: float
) -> CandidateScore:
    ratios = [o.ratio(r.cost_usd) for r, o in zip(runs, oracles, strict=True)]
    known = [r for r in ratios if r is not None]
    return CandidateScore(
        candidate=candidate,
        cost_usd=Spread.of([r.cost_usd for r in runs]),
        slo_attainment=Spread.of([r.slo_attainment for r in runs]),
        cost_vs_oracle=Spread.of(known) if len(known) == len(runs) else None,
        churn=Spread.of([float(r.scaling_actions) for r in runs]),
        target=target,
    )
