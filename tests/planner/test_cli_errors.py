"""Bad input: a clear message, exit code 2, no traceback, no partial output files.

Internal errors: exit code 1 with a hint to rerun with --debug, which shows the
traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app

runner = CliRunner()


def _bad_yaml(d: Path) -> list[str]:
    (d / "bad.yaml").write_text("name: [unclosed\n")
    return ["--scenario", str(d / "bad.yaml")]


def _invalid_field(d: Path) -> list[str]:
    text = (d / "tiny.yaml").read_text().replace("latency_s: 40.0", "latency_s: -3")
    (d / "neg.yaml").write_text(text)
    return ["--scenario", str(d / "neg.yaml")]


def _format_mismatch(d: Path) -> list[str]:
    return ["--trace", str(d / "rates.csv"), "--trace-format", "azure-llm"]


def _malformed_trace(d: Path) -> list[str]:
    (d / "broken.csv").write_text("timestamp,value\n0,1\nnot-a-time,oops\n")
    return ["--trace", str(d / "broken.csv"), "--trace-format", "rate-csv", "--bin-s", "60"]


def _old_bundle(d: Path) -> list[str]:
    bundle = d / "bundle"
    bundle.mkdir()
    manifest = {"schema_version": 99, "name": "x", "version": 1, "spec": {"kind": "hpa"}}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return ["--policies", f"bundle:{bundle}"]


def _not_a_bundle(d: Path) -> list[str]:
    return ["--policies", f"bundle:{d / 'nowhere'}"]


def _millisecond_trace(d: Path) -> list[str]:
    # 20 requests a second for 40 days read as seconds: a 55-minute trace in ms.
    lines = [str(i * 50) for i in range(66_000)]
    (d / "ms.csv").write_text("timestamp\n" + "\n".join(lines) + "\n")
    return ["--trace", str(d / "ms.csv"), "--trace-format", "requests-csv"]


def _zero_trace(d: Path) -> list[str]:
    (d / "zeros.csv").write_text("".join(f"{i * 60},0\n" for i in range(60)))
    return ["--trace", str(d / "zeros.csv"), "--trace-format", "rate-csv"]


def _spillover_without_pool(d: Path) -> list[str]:
    return ["--scenario", str(d / "tiny.yaml"), "--policies", "hpa,spillover"]


CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("missing-scenario", lambda d: ["--scenario", str(d / "nope.yaml")], "does not exist"),
    ("malformed-yaml", _bad_yaml, "not valid YAML"),
    ("invalid-field", _invalid_field, "slo.latency_s"),
    ("missing-trace", lambda d: ["--trace", str(d / "x.csv"), "--trace-format", "nab"], "x.csv"),
    ("trace-without-format", lambda d: ["--trace", str(d / "rates.csv")], "--trace-format"),
    ("format-mismatch", _format_mismatch, "rates.csv"),
    ("malformed-trace", _malformed_trace, "broken.csv"),
    ("window-outside-trace", lambda d: ["--start-h", "100"], "outside"),
    ("unknown-policy", lambda d: ["--policies", "hpa,nonsense"], "unknown policy 'nonsense'"),
    ("oracle-as-policy", lambda d: ["--policies", "hpa,oracle"], "it is not a policy to run"),
    ("bundle-schema-version", _old_bundle, "schema_version 99"),
    ("bundle-missing", _not_a_bundle, "does not exist"),
    ("unknown-engine", lambda d: ["--engine", "warp"], "warp"),
    ("json-into-missing-dir", lambda d: ["--json", str(d / "no" / "x.json")], "does not exist"),
    ("json-into-unwritable-dir", lambda d: ["--json", "/sys/x.json"], "cannot write in /sys"),
    ("timestamps-in-ms", _millisecond_trace, "--time-unit ms"),
    ("bad-time-unit", lambda d: [*_millisecond_trace(d), "--time-unit", "min"], "--time-unit"),
    ("all-zero-trace", _zero_trace, "the trace has no requests"),
    ("negative-seed", lambda d: ["--seed", "-1"], "--seed"),
    ("rescale-beyond-memory", lambda d: ["--scale-mean-rps", "1e12"], "GiB of memory"),
    ("spillover-without-pool", _spillover_without_pool, "has none: add a 'spillover:'"),
    ("misspelt-policy", lambda d: ["--policies", "hpa,treshold"], "did you mean 'threshold'"),
    ("slo-target-above-1", lambda d: ["--slo-target", "95"], "--slo-target"),
    ("min-above-max", lambda d: ["--min-replicas", "9", "--max-replicas", "3"], "above"),
    ("unknown-instance", lambda d: ["--instance-type", "g9.huge"], "g9.huge"),
]


@pytest.mark.parametrize(
    ("make_args", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_without_traceback_or_files(
    tiny_scenario: Path, make_args: Callable[[Path], list[str]], fragment: str
) -> None:
    directory = tiny_scenario.parent
    out = directory / "out"
    out.mkdir()
    args = make_args(directory)
    outputs = ["--report", str(out / "r.html"), "--plot-dir", str(out / "plots")]
    if "--json" not in args:
        outputs += ["--json", str(out / "r.json")]
    result = runner.invoke(app, ["simulate", *args, *outputs])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_internal_error_exits_1_with_a_debug_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_engine(name: str) -> None:
        raise RuntimeError(f"engine {name} exploded")

    monkeypatch.setattr("planner.whatif.make_engine", broken_engine)
    result = runner.invoke(app, ["simulate"])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: engine fluid exploded" in result.output
    assert "--debug" in result.output
    assert "Traceback" not in result.output

    debug = runner.invoke(app, ["--debug", "simulate"])
    assert isinstance(debug.exception, RuntimeError)


def test_all_zero_trace_does_not_blame_scale_mean_rps(tiny_scenario: Path) -> None:
    args = _zero_trace(tiny_scenario.parent)
    for extra in ([], ["--scale-mean-rps", "5"]):
        result = runner.invoke(app, ["simulate", *args, *extra])
        assert result.exit_code == 2, result.output
        assert "scale_mean_rps" not in result.output


def test_a_misfit_policy_fails_before_any_run(
    tiny_scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started before the policies were checked")

    monkeypatch.setattr("planner.whatif.run_whatif", no_runs)
    monkeypatch.setattr("planner.runs.run_task", no_runs)
    result = runner.invoke(app, ["simulate", *_spillover_without_pool(tiny_scenario.parent)])
    assert result.exit_code == 2, result.output
    assert "policy 'spillover' cannot run on scenario 'tiny'" in result.output
