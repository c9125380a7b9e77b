"""`planner apply` from the command line: a bundle compiled and applied, and every refusal.

Each refusal is exit 2 with a message that says what to fix, and nothing changed:
the live group reads back the same and no audit line was written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from planner.cli import app
from policies.bundle import PolicyBundle, write_bundle
from policies.kinds import spec_from_dict
from tests.planner.apply.conftest import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    GROUP,
    LiveStack,
    client,
    create_resources,
    overtake_while_acting,
    put_demand,
    scaling_block,
    write_stack,
)

runner = CliRunner()


def make_bundle(
    root: Path, spec: dict[str, Any], name: str = "prod-fixed", version: int = 1
) -> Path:
    bundle = PolicyBundle(
        name=name,
        version=version,
        spec=spec_from_dict(spec),
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return write_bundle(bundle, root)


@pytest.fixture
def aws_stack(aws_env: str, tmp_path: Path) -> LiveStack:
    """prod without the serverless endpoint (moto has no provisioned-concurrency dimension)."""
    create_resources(aws_env)
    project = tmp_path / "project"
    project.mkdir()
    path = write_stack(project, scaling_block())
    doc = yaml.safe_load(path.read_text())
    doc["config"].pop("scaleplan:serverless")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return LiveStack(endpoint=aws_env, project_dir=project, audit=tmp_path / "audit.jsonl")


def group_state(endpoint: str) -> tuple[Any, ...]:
    asg = client(endpoint, "autoscaling")
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    policies = asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    return g["MinSize"], g["MaxSize"], g["DesiredCapacity"], len(policies)


def apply_args(stack: LiveStack, *extra: str) -> list[str]:
    return [
        "apply",
        "--stack",
        "prod",
        "--target",
        "aws",
        "--project-dir",
        str(stack.project_dir),
        "--endpoint-url",
        stack.endpoint,
        "--audit-log",
        str(stack.audit),
        *extra,
    ]


def test_bundle_is_compiled_shown_as_a_diff_then_applied_with_yes(
    aws_stack: LiveStack, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    dry = runner.invoke(app, apply_args(aws_stack, "--bundle", str(bundle)))
    assert dry.exit_code == 0, dry.output
    assert "~ asg.capacity scaleplan-prod-asg" in dry.output
    assert "dry run" in dry.output
    assert group_state(aws_stack.endpoint) == (1, 10, 3, 0)
    active = runner.invoke(
        app, apply_args(aws_stack, "--bundle", str(bundle), "--mode", "active", "--yes")
    )
    assert active.exit_code == 0, active.output
    assert group_state(aws_stack.endpoint) == (6, 6, 6, 0)  # fixed: bounds pinned
    again = runner.invoke(app, apply_args(aws_stack, "--bundle", str(bundle), "--yes"))
    assert again.exit_code == 0, again.output
    assert "no changes" in again.output


def refused(stack: LiveStack, args: list[str], message: str) -> None:
    before = group_state(stack.endpoint)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert group_state(stack.endpoint) == before
    assert not stack.audit.exists()


def test_unknown_bundle_schema_version(aws_stack: LiveStack, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["schema_version"] = 99
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    refused(
        aws_stack,
        apply_args(aws_stack, "--bundle", str(bundle), "--yes", "--mode", "active"),
        "bundle schema_version 99 is not supported",
    )


def test_unknown_scaling_schema_version(aws_stack: LiveStack) -> None:
    path = aws_stack.project_dir / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["scaleplan:scaling"]["schema_version"] = 2
    path.write_text(yaml.safe_dump(doc))
    refused(
        aws_stack,
        apply_args(aws_stack, "--config", str(path), "--yes", "--mode", "active"),
        "scaling schema_version 2 is not supported",
    )


def test_stack_without_a_config_file(aws_stack: LiveStack, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    args = apply_args(aws_stack, "--bundle", str(bundle), "--yes")
    args[args.index("prod")] = "staging"
    refused(aws_stack, args, "stack 'staging' has no config file")


def test_region_mismatch(aws_stack: LiveStack, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    refused(
        aws_stack,
        apply_args(aws_stack, "--bundle", str(bundle), "--yes", "--region", "eu-west-1"),
        "--region eu-west-1 does not match aws:region us-east-1",
    )


def test_missing_credentials(
    aws_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = apply_args(aws_stack, "--bundle", str(bundle), "--yes", "--mode", "active")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "no AWS credentials found" in result.output
    assert not aws_stack.audit.exists()


def test_wrong_credentials_are_refused_before_any_change(aws_stack: LiveStack) -> None:
    """moto accepts any key pair, so AWS's refusal of a bad key is played by botocore's
    Stubber on the STS client only; every other call goes to the moto server."""
    from planner.apply.inputs import scaling_from_config
    from planner.apply.service import ApplyRequest, run_apply
    from planner.aws.session import AwsConnection
    from sim.errors import UserInputError
    from tests.planner.apply.conftest import NOW, REGION

    conn = AwsConnection(region=REGION, endpoint_url=aws_stack.endpoint)
    sts = conn.client("sts")
    stub = Stubber(sts)
    stub.add_client_error(
        "get_caller_identity", "InvalidClientTokenId", "The security token is invalid.", 403
    )
    before = group_state(aws_stack.endpoint)
    request = ApplyRequest(
        stack="prod",
        project_dir=aws_stack.project_dir,
        scaling=scaling_from_config(aws_stack.project_dir / "Pulumi.prod.yaml"),
        audit_path=aws_stack.audit,
        now=NOW,
        yes=True,
        mode="active",
        endpoint_url=aws_stack.endpoint,
    )
    with stub, pytest.raises(UserInputError, match="AWS refused the credentials"):
        run_apply(request, conn)
    stub.assert_no_pending_responses()
    assert group_state(aws_stack.endpoint) == before
    assert not aws_stack.audit.exists()


def test_a_policy_the_stack_cannot_express_is_refused_with_the_nearest_kind(
    aws_stack: LiveStack, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "hpa", "target": 0.7}, name="prod-hpa")
    refused(
        aws_stack,
        apply_args(aws_stack, "--bundle", str(bundle), "--yes", "--mode", "active"),
        "aws-target-tracking",
    )


def test_via_pulumi_without_the_cli_says_how_to_install_and_writes_nothing(
    aws_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    path = aws_stack.project_dir / "Pulumi.prod.yaml"
    text = path.read_text()
    result = runner.invoke(
        app, apply_args(aws_stack, "--config", str(path), "--via", "pulumi", "--yes")
    )
    assert result.exit_code == 2, result.output
    assert "Pulumi CLI is not installed" in result.output
    assert "pulumi.com/docs/install" in result.output
    assert path.read_text() == text


def test_no_credentials_reach_output_audit_or_store(aws_stack: LiveStack, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 4})
    store = tmp_path / "store"
    result = runner.invoke(
        app,
        apply_args(
            aws_stack, "--bundle", str(bundle), "--mode", "active", "--yes", "--store", str(store)
        ),
    )
    assert result.exit_code == 0, result.output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent.name == "history" for p in written)
    assert aws_stack.audit in written
    for path in written:
        data = path.read_bytes()
        assert FAKE_SECRET.encode() not in data and FAKE_KEY_ID.encode() not in data, path
    assert FAKE_SECRET not in result.output and FAKE_KEY_ID not in result.output


def test_targets_limits_the_apply_to_the_stack_targets_that_can_take_the_policy(
    aws_stack: LiveStack, tmp_path: Path
) -> None:
    spec = {"kind": "aws-target-tracking"}
    bundle = make_bundle(tmp_path / "bundles", spec, name="prod-tt")
    # the stack has an eks target, where AWS target tracking has no construct
    refused(aws_stack, apply_args(aws_stack, "--bundle", str(bundle), "--yes"), "target 'eks'")
    only_asg = apply_args(aws_stack, "--bundle", str(bundle), "--targets", "asg", "--yes")
    result = runner.invoke(app, [*only_asg, "--mode", "active"])
    assert result.exit_code == 0, result.output
    assert group_state(aws_stack.endpoint)[3] == 1  # one target tracking policy


def test_shadow_apply_runs_the_policy_on_live_metrics_and_changes_nothing(
    aws_stack: LiveStack, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 6})
    put_demand(aws_stack.endpoint, requests_per_min=600.0, age_s=60)
    record = tmp_path / "shadow.jsonl"
    args = apply_args(
        aws_stack, "--bundle", str(bundle), "--yes", "--replica-capacity-rps", "2",
        "--record", str(record),
    )  # fmt: skip
    result = runner.invoke(app, args)  # never applied: shadow by default
    assert result.exit_code == 0, result.output
    assert "shadow mode: nothing changed" in result.output
    assert "shadow decision: running 3, policy 6" in result.output
    assert group_state(aws_stack.endpoint) == (1, 10, 3, 0)
    line = json.loads(record.read_text())
    assert (line["would_set"], line["running_desired"], line["demand_rps"]) == (6, 3, 10.0)


def test_an_apply_that_another_promotion_overtook_says_so_and_leaves_the_store_to_it(
    aws_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator promotes another version while this apply acts: the apply read the
    champion before acting, so its record loses the compare-and-swap; the live stack
    runs what it applied, the store keeps the operator's champion, and the command
    says both (exit 2)."""
    from planner.store.local import LocalStore

    store = tmp_path / "store"
    other = make_bundle(tmp_path / "theirs", {"kind": "fixed", "replicas": 5}, name="prod-other")
    theirs = overtake_while_acting(monkeypatch, store, other)
    bundle = make_bundle(tmp_path / "bundles", {"kind": "fixed", "replicas": 4})
    result = runner.invoke(
        app,
        apply_args(
            aws_stack, "--bundle", str(bundle), "--mode", "active", "--yes", "--store", str(store)
        ),
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "was applied to the live stack prod (see the audit log)" in said
    assert f"the champion of prod changed to {theirs} by operator" in said
    assert "Traceback" not in result.output
    assert group_state(aws_stack.endpoint) == (4, 4, 4, 0)  # applied live
    champion = LocalStore(store).champion("prod")
    assert champion is not None and champion["version"] == theirs
    assert [h["version"] for h in LocalStore(store).history("prod")] == [theirs]


def test_an_unreadable_store_fails_before_anything_changes(aws_stack: LiveStack) -> None:
    bundle_args = ["--config", str(aws_stack.project_dir / "Pulumi.prod.yaml")]
    refused(
        aws_stack,
        apply_args(aws_stack, *bundle_args, "--mode", "active", "--yes", "--store", "ftp://x/y"),
        "store 'ftp://x/y': give a directory or s3://bucket/prefix",
    )
