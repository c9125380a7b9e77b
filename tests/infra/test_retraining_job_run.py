"""The CronJob's own command line runs to a decision, in the pod's conditions.

The pod's world, with real components: its project directory holds only the
stack file of the ConfigMap; its metrics come from a real Prometheus (the Debian
binary, history backfilled with promtool, series named and labelled as the
cluster's scrape labels them: `vllm:request_success_total{namespace="inference"}`);
its store is the stack's bucket on a moto S3 server over HTTP. The argv is the
CronJob's, with the substitutions below (each one named, as
`tests/test_docs_examples.py` does): where the servers are, and a smaller run.
Every S3 request the run makes is checked against the job's IAM policy.
"""

from __future__ import annotations

import logging
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from tests.infra.conftest import RecordingMocks, RunStack
from tests.infra.iam_calls import IAM_ACTION, IAM_PREFIX, Call, allows, listed
from tests.planner.apply.conftest import aws_env, moto_server  # noqa: F401 (fixtures)
from tests.planner.metrics.conftest import _binary, _free_port, _wait_ready

NAMESPACE = "inference"  # the stacks' service namespace
HISTORY_DAYS = 2.0
#: The CronJob's flag -> the value run here (the servers' addresses; a smaller run).
SUBSTITUTED = {
    "--days": f"{HISTORY_DAYS:g}",
    "--trials": "2",
    "--rl-budget-min": "0",
    "--workers": "1",
}
#: Flags added: one seed (a smaller contest).
ADDED = ["--seeds", "1"]


def rate_rps(when_s: int) -> float:
    """A daily cycle: 0.2 req/s at night to 0.8 req/s in the afternoon."""
    hour = (when_s // 3600) % 24
    return 0.2 + 0.6 * max(0.0, 1.0 - abs(hour - 15) / 9.0)


def write_openmetrics(path: Path, first_s: int, end_s: int) -> None:
    """vLLM's finished-requests counter for one pod, one sample a minute."""
    lines = ["# TYPE vllm:request_success counter"]
    labels = f'namespace="{NAMESPACE}",pod="llm-0",job="kubernetes-pods",finished_reason="stop"'
    total = 0.0
    for t in range(first_s, end_s, 60):
        total += 60.0 * rate_rps(t)
        lines.append(f"vllm:request_success_total{{{labels}}} {total!r} {t}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus holding the last two days (and a few hours more) of demand."""
    server, promtool = _binary("prometheus"), _binary("promtool")
    root = tmp_path_factory.mktemp("prometheus")
    # Up to a few minutes ago: the job reads the newest bins (the head is empty, no scrapes).
    end_s = int(datetime.now(UTC).timestamp()) // 60 * 60 - 300
    first_s = end_s - int((HISTORY_DAYS + 0.25) * 86400)
    write_openmetrics(root / "history.om", first_s, end_s)
    subprocess.run(
        [
            *(promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet"),
            *(str(root / "history.om"), str(root / "data")),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            server,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, root / "prometheus.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def job_argv(
    mocks: RecordingMocks, endpoint: str, project_dir: Path, prometheus: str | None = None
) -> list[str]:
    """The CronJob's argv with the documented substitutions."""
    spec = mocks.one("kubernetes:batch/v1:CronJob").props["spec"]
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    argv: list[str] = list(container["args"])
    changes = {**SUBSTITUTED, "--project-dir": str(project_dir)}
    if prometheus is not None:
        changes["--prometheus-url"] = prometheus
    for flag, value in changes.items():
        argv[argv.index(flag) + 1] = value
    return [*argv, "--endpoint-url", endpoint, *ADDED]


def pod_project_dir(mocks: RecordingMocks, stack: str, root: Path) -> Path:
    """The pod's project directory: the ConfigMap's one file, nothing else of the repository."""
    config_map: Any = mocks.one("kubernetes:core/v1:ConfigMap", "retrain").props["data"]
    project = root / "etc-scaleplan"
    project.mkdir()
    name = f"Pulumi.{stack}.yaml"
    (project / name).write_text(config_map[name])
    return project


def stack_bucket(mocks: RecordingMocks, endpoint: str) -> str:
    """The stack's bundle bucket, created versioned on the moto server."""
    bucket = str(mocks.one("aws:s3/bucket:Bucket").props["bucket"])
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def words(output: str) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(output.split())


def objects(endpoint: str, bucket: str) -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (/[^ ]*) HTTP/')


def s3_calls(records: list[logging.LogRecord], bucket: str) -> set[Call]:
    """The IAM view of each S3 request the moto server logged (path style)."""
    calls = set()
    for record in records:
        # werkzeug colours some request lines (4xx, DELETE) with ANSI codes.
        found = _REQUEST.search(_ANSI.sub("", record.getMessage()))
        if found is None:
            continue
        method, target = found.groups()
        path, _, query = target.partition("?")
        name, _, key = urllib.parse.unquote(path).lstrip("/").partition("/")
        assert name == bucket, f"a call outside the stack's bucket: {method} {target}"
        if not key:
            assert method == "GET" and "list-type=2" in query, f"{method} {target}"
            prefix = urllib.parse.parse_qs(query).get("prefix", [""])[0]
            calls.add(Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", (("s3:prefix", prefix),)))
            continue
        action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject"}.get(
            method, "s3:DeleteObject" if method == "DELETE" else f"unknown {method}"
        )
        calls.add(Call(action, f"arn:aws:s3:::{bucket}/{key}"))
    return calls


@pytest.mark.parametrize(
    "families",
    [["--families", "hpa"], []],
    ids=["hpa-only", "the-cronjobs-families"],
)
def test_the_cronjobs_command_runs_to_a_decision_in_the_pods_conditions(
    families: list[str],
    committed_stacks: dict[str, RecordingMocks],
    prometheus_url: str,
    aws_env: str,  # noqa: F811 (fixture)
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from planner.cli import app

    dev = committed_stacks["dev"]
    bucket = stack_bucket(dev, aws_env)
    project = pod_project_dir(dev, "dev", tmp_path)

    # The CronJob passes no --families: whatever family wins must be one the stack's
    # pool can express, or the nightly run fails at promotion.
    argv = [*job_argv(dev, aws_env, project, prometheus_url), *families]
    caplog.set_level(logging.INFO, logger="werkzeug")
    caplog.clear()
    first = CliRunner().invoke(app, argv)
    calls = s3_calls(caplog.records, bucket)
    assert first.exit_code == 0, first.output
    keys = objects(aws_env, bucket)
    assert keys and all(k.startswith("policies/") for k in keys), keys
    # The winner is the champion, compiled for the stack, with the run's report;
    # the lock is released.
    assert "policies/champion/dev.json" in keys, first.output
    assert any(k.startswith("policies/emitted/") for k in keys), keys
    assert any(k.startswith("policies/runs/") and k.endswith("report.json") for k in keys)
    assert not any(k.startswith("policies/locks/") for k in keys), keys
    said = words(first.output)
    assert "champion of dev: " in said and "champion of dev: None" not in said
    # Every S3 call it made is one the job's IAM role grants (infra.components.retraining).
    from infra.components.retraining import least_privilege_policy

    policy = least_privilege_policy(f"arn:aws:s3:::{bucket}", "arn:aws:kms:key")
    assert Call("s3:DeleteObject", f"arn:aws:s3:::{bucket}/policies/locks/dev.lock") in calls
    denied = sorted(str(c) for c in calls if not allows(policy, c))
    assert denied == []
    assert not allows(
        policy, Call("s3:DeleteObject", f"arn:aws:s3:::{bucket}/policies/champion/dev.json")
    )

    # Scheduled again: the recorded decision when the clock has not moved the window
    # past a bin, else a new contest; either way a champion and the lock released.
    again = CliRunner().invoke(app, argv)
    assert again.exit_code == 0, again.output
    assert re.search(r"champion (of dev: )?[a-z0-9-]+@\d+", words(again.output)), again.output
    assert not any(k.startswith("policies/locks/") for k in objects(aws_env, bucket))


def put_asg_history(endpoint: str, group: str, days: float) -> None:
    """What the ASG publishes (scaleplan RequestCount) and Auto Scaling does (in service)."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=endpoint)
    end_s = int(datetime.now(UTC).timestamp()) // 60 * 60
    dims = [{"Name": "AutoScalingGroupName", "Value": group}]
    instants = range(end_s - int((days + 0.1) * 86400), end_s, 60)
    for namespace, name, value in (
        ("scaleplan", "RequestCount", lambda t: 60.0 * rate_rps(t)),
        ("AWS/AutoScaling", "GroupInServiceInstances", lambda t: 2.0),
    ):
        data: list[Any] = [
            {
                "MetricName": name,
                "Dimensions": dims,
                "Timestamp": datetime.fromtimestamp(t, UTC),
                "Value": value(t),
            }
            for t in instants
        ]
        for i in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + 1000])


def test_a_cloudwatch_job_runs_to_a_decision_with_only_the_calls_its_role_grants(
    run_stack: RunStack,
    aws_env: str,  # noqa: F811 (fixture)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Staging with `source: cloudwatch`: the ASG's own demand, its pool planned."""
    import botocore.client

    from infra.components.retraining import least_privilege_policy
    from infra.stack_file import read_stack_file
    from planner.cli import app

    raw = read_stack_file(Path(__file__).resolve().parents[2] / "Pulumi.staging.yaml")
    retraining = {**raw["scaleplan:retraining"], "source": "cloudwatch"}
    staging = run_stack("staging", {"scaleplan:retraining": retraining})
    bucket = stack_bucket(staging, aws_env)
    project = pod_project_dir(staging, "staging", tmp_path)
    group = str(staging.one("aws:autoscaling/group:Group").props["name"])
    put_asg_history(aws_env, group, HISTORY_DAYS)

    operations: set[str] = set()
    make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(self: Any, operation: str, params: Any) -> Any:
        prefix = IAM_PREFIX[self.meta.service_model.service_id]
        action = f"{prefix}:{operation}"
        operations.add(IAM_ACTION.get(action, action))
        return make_api_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    # aws-target-tracking: a kind the ASG target expresses (see the family test above).
    argv = [*job_argv(staging, aws_env, project), "--families", "aws-target-tracking"]
    assert argv[argv.index("--asg-name") + 1] == group
    result = CliRunner().invoke(app, argv)
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert "champion of staging: " in words(result.output)
    assert "policies/champion/staging.json" in objects(aws_env, bucket)
    policy = least_privilege_policy(f"arn:aws:s3:::{bucket}", "arn:aws:kms:key")
    granted = {
        action for statement in policy["Statement"] for action in listed(statement["Action"])
    }
    assert "cloudwatch:GetMetricData" in operations
    assert operations <= granted, sorted(operations - granted)
