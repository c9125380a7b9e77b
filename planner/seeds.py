"""`planner simulate --seeds N`: the same what-if over N seeds, mean and 95 % interval.

One seed is one replication: it seeds the workload's sampling (arrivals of a rate
envelope, the copies of a rescaled request trace) and the engine (provisioning
delays, spot interruptions). Each seed is one `planner.whatif.run_whatif` call, so
a multi-seed run is exactly N single-seed runs, and `--seed S --seeds N` runs
seeds S, S+1, ..., S+N-1 (each reproducible alone with `--seed`).

The interval is Student's t on the seeds' values (mean +/- t(0.975, N-1) x s /
sqrt(N)); with one seed there is no interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner.json_values import json_safe
from planner.whatif import WhatIfReport, run_whatif
from sim.scenario import Scenario

#: Told the label of each stage, prefixed with the seed it belongs to.
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Interval:
    """Mean of a sample and its two-sided 95 % Student-t interval (NaN bounds for n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Interval:
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        n = len(finite)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        mean = math.fsum(finite) / n
        if n < 2:
            return cls(mean, math.nan, math.nan, n)
        from scipy.stats import t

        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
        half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        return cls(mean, mean - half, mean + half, n)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_json(self) -> dict[str, Any]:
        return dict(
            json_safe(
                {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high, "n": self.n}
            )
        )


@dataclass(frozen=True)
class PolicyOverSeeds:
    """One policy's figures across seeds."""

    policy: str
    cost_usd: Interval
    cost_vs_oracle: Interval
    slo_attainment: Interval
    p95_latency_s: Interval
    scaling_actions: Interval
    seeds_meeting_slo: int

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "cost_usd": self.cost_usd.to_json(),
            "cost_vs_oracle": self.cost_vs_oracle.to_json(),
            "slo_attainment": self.slo_attainment.to_json(),
            "p95_latency_s": self.p95_latency_s.to_json(),
            "scaling_actions": self.scaling_actions.to_json(),
            "seeds_meeting_slo": self.seeds_meeting_slo,
        }


@dataclass(frozen=True)
class SeedsReport:
    """N what-if reports of one scenario, one per seed, and their summary."""

    seeds: tuple[int, ...]
    reports: tuple[WhatIfReport, ...]

    @property
    def scenario(self) -> Scenario:
        return self.reports[0].scenario

    def oracle_cost(self) -> Interval:
        return Interval.of([report.oracle.cost_usd for report in self.reports])

    def policies(self) -> list[PolicyOverSeeds]:
        """Per policy, in the order named: each figure's mean and interval over seeds."""
        rows = []
        for index, first in enumerate(self.reports[0].results):
            runs = [report.results[index] for report in self.reports]
            rows.append(
                PolicyOverSeeds(
                    policy=first.policy,
                    cost_usd=Interval.of([r.cost_usd for r in runs]),
                    cost_vs_oracle=Interval.of(
                        [r.cost_vs_oracle for r in runs if r.cost_vs_oracle is not None]
                    ),
                    slo_attainment=Interval.of([r.slo_attainment for r in runs]),
                    p95_latency_s=Interval.of([r.p95_latency_s for r in runs]),
                    scaling_actions=Interval.of([float(r.scaling_actions) for r in runs]),
                    seeds_meeting_slo=sum(1 for r in runs if r.meets_slo),
                )
            )
        return rows

    def to_json(
        self, document: Callable[[WhatIfReport], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The `--json` document of a multi-seed run (schema in docs/cli.md).

        `document` renders each seed's run (default `WhatIfReport.to_json`), so the
        runs read exactly like single-seed `--json` documents.
        """
        render = document or WhatIfReport.to_json
        return {
            "seeds": list(self.seeds),
            "summary": {
                "oracle_cost_usd": self.oracle_cost().to_json(),
                "policies": [row.to_json() for row in self.policies()],
            },
            "runs": [render(report) for report in self.reports],
        }


def seed_list(first: int, count: int) -> list[int]:
    """`count` consecutive seeds from `first` (each one a reproducible single run)."""
    return list(range(first, first + count))


def run_seeds(
    scenario: Scenario,
    seeds: Sequence[int],
    *,
    engine: str = "fluid",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> SeedsReport:
    """`run_whatif` once per seed; the progress labels say which seed is running."""
    tell = progress or (lambda _label: None)
    reports = []
    for position, seed in enumerate(seeds, start=1):
        prefix = f"seed {seed} ({position}/{len(seeds)})"

        def on_stage(label: str, prefix: str = prefix) -> None:
            tell(f"{prefix}: {label}")

        reports.append(
            run_whatif(scenario, engine=engine, seed=seed, workers=workers, progress=on_stage)
        )
    return SeedsReport(tuple(seeds), tuple(reports))


def _cell(interval: Interval, fmt: Callable[[float], str]) -> str:
    if not math.isfinite(interval.mean):
        return "-"
    if not math.isfinite(interval.low):
        return fmt(interval.mean)
    return f"{fmt(interval.mean)} ± {fmt(interval.half_width)}"


def seeds_table(report: SeedsReport) -> Table:
    """Mean ± 95 % half-width per policy over the seeds, oracle last."""
    scenario = report.scenario
    slo = scenario.slo
    seeds = report.seeds
    span = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    table = Table(
        title=(
            f"{escape(scenario.name)} | engine {report.reports[0].engine} | "
            f"{len(seeds)} seeds ({span}) | SLO {slo.target_attainment:.1%} within "
            f"{slo.latency_s:g} s\nmean ± half-width of the 95 % interval over seeds"
        ),
        title_justify="left",
    )
    table.add_column("policy", style="bold")
    for name in ("cost USD", "vs oracle", "SLO att.", "p95 s", "actions", "seeds meeting SLO"):
        table.add_column(name, justify="right")
    for row in report.policies():
        table.add_row(
            escape(row.policy),
            _cell(row.cost_usd, lambda v: f"{v:,.2f}"),
            _cell(row.cost_vs_oracle, lambda v: f"{v:.2f}x"),
            _cell(row.slo_attainment, lambda v: f"{v:.2%}"),
            _cell(row.p95_latency_s, lambda v: f"{v:.1f}"),
            _cell(row.scaling_actions, lambda v: f"{v:,.0f}"),
            f"{row.seeds_meeting_slo}/{len(seeds)}",
        )
    table.add_row(
        "oracle (offline optimum)", _cell(report.oracle_cost(), lambda v: f"{v:,.2f}"), "1.00x"
    )
    return table
