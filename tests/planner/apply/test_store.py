"""The policy store, local and on S3 (moto over HTTP): versions, champion, history, atomicity."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.aws.session import AwsConnection
from planner.cli import app
from planner.store import open_store
from planner.store.base import PolicyStore, StoreError
from tests.planner.apply.conftest import (
    GROUP,
    REGION,
    LiveStack,
    client,
    overtake_while_acting,
    scaling_block,
)
from tests.planner.apply.test_apply_cli import make_bundle

runner = CliRunner()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PolicyStore]:
    if request.param == "local":
        yield open_store(str(tmp_path / "store"))
        return
    endpoint = request.getfixturevalue("aws_env")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="scaleplan-bundles")
    s3.put_bucket_versioning(
        Bucket="scaleplan-bundles", VersioningConfiguration={"Status": "Enabled"}
    )
    yield open_store("s3://scaleplan-bundles/prod", AwsConnection(REGION, endpoint))


def test_versions_champion_and_history(store: PolicyStore, tmp_path: Path) -> None:
    first = make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 4}, version=1)
    second = make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 6}, version=2)
    assert store.champion("prod") is None
    v1 = store.put_bundle(first)
    assert v1 == "prod-fixed@1"
    assert store.put_bundle(first) == v1  # the same content again: idempotent
    emitted = store.put_emitted(v1, "prod", {"schema_version": 1, "x": 1})
    store.set_champion("prod", v1, who="arn:aws:iam::1:user/ci", reason="first", emitted=emitted)
    v2 = store.put_bundle(second)
    store.set_champion("prod", v2, who="arn:aws:iam::1:user/ci", reason="retrained")
    assert store.versions() == ["prod-fixed@1", "prod-fixed@2"]
    champion = store.champion("prod")
    assert champion is not None
    assert (champion["version"], champion["previous"]) == (v2, v1)
    history = store.history("prod")
    assert [(h["version"], h["reason"]) for h in history] == [(v1, "first"), (v2, "retrained")]
    got = store.get(v1, "prod", tmp_path / "work")
    assert got.emitted == {"schema_version": 1, "x": 1}
    assert got.bundle_dir is not None
    assert (got.bundle_dir / "bundle.json").read_bytes() == (first / "bundle.json").read_bytes()


def test_nothing_is_ever_overwritten(store: PolicyStore, tmp_path: Path) -> None:
    store.put_bundle(make_bundle(tmp_path / "a", {"kind": "fixed", "replicas": 4}))
    other = make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 9})  # same name@version
    with pytest.raises(StoreError, match=r"never overwritten|other content"):
        store.put_bundle(other)
    with pytest.raises(StoreError, match="not in"):
        store.set_champion("prod", "prod-fixed@7", who="x", reason="typo")
    with pytest.raises(StoreError, match="not in"):
        store.get("prod-fixed@7", "prod", tmp_path / "work")


def test_a_crash_while_moving_the_pointer_leaves_the_previous_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path / "store"))
    v1 = store.put_bundle(make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 4}, version=1))
    store.set_champion("prod", v1, who="ci", reason="first")
    v2 = store.put_bundle(make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 6}, version=2))

    def crash(*_: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.set_champion("prod", v2, who="ci", reason="retrained")
    monkeypatch.undo()
    champion = store.champion("prod")
    assert champion is not None and champion["version"] == v1
    assert not [p for p in (tmp_path / "store" / "champion").iterdir() if p.name.endswith(".tmp")]
    # Its history record was written, but is pending: history agrees with the pointer.
    assert len(list((tmp_path / "store" / "history").glob("*.json"))) == 2
    assert [h["version"] for h in store.history("prod")] == [v1]
    assert store.set_champion("prod", v2, who="ci", reason="again")["previous"] == v1
    assert [h["reason"] for h in store.history("prod")] == ["first", "again"]


def test_a_crash_while_copying_a_bundle_leaves_no_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    store = open_store(str(tmp_path / "store"))
    bundle = make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": 4})

    def crash(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put_bundle(bundle)
    monkeypatch.undo()
    assert store.versions() == []
    assert store.put_bundle(bundle) == "prod-fixed@1"  # and a retry succeeds


def test_s3_pointer_written_last_keeps_every_version(aws_env: str, tmp_path: Path) -> None:
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket="pointer-test")
    s3.put_bucket_versioning(Bucket="pointer-test", VersioningConfiguration={"Status": "Enabled"})
    store = open_store("s3://pointer-test/p", AwsConnection(REGION, aws_env))
    for version, replicas in ((1, 4), (2, 6)):
        v = store.put_bundle(
            make_bundle(tmp_path / "b", {"kind": "fixed", "replicas": replicas}, version=version)
        )
        store.set_champion("prod", v, who="ci", reason=f"v{version}")
    versions = s3.list_object_versions(Bucket="pointer-test", Prefix="p/champion/prod.json")[
        "Versions"
    ]
    assert len(versions) == 2  # the old pointer is an older object version, not lost


def test_rollback_reapplies_a_stored_version(live_stack: LiveStack, tmp_path: Path) -> None:
    import yaml

    store = tmp_path / "store"
    path = live_stack.project_dir / "Pulumi.prod.yaml"
    common = [
        "--stack", "prod", "--project-dir", str(live_stack.project_dir),
        "--endpoint-url", live_stack.endpoint, "--audit-log", str(live_stack.audit),
    ]  # fmt: skip
    first = runner.invoke(
        app,
        [
            "apply",
            "--config",
            str(path),
            "--mode",
            "active",
            "--yes",
            "--store",
            str(store),
            *common,
        ],
    )
    assert first.exit_code == 0, first.output
    asg = client(live_stack.endpoint, "autoscaling")
    v7 = asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    doc = yaml.safe_load(path.read_text())
    changed = scaling_block(bounds={"min": 3, "max": 9})
    changed["source"]["version"] = "8"
    del changed["asg"]["step"]
    del changed["asg"]["schedule"]
    doc["config"]["scaleplan:scaling"] = changed
    path.write_text(yaml.safe_dump(doc))
    second = runner.invoke(
        app,
        [
            "apply",
            "--config",
            str(path),
            "--mode",
            "active",
            "--yes",
            "--store",
            str(store),
            *common,
        ],
    )
    assert second.exit_code == 0, second.output
    assert len(asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]) == 2
    back = runner.invoke(
        app, ["rollback", "--to", "prod-predictive@7", "--store", str(store), "--yes", *common]
    )
    assert back.exit_code == 0, back.output
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"]) == (2, 12)
    restored = asg.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    assert sorted(p["PolicyName"] for p in restored) == sorted(p["PolicyName"] for p in v7)
    champion = open_store(str(store)).champion("prod")
    assert champion is not None and champion["version"] == "prod-predictive@7"
    assert [h["version"] for h in open_store(str(store)).history("prod")] == [
        "prod-predictive@7",
        "prod-predictive@8",
        "prod-predictive@7",
    ]


def test_files_are_written_once_and_read_back(store: PolicyStore) -> None:
    assert store.read_file("runs/abc/report.json") is None
    assert store.put_file("runs/abc/report.json", b"{}\n") is True
    assert store.put_file("runs/abc/report.json", b"{}\n") is False  # identical: a no-op
    with pytest.raises(StoreError, match="other content"):
        store.put_file("runs/abc/report.json", b'{"changed": 1}\n')
    assert store.read_file("runs/abc/report.json") == b"{}\n"


def test_a_lock_is_created_only_once_until_deleted(store: PolicyStore) -> None:
    assert store.read_lock("prod") is None
    assert store.create_lock("prod", b"first\n") is True
    # A second run racing for it is refused by the store itself (O_EXCL, If-None-Match).
    assert store.create_lock("prod", b"second\n") is False
    held = store.read_lock("prod")
    assert held is not None and held[0] == b"first\n" and 0 <= held[1] < 60
    store.delete_lock("prod")
    assert store.read_lock("prod") is None
    assert store.create_lock("prod", b"second\n") is True


def test_a_rollback_overtaken_by_a_promotion_says_so_and_leaves_the_store_to_it(
    live_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback read the champion before re-applying; an operator promotes another
    version while it acts: the live stack runs the rolled-back version, the store keeps
    the operator's, and the command says both (exit 2)."""
    from planner.store.local import LocalStore

    store = tmp_path / "store"
    common = [
        "--stack", "prod", "--project-dir", str(live_stack.project_dir),
        "--endpoint-url", live_stack.endpoint, "--audit-log", str(live_stack.audit),
    ]  # fmt: skip
    path = live_stack.project_dir / "Pulumi.prod.yaml"
    first = runner.invoke(
        app, ["apply", "--config", str(path), "--mode", "active", "--yes", "--store", str(store),
              *common],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    other = make_bundle(tmp_path / "theirs", {"kind": "fixed", "replicas": 5}, name="prod-other")
    theirs = overtake_while_acting(monkeypatch, store, other)
    back = runner.invoke(
        app, ["rollback", "--to", "prod-predictive@7", "--store", str(store), "--yes", *common]
    )
    assert back.exit_code == 2, back.output
    said = " ".join(back.output.split())
    assert "prod-predictive@7 was applied to the live stack prod" in said
    assert f"changed to {theirs} by operator" in said
    champion = LocalStore(store).champion("prod")
    assert champion is not None and champion["version"] == theirs
