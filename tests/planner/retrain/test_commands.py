"""`planner recommend` and `planner retrain` through the CLI: output, bundles, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.cli import app
from tests.planner.test_report_browser import browser  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[3]
TRACE = ROOT / "sim" / "scenarios" / "fixtures" / "azure_conv.csv"
SCENARIO = ROOT / "sim" / "scenarios" / "default.yaml"
runner = CliRunner()
QUICK = ["--trials", "3", "--seeds", "2", "--families", "threshold,hpa", "--workers", "1"]


def test_recommend_prints_the_winner_bundle_last_and_simulate_runs_it(tmp_path: Path) -> None:
    out = tmp_path / "bundles"
    result = runner.invoke(
        app, ["recommend", "--scenario", str(SCENARIO), "--out", str(out), *QUICK]
    )
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("recommended: ")
    bundle = Path(last.split()[-1])
    assert bundle.parent.parent == out and (bundle / "bundle.json").is_file()
    assert "meets the SLO" in last and "x the oracle" in last
    simulated = runner.invoke(
        app, ["simulate", "--scenario", str(SCENARIO), "--policies", f"bundle:{bundle}"]
    )
    assert simulated.exit_code == 0, simulated.output
    page = out / "reports" / f"{bundle.parent.name}-{bundle.name}" / "report.html"
    report = json.loads(page.with_name("report.json").read_text())
    assert next(c["label"] for c in report["candidates"]) in last
    assert len(report["oracle"]) == 2 and report["decision"]["champion_after"] == str(bundle)


def test_the_retrain_report_reads_in_a_real_browser(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "bundles"
    result = runner.invoke(
        app, ["recommend", "--scenario", str(SCENARIO), "--out", str(out), *QUICK]
    )
    assert result.exit_code == 0, result.output
    (page,) = out.glob("reports/*/report.html")
    browser.get(page.resolve().as_uri())
    assert browser.find_element("tag name", "h1").text == "Recommendation for default"
    rows = browser.find_elements("css selector", "#candidates tr")
    assert len(rows) == 1 + 2  # header, threshold-tuned, hpa-tuned
    assert "x oracle" in rows[0].text and ("meets" in rows[1].text or "misses" in rows[1].text)
    assert len(browser.find_elements("css selector", "#tuning tr")) == 1 + 2
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "--out", "OUT"], "give --trace F --trace-format X, or --scenario FILE"),
        (
            ["recommend", "--out", "OUT", "--scenario", str(SCENARIO), "--families", "magic"],
            "--families: unknown magic",
        ),
        (
            ["recommend", "--out", "OUT", "--scenario", str(SCENARIO), "--families", "spillover"],
            "no serverless pool",
        ),
        (
            ["recommend", "--out", "OUT", "--scenario", str(SCENARIO), "--train-h", "0:5"],
            "must lie inside the history",
        ),
        (
            ["retrain", "--source", "trace", "--store", "S", "--scenario", str(SCENARIO)],
            "--source trace needs --trace and --trace-format",
        ),
        (
            ["retrain", "--source", "prometheus", "--store", "S", "--scenario", str(SCENARIO)],
            "needs --prometheus-url",
        ),
        (
            ["retrain", "--source", "trace", "--store", "S", "--trace", str(TRACE),
             "--trace-format", "azure-llm"],
            "exactly one of --stack STACK",
        ),
        (
            ["retrain", "--source", "trace", "--store", "S", "--scenario", str(SCENARIO),
             "--trace", str(TRACE), "--trace-format", "azure-llm", "--emit"],
            "--emit and --apply need --stack",
        ),
        (
            ["retrain", "--source", "trace", "--store", "S", "--scenario", str(SCENARIO),
             "--trace", str(TRACE), "--trace-format", "azure-llm", "--holdout-share", "1.5"],
            "--holdout-share 1.5",
        ),
        (
            ["recommend", "--out", "OUT", "--trace", str(TRACE), "--trace-format", "azure-llm",
             "--validation-share", "1"],
            "--validation-share 1: give a share in [0, 1)",
        ),
        (
            ["retrain", "--source", "trace", "--store", "S", "--stack", "nosuch",
             "--project-dir", str(ROOT), "--trace", str(TRACE), "--trace-format", "azure-llm"],
            "stack 'nosuch' has no config file",
        ),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")).replace("S", str(tmp_path / "store"), 1)
            if a in ("OUT", "S") else a for a in args]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "store").exists() and not (tmp_path / "out").exists()


def test_retrain_on_a_stack_promotes_and_emits_onto_the_planned_pool_only(tmp_path: Path) -> None:
    import yaml

    project = tmp_path / "project"
    project.mkdir()
    stack_text = (ROOT / "Pulumi.dev.yaml").read_text()
    (project / "Pulumi.dev.yaml").write_text(stack_text)
    # A day of light traffic the dev stack's two-replica node pool can serve.
    rows = ["timestamp,value"] + [
        f"{1_764_547_200 + 60 * i},{0.3 + 0.2 * (i // 60 % 4)}" for i in range(1440)
    ]
    (tmp_path / "day.csv").write_text("\n".join(rows) + "\n")
    args = [
        "retrain", "--source", "trace", "--trace", str(tmp_path / "day.csv"),
        "--trace-format", "rate-csv", "--days", "1", "--stack", "dev",
        "--project-dir", str(project), "--store", str(tmp_path / "store"), "--emit", *QUICK,
        "--out", str(tmp_path / "report"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "promote: no champion yet" in result.stdout
    assert f"wrote {project / 'Pulumi.dev.yaml'}" in " ".join(result.stdout.split())
    config = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())["config"]
    scaling = config["scaleplan:scaling"]
    assert config["scaleplan:asg"]["max_size"] >= 1  # the stack has an ASG ...
    assert scaling["eks"] is not None and scaling.get("asg") is None  # ... left untouched
    champion = result.stdout.strip().splitlines()[-1].split()[-1]
    source = scaling["source"]
    assert champion == f"{source['bundle_id']}@{source['version']}"
    stored = tmp_path / "store" / "bundles" / champion / "bundle.json"
    assert stored.is_file()
    # threshold has no construct on the node pool: it is left out, and the report says so.
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [t["family"] for t in report["tuning"]] == ["hpa"]
    assert any("cannot express them: threshold" in note for note in report["notes"])
