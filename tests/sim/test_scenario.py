"""Scenario files are validated at the boundary with messages that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario import load_scenario

VALID = """
name: test
workload: {format: rate-csv, path: rates.csv, bin_s: 60}
pool: {kind: gpu-node-pool, instance_type: g5.xlarge, min_replicas: 1, max_replicas: 8}
slo: {latency_s: 10.0, target_attainment: 0.95}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_valid_scenario_resolves_paths_relative_to_its_file(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.pool.kind == "gpu-node-pool"
    assert scenario.resolve_path("rates.csv") == tmp_path.resolve() / "rates.csv"
    assert scenario.resolve_path("package:x.csv").name == "x.csv"


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (("max_replicas: 8", "max_replicas: 8, min_replicas: 9"), None),
        (("min_replicas: 1, max_replicas: 8", "min_replicas: 9, max_replicas: 8"), "min_replicas"),
        (("g5.xlarge", "g5.mega"), "unknown instance type"),
        (("latency_s: 10.0", "latency_s: -1"), "slo.latency_s"),
        (("name: test\n", ""), "name: Field required"),
        (("format: rate-csv, path: rates.csv", "format: parquet, path: rates.csv"), "format"),
        (("kind: gpu-node-pool", "kind: tpu-pod"), "pool"),
    ],
    ids=[
        "repeated-key-min-above-max",
        "min-above-max",
        "unknown-instance",
        "negative-slo",
        "missing-name",
        "unknown-format",
        "unknown-pool-kind",
    ],
)
def test_invalid_scenarios_name_the_field(
    tmp_path: Path, edit: tuple[str, str], fragment: str | None
) -> None:
    text = VALID.replace(*edit)
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path) in message
    if fragment:
        assert fragment in message


def test_missing_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(write(tmp_path, "name: [unclosed\n"))


@pytest.mark.parametrize(
    ("pool", "spillover", "fragment"),
    [
        ("{kind: serverless}", "{kind: serverless, name: spill}", "needs an instance pool"),
        ("{kind: gpu-node-pool, name: gpu}", "{kind: serverless, name: gpu}", "both named 'gpu'"),
    ],
    ids=["serverless-primary", "same-name"],
)
def test_impossible_spillover_is_rejected_for_every_engine(
    tmp_path: Path, pool: str, spillover: str, fragment: str
) -> None:
    text = VALID.replace(
        "pool: {kind: gpu-node-pool, instance_type: g5.xlarge, min_replicas: 1, max_replicas: 8}",
        f"pool: {pool}\nspillover: {spillover}",
    )
    with pytest.raises(ScenarioError, match=fragment):
        load_scenario(write(tmp_path, text))
