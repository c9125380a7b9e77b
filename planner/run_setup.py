"""Everything a command settles before its first expensive step.

`prepare_run` resolves the scenario with the command-line overrides, checks every
named policy against it (`planner.inputs.check_policies`), and, when the user
brought a trace, loads it once to size the pool from its peak (a trace without a
scenario, `planner.pool_sizing`) and to warn about a span or rate that looks wrong
(timestamps in the wrong unit, counts read as rates). It fails in milliseconds to
seconds, never after a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planner.inputs import build_scenario_workload, check_policies
from planner.pool_sizing import PoolSizing, size_pool
from planner.scenario_input import (
    ClusterOverrides,
    WorkloadOverrides,
    resolve_scenario,
    trace_only,
)
from sim.capacity.pools import ServerlessEndpoint
from sim.scenario import Scenario, scenario_from_dict
from sim.workload import mean_rps, observed_s
from sim.workload.model import RequestTrace, Workload

DAY_S = 86400.0
#: Spans and rates past these are warned about (the run still goes ahead): a year
#: is longer than any public serving trace here, 10^5 req/s is 50x ServeGen
#: m-mid's mean, and a request trace under one request per 100 s over days is what
#: millisecond timestamps read as seconds look like.
LONG_SPAN_S = 400 * DAY_S
HIGH_RATE_RPS = 1e5
LOW_REQUEST_RATE_RPS = 0.01


@dataclass(frozen=True)
class RunSetup:
    """The scenario to run, how its pool was sized (if it was) and warnings to print."""

    scenario: Scenario
    sizing: PoolSizing | None = None
    warnings: tuple[str, ...] = field(default=())


def trace_warnings(workload: Workload, where: str) -> list[str]:
    """Plausibility warnings for a loaded trace (see the thresholds above)."""
    warnings = []
    span_s = workload.duration_s
    seen_s = observed_s(workload)
    rate = mean_rps(workload) if seen_s > 0 else 0.0
    if span_s > LONG_SPAN_S:
        warnings.append(
            f"{where} spans {span_s / DAY_S:,.0f} days; if its timestamps are not seconds, "
            "pass --time-unit ms or us"
        )
    if rate > HIGH_RATE_RPS:
        warnings.append(
            f"{where} averages {rate:,.0f} req/s; if its values are counts per bin rather "
            "than rates, use --trace-format nab (or rescale with --scale-mean-rps)"
        )
    if isinstance(workload, RequestTrace) and span_s > DAY_S and rate < LOW_REQUEST_RATE_RPS:
        warnings.append(
            f"{where}: {workload.n_requests:,} requests over {span_s / DAY_S:,.1f} days "
            f"({rate:.4f} req/s); if its timestamps are milliseconds, pass --time-unit ms"
        )
    return warnings


def prepare_run(
    path: Path | None,
    overrides: WorkloadOverrides | None = None,
    *,
    policies: list[str] | None = None,
    seed: int | None = None,
    cluster: ClusterOverrides | None = None,
) -> RunSetup:
    """Resolve, check and (for a trace without a scenario) size the scenario to run.

    Raises:
        UserInputError: Anything `resolve_scenario`, `check_policies` or loading the
            trace refuses.
    """
    overrides = overrides or WorkloadOverrides()
    cluster = cluster or ClusterOverrides()
    scenario = resolve_scenario(path, overrides, policies=policies, seed=seed, cluster=cluster)
    check_policies(scenario)
    if overrides.trace is None:
        return RunSetup(scenario)
    workload = build_scenario_workload(scenario)
    warnings = tuple(trace_warnings(workload, overrides.trace.name))
    if not trace_only(path, overrides) or isinstance(scenario.pool, ServerlessEndpoint):
        return RunSetup(scenario, warnings=warnings)
    sizing = size_pool(
        scenario,
        workload,
        min_replicas=cluster.min_replicas,
        max_replicas=cluster.max_replicas,
        initial_replicas=cluster.initial_replicas,
    )
    data = scenario.model_dump(mode="json")
    data["pool"] = {
        **data["pool"],
        "min_replicas": sizing.min_replicas,
        "max_replicas": sizing.max_replicas,
        "initial_replicas": sizing.initial_replicas,
    }
    base_dir = Path(data.pop("base_dir"))
    sized = scenario_from_dict(data, f"{scenario.name} (pool sized from the trace)", base_dir)
    return RunSetup(sized, sizing, warnings)
