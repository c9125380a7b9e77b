"""The retraining role grants exactly what `planner retrain` calls: each call allowed, nothing more.

A retraining cycle of the CronJob's own argv, plus `--emit`, runs against a moto
server over HTTP (`--source cloudwatch` on staging's ASG history, the store in the
stack's bucket), then the next scheduled run on the same history. Every AWS call
is recorded through botocore's event hooks (`before-parameter-build.*.*` on the
sessions `planner.aws.session.AwsConnection` creates) as an IAM action, the
resource it names and the condition keys it sets.
Each call must be allowed by `least_privilege_policy` (resource patterns and the
`s3:prefix` condition evaluated), and every action the policy grants must be one a
call needed; the KMS actions are what S3 asks KMS on the caller's behalf for the
bucket's SSE-KMS key (checked against the bucket's encryption configuration).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.infra.conftest import ROOT, RecordingMocks, RunStack
from tests.infra.iam_calls import SSE_KMS_ACTIONS, Call, allows, as_call, listed
from tests.infra.test_retraining_job_run import (
    HISTORY_DAYS,
    job_argv,
    objects,
    pod_project_dir,
    put_asg_history,
    stack_bucket,
    words,
)
from tests.planner.apply.conftest import aws_env, moto_server  # noqa: F401 (fixtures)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every call made through `AwsConnection` sessions while the test runs."""
    from planner.aws.session import AwsConnection

    calls: list[Call] = []
    create = AwsConnection.session

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(as_call(model.service_model.service_id, model.name, params))

    def session(self: AwsConnection) -> Any:
        fresh = self._session is None
        value = create(self)
        if fresh:
            value.events.register("before-parameter-build.*.*", record)
        return value

    monkeypatch.setattr(AwsConnection, "session", session)
    return calls


def test_a_retraining_cycle_calls_exactly_what_its_role_grants(
    run_stack: RunStack,
    aws_env: str,  # noqa: F811 (fixture)
    tmp_path: Path,
    recorded: list[Call],
) -> None:
    from infra.components.retraining import least_privilege_policy
    from infra.stack_file import read_stack_file
    from planner.cli import app

    raw = read_stack_file(ROOT / "Pulumi.staging.yaml")
    retraining = {**raw["scaleplan:retraining"], "source": "cloudwatch"}
    staging: RecordingMocks = run_stack("staging", {"scaleplan:retraining": retraining})
    bucket = stack_bucket(staging, aws_env)
    project = pod_project_dir(staging, "staging", tmp_path)
    put_asg_history(aws_env, str(staging.one("aws:autoscaling/group:Group").props["name"]), 2.0)
    argv = [*job_argv(staging, aws_env, project), "--families", "aws-target-tracking"]
    assert HISTORY_DAYS == 2.0

    # The job's run with `--emit` (it also writes the stack file: no AWS call of its
    # own), then the next scheduled run on the same history (the recorded decision).
    stack_file = project / "Pulumi.staging.yaml"
    before = stack_file.read_text()
    first = CliRunner().invoke(app, [*argv, "--emit"])
    assert first.exit_code == 0, first.output
    assert "champion of staging: " in words(first.output)
    assert stack_file.read_text() != before  # the champion's scaling block, emitted
    again = CliRunner().invoke(app, argv)
    assert again.exit_code == 0, again.output
    assert "champion aws-target-tracking-tuned@" in words(again.output)
    assert "policies/champion/staging.json" in objects(aws_env, bucket)

    bucket_arn = f"arn:aws:s3:::{bucket}"
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/store"
    policy = least_privilege_policy(bucket_arn, key_arn)
    calls = set(recorded)
    # What the job calls: metrics, the store's list, get, put (conditional ones too)
    # and the lock's delete; every one inside the store's prefix.
    actions = {c.action for c in calls}
    assert actions == {
        "cloudwatch:GetMetricData",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    # Conditional puts (write-once files, the lock, the first champion pointer).
    assert "IfNoneMatch" in {c.precondition for c in calls if c.action == "s3:PutObject"}
    denied = sorted(str(c) for c in calls if not allows(policy, c))
    assert denied == []
    # Nothing broader: every granted action is one a call needed (KMS: S3's own calls
    # for the bucket's SSE-KMS key).
    granted = {a for s in policy["Statement"] for a in listed(s["Action"])}
    assert granted == actions | SSE_KMS_ACTIONS
    encryption = staging.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).props["rules"][0]["applyServerSideEncryptionByDefault"]
    assert encryption["sseAlgorithm"] == "aws:kms"
    # And no wider than the calls' resources: outside the store's prefix, nothing.
    for outside in (
        Call("s3:GetObject", f"{bucket_arn}/other/file"),
        Call("s3:PutObject", f"{bucket_arn}/other/file"),
        Call("s3:DeleteObject", f"{bucket_arn}/policies/champion/staging.json"),
        Call("s3:ListBucket", bucket_arn, (("s3:prefix", "other/"),)),
        Call("s3:GetObject", "arn:aws:s3:::another-bucket/policies/x"),
    ):
        assert not allows(policy, outside), outside


def test_the_built_role_carries_the_checked_document(
    committed_stacks: dict[str, RecordingMocks],
) -> None:
    """The RolePolicy each stack creates is `least_privilege_policy` of its bucket and key."""
    from infra.components.retraining import least_privilege_policy

    for stack, mocks in committed_stacks.items():
        document = json.loads(
            mocks.one("aws:iam/rolePolicy:RolePolicy", "least-privilege").props["policy"]
        )
        bucket_arn = mocks.one("aws:s3/bucket:Bucket").props["arn"]
        key_arn = mocks.one("aws:kms/key:Key", "bundle").props["arn"]
        assert document == least_privilege_policy(bucket_arn, key_arn), stack
