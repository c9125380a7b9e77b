"""Command-line overrides are applied to the scenario and re-validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.scenario_input import WorkloadOverrides, parse_window_h, resolve_scenario
from sim.errors import ScenarioError, TraceFormatError


def test_no_overrides_returns_the_file_as_is(tiny_scenario: Path) -> None:
    scenario = resolve_scenario(tiny_scenario)
    assert scenario.name == "tiny"
    assert scenario.workload.format == "rate-csv"
    assert scenario.policies == ["fixed"]


def test_overrides_replace_workload_fields_policies_and_seed(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("timestamp,value\n0,1\n60,2\n")
    overrides = WorkloadOverrides(
        trace=other,
        trace_format="rate-csv",
        bin_s=60,
        start_h=0.5,
        duration_h=1.0,
        scale_mean_rps=4.0,
    )
    scenario = resolve_scenario(tiny_scenario, overrides, policies=["a", "b"], seed=9)
    workload = scenario.workload
    assert Path(workload.path or "") == other.resolve()
    assert (workload.start_h, workload.duration_h, workload.scale_mean_rps) == (0.5, 1.0, 4.0)
    assert scenario.policies == ["a", "b"]
    assert scenario.seed == 9
    assert scenario.pool.max_replicas == 8  # the cluster is untouched


@pytest.mark.parametrize(
    ("overrides", "error", "fragment"),
    [
        (WorkloadOverrides(trace=Path("rates.csv")), TraceFormatError, "needs --trace-format"),
        (WorkloadOverrides(trace_format="nab"), TraceFormatError, "only together with --trace"),
        (
            WorkloadOverrides(trace=Path("/nonexistent/t.csv"), trace_format="nab"),
            TraceFormatError,
            "does not exist",
        ),
        (WorkloadOverrides(duration_h=-1.0), ScenarioError, "workload.duration_h"),
    ],
    ids=["trace-without-format", "format-without-trace", "missing-trace", "negative-duration"],
)
def test_inconsistent_overrides_are_user_errors(
    tiny_scenario: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: WorkloadOverrides,
    error: type[Exception],
    fragment: str,
) -> None:
    monkeypatch.chdir(tiny_scenario.parent)
    with pytest.raises(error, match=fragment):
        resolve_scenario(tiny_scenario, overrides)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:24", (0.0, 24.0)), ("1.5:2", (1.5, 0.5)), ("24:48", (24.0, 24.0))],
    ids=["day-one", "fractional", "day-two"],
)
def test_parse_window(text: str, expected: tuple[float, float]) -> None:
    assert parse_window_h(text, "--train-h") == expected


@pytest.mark.parametrize("text", ["24", "a:b", "5:5", "6:2", "-1:3", "1:2:3"])
def test_parse_window_rejects_bad_text(text: str) -> None:
    with pytest.raises(ScenarioError, match="--train-h"):
        parse_window_h(text, "--train-h")
