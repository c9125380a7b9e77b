"""The one sentence a capacity planner reads first, computed from the run's own numbers.

Either the cheapest policy that meets the SLO, with its cost per month at this
traffic and its ratio to the oracle; or, when no policy meets it, what it would
take: more max capacity (the oracle's answer to "how many replicas would"), a
shorter provisioning delay, or a looser SLO (the best attainment the run reached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.json_values import json_safe
from planner.report.assumptions import gpus_for
from planner.report.formats import fmt_latency, fmt_ratio, fmt_usd
from sim.capacity.pools import ServerlessEndpoint

if TYPE_CHECKING:
    from planner.oracle import OracleSummary
    from planner.whatif import WhatIfReport
    from sim.result import RunResult

#: A month of traffic for "cost per month": 30 days.
MONTH_S = 30 * 24 * 3600.0

#: SLO targets that equal a latency percentile every RunResult reports: for them the
#: latency objective the closest policy would have met is its own percentile.
_PERCENTILE_OF_TARGET = {0.5: "p50_latency_s", 0.95: "p95_latency_s", 0.99: "p99_latency_s"}


@dataclass(frozen=True)
class OracleFacts:
    """What the report says about the oracle beyond its cost."""

    feasible: bool
    #: SLO attainment of the oracle's schedule replayed in the engine (else predicted).
    attainment: float
    #: Attainment of the pool's maximum from the first moment (set when infeasible).
    best_attainment_at_max: float | None
    #: Max replicas that would meet the SLO (infeasible; None when no amount would).
    needed_max_replicas: int | None
    #: A proven lower bound on any schedule's cost, when the solver gives one.
    lower_bound_usd: float | None


def oracle_facts(oracle: OracleSummary) -> OracleFacts:
    """The oracle's feasibility and attainment.

    Read with defaults so reports also render summaries built before the sound oracle
    of issue 9 added these fields (the old oracle raised instead of returning an
    infeasible summary, so a summary without `feasible` is feasible).
    """
    predicted = float(oracle.predicted_attainment)
    attainment = getattr(oracle, "attainment", None)
    needed = getattr(oracle, "needed_max_replicas", None)
    best = getattr(oracle, "best_attainment_at_max", None)
    bound = getattr(oracle, "lower_bound_usd", None)
    return OracleFacts(
        feasible=bool(getattr(oracle, "feasible", True)),
        # NaN: the oracle's schedule was not replayed; the model's prediction stands in.
        attainment=(
            float(attainment) if attainment is not None and math.isfinite(attainment) else predicted
        ),
        best_attainment_at_max=None if best is None else float(best),
        needed_max_replicas=None if needed is None else int(needed),
        lower_bound_usd=None if bound is None else float(bound),
    )


@dataclass(frozen=True)
class Remedy:
    """One way to meet the SLO when no policy does, and whether the run says it helps."""

    #: "max_capacity", "provisioning_delay" or "looser_slo".
    kind: str
    #: True: the run's numbers say it would meet the SLO; False: it would not alone;
    #: None: it may help, the run cannot tell.
    helps: bool | None
    text: str
    #: The number the text proposes (replicas, seconds, attainment share), if any.
    value: float | int | None = None


@dataclass(frozen=True)
class Headline:
    """The report's first line and, when no policy meets the SLO, the remedies."""

    meets_slo: bool
    text: str
    #: The cheapest policy meeting the SLO, else the one with the best attainment.
    policy: str | None
    cost_usd: float | None
    cost_usd_per_month: float | None
    cost_vs_oracle: float | None
    slo_attainment: float | None
    oracle_feasible: bool
    remedies: tuple[Remedy, ...] = ()

    def to_json(self) -> dict[str, Any]:
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        document["remedies"] = [
            {"kind": r.kind, "helps": r.helps, "text": r.text, "value": r.value}
            for r in self.remedies
        ]
        return dict(json_safe(document))


def per_month(cost_usd: float, duration_s: float) -> float:
    """`cost_usd` over `duration_s` of traffic, scaled to 30 days of the same traffic."""
    return cost_usd * MONTH_S / duration_s if duration_s > 0 else math.nan


def _slo_text(report: WhatIfReport) -> str:
    slo = report.scenario.slo
    return f"{slo.target_attainment:.1%} of requests within {fmt_latency(slo.latency_s)}"


def headline_for(report: WhatIfReport) -> Headline:
    """The headline of `report` (see the module docstring)."""
    facts = oracle_facts(report.oracle)
    duration_s = report.workload.duration_s
    results = report.results
    if not results:
        return Headline(
            meets_slo=False,
            text="No policy ran.",
            policy=None,
            cost_usd=None,
            cost_usd_per_month=None,
            cost_vs_oracle=None,
            slo_attainment=None,
            oracle_feasible=facts.feasible,
        )
    meeting = [r for r in results if r.meets_slo]
    if meeting:
        best = min(meeting, key=lambda r: r.cost_usd)
        monthly = per_month(best.cost_usd, duration_s)
        if best.cost_vs_oracle is not None:
            ratio = f"{fmt_ratio(best.cost_vs_oracle)} the oracle"
        elif not facts.feasible:
            ratio = "no ratio: the oracle found no schedule within bounds that meets the SLO"
        else:
            ratio = "no ratio: the oracle costs nothing"
        text = (
            f"Cheapest policy that meets the SLO: {best.policy}, {fmt_usd(monthly)} per month "
            f"at this traffic ({ratio}); {best.slo_attainment:.1%} against the SLO of "
            f"{_slo_text(report)}."
        )
        return Headline(
            meets_slo=True,
            text=text,
            policy=best.policy,
            cost_usd=best.cost_usd,
            cost_usd_per_month=monthly,
            cost_vs_oracle=best.cost_vs_oracle,
            slo_attainment=best.slo_attainment,
            oracle_feasible=facts.feasible,
        )
    closest = max(results, key=lambda r: (r.slo_attainment, -r.cost_usd))
    monthly = per_month(closest.cost_usd, duration_s)
    text = (
        f"No policy meets the SLO of {_slo_text(report)}; the closest, {closest.policy}, "
        f"reaches {closest.slo_attainment:.1%} at {fmt_usd(monthly)} per month at this traffic. "
        "What it would take:"
    )
    return Headline(
        meets_slo=False,
        text=text,
        policy=closest.policy,
        cost_usd=closest.cost_usd,
        cost_usd_per_month=monthly,
        cost_vs_oracle=closest.cost_vs_oracle,
        slo_attainment=closest.slo_attainment,
        oracle_feasible=facts.feasible,
        remedies=remedies_for(report, facts, closest),
    )


def remedies_for(
    report: WhatIfReport, facts: OracleFacts, closest: RunResult
) -> tuple[Remedy, ...]:
    """More max capacity, a shorter provisioning delay, a looser SLO: each from the run."""
    return (
        _capacity_remedy(report, facts),
        _delay_remedy(report, facts),
        _slo_remedy(report, facts, closest),
    )


def _capacity_remedy(report: WhatIfReport, facts: OracleFacts) -> Remedy:
    pool = report.scenario.pool
    if facts.feasible:
        peak = max(report.oracle.schedule, default=math.nan)
        peak_text = f", peaking at {peak:.0f} replicas" if math.isfinite(peak) else ""
        return Remedy(
            "max_capacity",
            False,
            f"More max capacity is not needed: the oracle meets the SLO within "
            f"max_replicas {pool.max_replicas}{peak_text}.",
        )
    at_max = (
        f"; at {pool.max_replicas}, even the pool's maximum from the first moment attains "
        f"{facts.best_attainment_at_max:.1%}"
        if facts.best_attainment_at_max is not None
        else ""
    )
    if facts.needed_max_replicas is None:
        return Remedy(
            "max_capacity",
            False,
            "More max capacity does not help: no number of replicas meets the SLO, single "
            f"requests alone take longer than the latency objective too often{at_max}.",
        )
    needed = facts.needed_max_replicas
    gpus = _gpus_text(report, needed)
    return Remedy(
        "max_capacity",
        True,
        f"More max capacity: raise pool.max_replicas from {pool.max_replicas} to "
        f"{needed}{gpus}{at_max}.",
        needed,
    )


def _gpus_text(report: WhatIfReport, replicas: int) -> str:
    pool = report.scenario.pool
    gpus = gpus_for(pool, replicas)
    if gpus is None or isinstance(pool, ServerlessEndpoint):
        return ""
    return f" ({gpus} GPUs on {pool.nodes_for(replicas)} {pool.instance_type} nodes)"


def _delay_remedy(report: WhatIfReport, facts: OracleFacts) -> Remedy:
    delay_s = report.scenario.pool.provisioning_mean_s()
    if not facts.feasible:
        if facts.best_attainment_at_max is not None:
            return Remedy(
                "provisioning_delay",
                False,
                f"A shorter provisioning delay ({delay_s:g} s now) does not reach it alone: "
                f"the pool's maximum from the first moment attains "
                f"{facts.best_attainment_at_max:.1%}.",
                delay_s,
            )
        return Remedy(
            "provisioning_delay",
            None,
            f"A shorter provisioning delay ({delay_s:g} s now) does not make up for too "
            "little max capacity.",
            delay_s,
        )
    oracle_monthly = per_month(report.oracle.cost_usd, report.workload.duration_s)
    return Remedy(
        "provisioning_delay",
        True,
        f"A shorter provisioning delay or earlier scaling: capacity ordered now serves "
        f"{delay_s:g} s later; the oracle, ordering it one delay ahead, meets the SLO at "
        f"{fmt_usd(oracle_monthly)} per month, so a policy that scales ahead (predictive, "
        "scheduled) or a shorter delay (warm pool, cached image) can too.",
        delay_s,
    )


def _slo_remedy(report: WhatIfReport, facts: OracleFacts, closest: RunResult) -> Remedy:
    reached = closest.slo_attainment
    if facts.best_attainment_at_max is not None:
        reached = max(reached, facts.best_attainment_at_max)
    # Rounded down to 0.1 %: the proposed target is one the run did reach.
    proposal = math.floor(reached * 1000.0) / 1000.0
    text = (
        f"A looser SLO: slo.target_attainment {proposal:.1%} is the best attainment "
        f"reached ({closest.policy}: {closest.slo_attainment:.2%})"
    )
    latency = _latency_that_would_meet(report, closest)
    if latency is not None:
        text += f", or slo.latency_s {latency:.3g} s ({closest.policy}'s own percentile)"
    return Remedy("looser_slo", True, text + ".", proposal)


def _latency_that_would_meet(report: WhatIfReport, result: RunResult) -> float | None:
    """The latency objective `result` met at the SLO's target, when the run tells it.

    Only where the target equals a reported percentile and nothing was dropped: the
    percentiles are over served requests, and a dropped one misses any objective.
    """
    target = report.scenario.slo.target_attainment
    field = next((f for t, f in _PERCENTILE_OF_TARGET.items() if math.isclose(t, target)), None)
    if field is None or result.served == 0 or result.dropped > 0:
        return None
    value = float(getattr(result, field))
    return value if math.isfinite(value) else None
