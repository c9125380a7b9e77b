"""Cut the training, validation and held-back windows out of a scenario's trace.

A scenario that rescales its traffic (`scale_mean_rps`) is scaled by one factor,
computed once on its own window from the raw trace, and every window keeps that
factor (as `planner.tune.windowed` does, so the trend between training and
evaluation survives). The means come from the loaded trace, not from a built
workload: a ServeGen trace at its published ~1,170 req/s would be refused by the
memory check of `sim.workload.build_workload` before it was scaled down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.train.config import HOUR_S
from sim.errors import ScenarioError
from sim.scenario import Scenario, scenario_from_dict


def with_workload(scenario: Scenario, update: dict[str, Any], label: str) -> Scenario:
    data = scenario.model_dump(mode="json")
    data["workload"] = {**data["workload"], **update}
    base_dir = Path(data.pop("base_dir"))
    return scenario_from_dict(data, label, base_dir)


def cut(scenario: Scenario, windows: dict[str, tuple[float, float]]) -> dict[str, Scenario]:
    """Each (start_h, duration_h) window of `scenario`'s trace as a scenario, same factor."""
    spec = scenario.workload
    updates: dict[str, dict[str, Any]] = {
        name: {"start_h": start_h, "duration_h": duration_h}
        for name, (start_h, duration_h) in windows.items()
    }
    if spec.scale_mean_rps is not None and spec.path is not None:
        from sim.workload import load_trace, mean_rps, observed_s, slice_window

        raw = load_trace(scenario.resolve_path(spec.path), spec.format, spec.bin_s)

        def mean_of(start_h: float, duration_h: float | None) -> float:
            start_s = start_h * HOUR_S
            end_s = raw.duration_s if duration_h is None else start_s + duration_h * HOUR_S
            if start_s < 0 or end_s > raw.duration_s + 1e-6 or end_s <= start_s:
                raise ScenarioError(
                    f"{scenario.name}: the window {start_s / HOUR_S:g}-{end_s / HOUR_S:g} h is "
                    f"not inside the trace, which spans 0-{raw.duration_s / HOUR_S:.2f} h; "
                    "pick --train-h / --eval-h inside it"
                )
            part = slice_window(raw, start_s, end_s)
            if observed_s(part) <= 0 or mean_rps(part) <= 0:
                raise ScenarioError(
                    f"{scenario.name}: the window starting at {start_h:g} h has no traffic; "
                    "pick windows with data"
                )
            return mean_rps(part)

        factor = spec.scale_mean_rps / mean_of(spec.start_h, spec.duration_h)
        for name, (start_h, duration_h) in windows.items():
            updates[name]["scale_mean_rps"] = mean_of(start_h, duration_h) * factor
    return {
        name: with_workload(scenario, update, f"{scenario.name} {name} window")
        for name, update in updates.items()
    }
