"""The scenario a command runs: a file or the bundled default, plus CLI overrides.

The CLI's workload flags (`--trace`, `--trace-format`, `--bin-s`, `--time-unit`,
`--start-h`, `--duration-h`, `--scale-mean-rps`) replace the matching fields of the
scenario's `workload:` block; its cluster flags (`--instance-type`, `--min-replicas`,
`--max-replicas`, `--slo-latency-s`, `--slo-target`, `--decision-interval-s`) those
of the pool, SLO and decision interval. The result is re-validated as a whole, so
an override that makes the scenario invalid fails with the same clear message as a
bad file.

A trace without a scenario (`--trace F --trace-format X` alone) is a run of its
own, not the bundled scenario with its traffic swapped: it runs at the trace's own
rate (the bundled `scale_mean_rps`, token override and modulation do not carry
over), is named after the trace file, and its pool is sized from the trace's peak
(`planner.pool_sizing`) unless the user gives the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args

from sim.errors import ScenarioError, TraceFormatError
from sim.scenario import (
    Scenario,
    load_default_scenario,
    load_scenario,
    scenario_from_dict,
)
from sim.workload.formats import TraceFormat

TRACE_FORMATS: tuple[str, ...] = get_args(TraceFormat)


@dataclass(frozen=True)
class WorkloadOverrides:
    """Workload fields set on the command line; None leaves the scenario's value."""

    trace: Path | None = None
    trace_format: str | None = None
    bin_s: float | None = None
    start_h: float | None = None
    duration_h: float | None = None
    scale_mean_rps: float | None = None
    time_unit: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, item.name) is None for item in fields(self))


@dataclass(frozen=True)
class ClusterOverrides:
    """Pool, SLO and decision-interval fields set on the command line; None keeps them."""

    instance_type: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    initial_replicas: int | None = None
    slo_latency_s: float | None = None
    slo_target: float | None = None
    decision_interval_s: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, item.name) is None for item in fields(self))

    def apply(self, data: dict[str, Any]) -> None:
        """Write the overrides into a scenario mapping (`model_dump(mode="json")`)."""
        pool = dict(data["pool"])
        if self.instance_type is not None:
            if "instance_type" not in pool:
                raise ScenarioError(
                    f"--instance-type applies to instance pools; this scenario's pool is "
                    f"{pool.get('kind')!r}"
                )
            pool["instance_type"] = self.instance_type
        for name in ("min_replicas", "max_replicas"):
            value = getattr(self, name)
            if value is not None:
                pool[name] = value
        if self.initial_replicas is not None:
            pool["initial_replicas"] = self.initial_replicas
        elif self.min_replicas is not None or self.max_replicas is not None:
            # New bounds carry the start along rather than failing on the old one.
            start = pool.get("initial_replicas")
            start = pool["min_replicas"] if start is None else start
            pool["initial_replicas"] = min(max(start, pool["min_replicas"]), pool["max_replicas"])
        data["pool"] = pool
        slo = dict(data["slo"])
        if self.slo_latency_s is not None:
            slo["latency_s"] = self.slo_latency_s
        if self.slo_target is not None:
            slo["target_attainment"] = self.slo_target
        data["slo"] = slo
        if self.decision_interval_s is not None:
            data["decision_interval_s"] = self.decision_interval_s


def _workload_update(overrides: WorkloadOverrides) -> dict[str, Any]:
    update: dict[str, Any] = {}
    if overrides.trace is not None:
        if overrides.trace_format is None:
            raise TraceFormatError(
                f"--trace {overrides.trace} needs --trace-format "
                f"(one of: {', '.join(TRACE_FORMATS)})"
            )
        if not overrides.trace.exists():
            raise TraceFormatError(
                f"trace {overrides.trace} does not exist; pass an existing file or directory"
            )
        update["path"] = str(overrides.trace.resolve())
        update["synthetic"] = None
    if overrides.trace_format is not None:
        if overrides.trace is None:
            raise TraceFormatError("--trace-format applies only together with --trace PATH")
        if overrides.trace_format not in TRACE_FORMATS:
            raise TraceFormatError(
                f"unknown --trace-format {overrides.trace_format!r}; "
                f"use one of: {', '.join(TRACE_FORMATS)}"
            )
        update["format"] = overrides.trace_format
    for name in ("bin_s", "start_h", "duration_h", "scale_mean_rps", "time_unit"):
        value = getattr(overrides, name)
        if value is not None:
            update[name] = value
    return update


def resolve_scenario(
    path: Path | None,
    overrides: WorkloadOverrides | None = None,
    *,
    policies: list[str] | None = None,
    seed: int | None = None,
    cluster: ClusterOverrides | None = None,
) -> Scenario:
    """Load a scenario (default: the bundled one) and apply command-line overrides.

    Without `path` but with a trace, the bundled scenario's workload block is
    replaced whole (see the module docstring) and the scenario is named after the
    trace; its pool is left for `planner.pool_sizing` to size.

    Args:
        path: Scenario YAML, or None for `sim/scenarios/default.yaml`.
        overrides: Workload flags from the command line.
        policies: Policy names replacing the scenario's `policies:` list.
        seed: Seed replacing the scenario's `seed:`.
        cluster: Pool, SLO and decision-interval flags.

    Raises:
        ScenarioError: The file is missing or invalid, or an override makes it invalid.
        TraceFormatError: `--trace` and `--trace-format` are inconsistent.
    """
    scenario = load_default_scenario() if path is None else load_scenario(path)
    overrides = overrides or WorkloadOverrides()
    cluster = cluster or ClusterOverrides()
    if overrides.is_empty() and cluster.is_empty() and policies is None and seed is None:
        return scenario
    data = scenario.model_dump(mode="json")
    if trace_only(path, overrides):
        assert overrides.trace is not None
        data["workload"] = {"format": "synthetic", **_workload_update(overrides)}
        data["name"] = trace_name(overrides.trace)
        data["description"] = (
            f"{overrides.trace.name} ({overrides.trace_format}) on the bundled cluster "
            f"({data['pool'].get('instance_type', data['pool']['kind'])})"
        )
    else:
        data["workload"] = {**data["workload"], **_workload_update(overrides)}
    cluster.apply(data)
    if policies is not None:
        if not policies:
            raise ScenarioError("--policies is empty; name at least one policy")
        data["policies"] = policies
    if seed is not None:
        data["seed"] = seed
    base_dir = Path(data.pop("base_dir"))
    source = "scenario with command-line overrides" if path is None else f"{path} (with overrides)"
    return scenario_from_dict(data, source, base_dir)


def trace_only(path: Path | None, overrides: WorkloadOverrides) -> bool:
    """True for `--trace` without `--scenario`: a run named after and sized by the trace."""
    return path is None and overrides.trace is not None


def trace_name(trace: Path) -> str:
    """A run's name from its trace: the file name without extension, or the folder name."""
    name = trace.resolve().name
    for suffix in (".csv.gz", ".csv", ".tsv", ".txt"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_window_h(text: str, option: str) -> tuple[float, float]:
    """Parse `A:B` (hours from the trace start) into (start_h, duration_h).

    Raises:
        ScenarioError: Not two numbers, or B <= A, or A < 0.
    """
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start_h, end_h = float(parts[0]), float(parts[1])
    except ValueError:
        raise ScenarioError(f"{option} {text!r}: expected START:END in hours, e.g. 0:24") from None
    if start_h < 0 or end_h <= start_h:
        raise ScenarioError(f"{option} {text!r}: need 0 <= START < END (hours)")
    return start_h, end_h - start_h
