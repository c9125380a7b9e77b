"""Where the retraining job's history comes from, and the cluster it plans for.

History: the last N days of demand from CloudWatch, Prometheus or a trace file.
Metrics become a `rate-csv` trace in the run's work directory (one row per bin
with data; a bin without data is a missing bin, never zero load), so everything
downstream (windows, scenario inputs, bundles) reads it like any other trace.
What is missing is collected as sentences (`PulledHistory.problems`): the job then
keeps the champion and reports them, it never fits on a silent gap.

Cluster and SLO: `--stack` reads the stack file (the pool the stack scales, its
bounds and instance type, a serverless spillover pool when it has one) and the
SLO in `scaleplan:retraining.slo`; `--scenario FILE` (plus the pool and SLO flags)
gives them directly. Either way the result is a scenario file in the work directory
that `planner simulate --scenario` reproduces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from sim.errors import UserInputError

SourceKind = Literal["trace", "cloudwatch", "prometheus"]
SOURCES: tuple[str, ...] = ("trace", "cloudwatch", "prometheus")
DAY_S = 86400.0
#: A trace window is usable when it covers this share of the asked days and has
#: data in this share of its span.
MIN_SPAN_SHARE = 0.98
MIN_OBSERVED_SHARE = 0.95


@dataclass(frozen=True)
class HistorySource:
    """The `--source` flags."""

    kind: SourceKind
    days: float | None = None
    trace: Path | None = None
    trace_format: str | None = None
    bin_s: float | None = None
    time_unit: str | None = None
    asg_name: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    period_s: int | None = None
    prometheus_url: str | None = None
    demand_query: str | None = None
    capacity_query: str | None = None
    #: Namespace of the vLLM servers the default queries read (None: the stack's, or
    #: "inference").
    namespace: str | None = None
    step_s: float = 60.0

    def check(self) -> None:
        """Refuse missing or contradictory flags before anything is fetched."""
        if self.kind not in SOURCES:
            raise UserInputError(f"--source {self.kind!r}: use one of {', '.join(SOURCES)}")
        if self.days is not None and not self.days > 0:
            raise UserInputError(f"--days {self.days:g}: give a positive number of days")
        needs: dict[str, list[tuple[str, object]]] = {
            "trace": [("--trace", self.trace), ("--trace-format", self.trace_format)],
            "cloudwatch": [("--region", self.region)],
            "prometheus": [("--prometheus-url", self.prometheus_url)],
        }
        missing = [flag for flag, value in needs[self.kind] if value is None]
        if missing:
            raise UserInputError(f"--source {self.kind} needs {' and '.join(missing)}")
        if self.kind == "trace" and self.trace is not None and not self.trace.exists():
            raise UserInputError(f"--trace {self.trace}: no such file or directory")


@dataclass(frozen=True)
class PulledHistory:
    """History ready to plan on: a trace (path, format), its label and what is missing."""

    trace: Path
    trace_format: str
    bin_s: float | None
    time_unit: str | None
    start_h: float
    label: str
    problems: list[str]
    digest: str
    #: What the stack actually ran over the window (mean and peak ready replicas or
    #: instances, share of bins with a reading), when the source has it: the report
    #: puts it beside what the policies provision in simulation.
    capacity: dict[str, float] | None = None


def pull_history(
    source: HistorySource,
    workdir: Path,
    *,
    now: datetime | None = None,
    stack_settings: Any = None,
) -> PulledHistory:
    """The last `source.days` days of demand (the whole trace when days is None)."""
    now = now or datetime.now(UTC)
    if source.kind == "trace":
        return _trace_history(source)
    days = source.days if source.days is not None else 14.0
    start, end = now - timedelta(days=days), now
    if source.kind == "cloudwatch":
        history = _cloudwatch(source, start, end, now, stack_settings)
    else:
        history = _prometheus(source, start, end, stack_settings)
    from planner.metrics.history import history_problems

    path = workdir / "history.csv"
    history.write_rate_csv(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    problems = history_problems(history, days)
    return PulledHistory(
        path,
        "rate-csv",
        history.step_s,
        "s",
        0.0,
        history.source,
        problems,
        digest,
        capacity=_capacity_summary(history.capacity),
    )


def _capacity_summary(capacity: Any) -> dict[str, float] | None:
    """Mean and peak of the ready-capacity series and the share of bins that have one."""
    import numpy as np

    if capacity is None:
        return None
    values = np.asarray(capacity, dtype=float)
    present = values[np.isfinite(values)]
    if present.size == 0:
        return None
    return {
        "mean": float(present.mean()),
        "peak": float(present.max()),
        "present_share": present.size / values.size,
    }


def _cloudwatch(
    source: HistorySource, start: datetime, end: datetime, now: datetime, settings: Any
) -> Any:
    from planner.aws.discovery import find_asg
    from planner.aws.session import AwsConnection
    from planner.metrics.cloudwatch import fetch_cloudwatch

    assert source.region is not None
    conn = AwsConnection(region=source.region, endpoint_url=source.endpoint_url)
    group = source.asg_name
    if group is None:
        if settings is None:
            raise UserInputError("--source cloudwatch needs --asg-name, or --stack to find it")
        group = find_asg(conn, settings.stack)
        if group is None:
            raise UserInputError(
                f"no Auto Scaling group carries the tag scaleplan:stack={settings.stack}; "
                "pass --asg-name"
            )
    return fetch_cloudwatch(conn.client("cloudwatch"), group, start, end, source.period_s, now)


def _prometheus(source: HistorySource, start: datetime, end: datetime, settings: Any) -> Any:
    from planner.metrics import prometheus

    assert source.prometheus_url is not None
    namespace = source.namespace or (
        settings.service.namespace if settings is not None else "inference"
    )
    query = source.demand_query or prometheus.default_demand_query(namespace)
    # The default capacity query is informational (the report's observed capacity):
    # a cluster whose scrape jobs are named otherwise still retrains, capacity unknown.
    return prometheus.fetch_prometheus(
        source.prometheus_url,
        query,
        start,
        end,
        step_s=source.step_s,
        capacity_query=source.capacity_query or prometheus.default_capacity_query(namespace),
        capacity_optional=source.capacity_query is None,
    )


def _trace_history(source: HistorySource) -> PulledHistory:
    from sim.workload import load_trace, observed_s, slice_window

    assert source.trace is not None and source.trace_format is not None
    raw = load_trace(source.trace, source.trace_format, source.bin_s, source.time_unit)
    span_s = raw.duration_s
    want_s = span_s if source.days is None else source.days * DAY_S
    start_s = max(0.0, span_s - want_s)
    problems = []
    if span_s < MIN_SPAN_SHARE * want_s:
        problems.append(
            f"the trace covers {span_s / DAY_S:.2f} of the {want_s / DAY_S:g} days asked for "
            "(--days)"
        )
    seen_s = observed_s(slice_window(raw, start_s, span_s)) if span_s > start_s else 0.0
    window_s = span_s - start_s
    if window_s <= 0 or seen_s < MIN_OBSERVED_SHARE * window_s:
        missing_h = (window_s - seen_s) / 3600.0
        problems.append(
            f"{missing_h:.1f} h of the {window_s / 3600.0:.1f} h window have no data "
            f"(limit {1 - MIN_OBSERVED_SHARE:.0%})"
        )
    return PulledHistory(
        trace=source.trace.resolve(),
        trace_format=source.trace_format,
        bin_s=source.bin_s,
        time_unit=source.time_unit,
        start_h=start_s / 3600.0,
        label=f"trace:{source.trace}",
        problems=problems,
        digest=_file_digest(source.trace),
    )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(item.name.encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()


def stack_scenario(
    project_dir: Path, stack: str, target: str | None = None
) -> tuple[dict[str, Any], Any]:
    """A scenario mapping (workload left to the caller) from a stack file, and its settings.

    The pool is the stack's `asg` target when `target == "asg"`, else its GPU node
    pools (`eks`): their first instance type, replica bounds as the guardrails pack
    them. The SLO is `scaleplan:retraining.slo`, which the stack must set.
    """
    from planner.emit.target import read_stack_target, stack_file_path

    path = stack_file_path(project_dir, stack)
    stack_target = read_stack_target(path)
    settings = stack_target.settings
    slo = settings.retraining.slo  # required by the stack settings
    name = target or "eks"
    pool_target = stack_target.pool(name)  # type: ignore[arg-type]
    if pool_target is None or name == "serverless":
        have = ", ".join(p.name for p in stack_target.pools if p.name != "serverless")
        raise UserInputError(f"--target {name}: stack {stack} has no such pool; it has {have}")
    bounds = pool_target.bounds
    if name == "asg":
        assert settings.asg is not None
        pool: dict[str, Any] = {"kind": "ec2-asg", "instance_type": settings.asg.instance_types[0]}
        if settings.asg.warm_pool is not None:
            pool["warm_pool_size"] = settings.asg.warm_pool.min_size
    else:
        first = settings.gpu_node_pools[0]
        pool = {"kind": "gpu-node-pool", "instance_type": first.instance_types[0]}
    low = max(bounds.min, 1) if bounds.max >= 1 else 0
    pool.update(min_replicas=low, max_replicas=bounds.max, initial_replicas=low)
    data: dict[str, Any] = {
        "name": f"{stack}-{name}",
        "description": f"stack {stack}: its {name} pool and SLO ({path.name})",
        "pool": pool,
        "slo": {"latency_s": slo.latency_s, "target_attainment": slo.target_attainment},
        "policies": ["hpa"],
    }
    if settings.serverless is not None:
        # The stack's endpoint as the simulator's pool: its CPU model, memory and max
        # concurrency (refused when the simulator has no service model for its model).
        data["spillover"] = settings.serverless.sim_spillover()
    return data, settings


def write_scenario(data: dict[str, Any], workdir: Path) -> Path:
    """`data` as `workdir/scenario.yaml` (the file `planner simulate --scenario` takes)."""
    from planner.atomic import write_bytes_atomic

    path = workdir / "scenario.yaml"
    write_bytes_atomic(path, yaml.safe_dump(data, sort_keys=False).encode("utf-8"))
    return path
