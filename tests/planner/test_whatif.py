"""What-if orchestration: history before the window, parallel runs equal serial ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.inputs import build_history, build_scenario_workload
from planner.scenario_input import WorkloadOverrides, resolve_scenario
from planner.whatif import json_safe, run_whatif
from sim.workload import mean_rps
from sim.workload.model import RateEnvelope


def test_history_is_the_trace_before_the_window_at_the_same_scale(tiny_scenario: Path) -> None:
    raw = resolve_scenario(tiny_scenario)
    assert build_history(raw) is None  # the window starts at the trace's beginning
    windowed = resolve_scenario(
        tiny_scenario, WorkloadOverrides(start_h=1.0, duration_h=0.5, scale_mean_rps=10.0)
    )
    history = build_history(windowed)
    assert history is not None
    assert history.duration_s == pytest.approx(3600.0)
    window = build_scenario_workload(windowed)
    assert mean_rps(window) == pytest.approx(10.0)
    # Same factor: the ratio of history to window means is that of the raw trace.
    unscaled = resolve_scenario(tiny_scenario, WorkloadOverrides(start_h=1.0, duration_h=0.5))
    raw_history = build_history(unscaled)
    assert raw_history is not None
    raw_ratio = mean_rps(raw_history) / mean_rps(build_scenario_workload(unscaled))
    assert mean_rps(history) / mean_rps(window) == pytest.approx(raw_ratio, rel=1e-6)


def test_parallel_runs_equal_serial_runs(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario, policies=["hpa", "threshold", "step"], seed=4)
    serial = run_whatif(scenario, workers=1)
    parallel = run_whatif(scenario, workers=2)
    assert serial.to_json() == parallel.to_json()
    for a, b in zip(serial.results, parallel.results, strict=True):
        np.testing.assert_array_equal(a.series.ready, b.series.ready)
    assert set(serial.timings_s) == {"workload", "policy:hpa", "policy:threshold",
                                     "policy:step", "oracle"}  # fmt: skip


def test_json_safe_turns_numpy_and_nan_into_plain_json() -> None:
    value = {"a": np.float64(1.5), "b": np.int64(3), "c": float("nan"), "d": [np.bool_(True)]}
    assert json_safe(value) == {"a": 1.5, "b": 3, "c": None, "d": [True]}
    assert type(json_safe(np.int64(3))) is int


@pytest.mark.parametrize(
    ("days", "cpus", "load", "runnable", "expected"),
    [
        (1.0, 8, 0.0, 0, 1),  # short: workers cost more than they save
        (14.0, 2, 0.1, 0, 2),  # long, idle cores: use them
        (14.0, 2, 1.3, 1, 1),  # one core busy already
        (14.0, 2, 5.0, 6, 1),  # loaded: never fewer than one
        (14.0, 16, 0.0, 0, 7),  # no more workers than runs
        (14.0, 2, 0.6, 0, 2),  # the average still counts a run that has ended
        (14.0, 2, 1.3, None, 1),  # no count of runnable processes: the average
        (14.0, 4, 0.2, 3, 4),  # a short burst now, idle over the minute
    ],
    ids=[
        "short", "idle", "half-busy", "loaded", "capped-by-runs", "lagging-average",
        "no-runnable-count", "burst-now",
    ],
)  # fmt: skip
def test_default_workers_use_idle_cores_on_long_runs(
    monkeypatch: pytest.MonkeyPatch,
    days: float,
    cpus: int,
    load: float,
    runnable: int | None,
    expected: int,
) -> None:
    from planner import whatif

    monkeypatch.setattr(whatif.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(whatif.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(whatif, "runnable_others", lambda: runnable)
    workload = RateEnvelope(
        rate_rps=np.ones(int(days * 24)), bin_s=3600.0, missing=np.zeros(int(days * 24), bool)
    )
    assert whatif.default_workers(workload, runs=7) == expected


def test_runnable_others_reads_this_machine() -> None:
    """On Linux the count is read from /proc/loadavg: never negative; elsewhere None."""
    from planner import whatif

    others = whatif.runnable_others()
    if Path("/proc/loadavg").exists():
        assert others is not None and others >= 0
    else:
        assert others is None
