"""The scenario a command runs: a file or the bundled default, plus CLI overrides.

The CLI's workload flags (`--trace`, `--trace-format`, `--bin-s`, `--start-h`,
`--duration-h`, `--scale-mean-rps`) replace the matching fields of the scenario's
`workload:` block. The result is re-validated as a whole, so an override that
makes the scenario invalid fails with the same clear message as a bad file.
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

    def is_empty(self) -> bool:
        return all(getattr(self, item.name) is None for item in fields(self))


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
    for name in ("bin_s", "start_h", "duration_h", "scale_mean_rps"):
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
) -> Scenario:
    """Load a scenario (default: the bundled one) and apply command-line overrides.

    Args:
        path: Scenario YAML, or None for `sim/scenarios/default.yaml`.
        overrides: Workload flags from the command line.
        policies: Policy names replacing the scenario's `policies:` list.
        seed: Seed replacing the scenario's `seed:`.

    Raises:
        ScenarioError: The file is missing or invalid, or an override makes it invalid.
        TraceFormatError: `--trace` and `--trace-format` are inconsistent.
    """
    scenario = load_default_scenario() if path is None else load_scenario(path)
    overrides = overrides or WorkloadOverrides()
    if overrides.is_empty() and policies is None and seed is None:
        return scenario
    data = scenario.model_dump(mode="json")
    data["workload"] = {**data["workload"], **_workload_update(overrides)}
    if policies is not None:
        if not policies:
            raise ScenarioError("--policies is empty; name at least one policy")
        data["policies"] = policies
    if seed is not None:
        data["seed"] = seed
    base_dir = Path(data.pop("base_dir"))
    source = "scenario with command-line overrides" if path is None else f"{path} (with overrides)"
    return scenario_from_dict(data, source, base_dir)


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
