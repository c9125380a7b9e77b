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
