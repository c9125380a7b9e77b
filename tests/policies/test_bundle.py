"""PolicyBundle: round trips, atomic never-overwriting writes, archives, validation."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from policies.bundle import (
    BUNDLE_SCHEMA_VERSION,
    MANIFEST,
    PolicyBundle,
    TrainingWindow,
    collect_versions,
    next_version,
    pack_bundle,
    read_bundle,
    write_bundle,
)
from policies.registry import resolve
from sim.errors import PolicyError

CREATED = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def make_bundle(version: int = 1, files: dict[str, bytes] | None = None) -> PolicyBundle:
    return PolicyBundle(
        name="checkout-hpa",
        version=version,
        spec=resolve("scheduled"),
        fitted_params={"target": 0.62, "season_weights": [0.1, 0.2]},
        training_window=TrainingWindow(source="servegen", start_s=0, end_s=86400, epoch_s=0),
        scores={"eval_tuned": {"cost_usd": 12.5, "slo_attainment": 0.995}},
        versions=collect_versions(),
        created_at=CREATED,
        files=files if files is not None else {"weights/policy.bin": b"\x00\x01\x02"},
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    bundle = make_bundle()
    target = write_bundle(bundle, tmp_path / "bundles")
    assert target == tmp_path / "bundles" / "checkout-hpa" / "v1"
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, "weights"]
    again = read_bundle(target)
    assert again == bundle
    assert again.files == {"weights/policy.bin": b"\x00\x01\x02"}
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["schema_version"] == BUNDLE_SCHEMA_VERSION
    assert manifest["spec"]["kind"] == "scheduled"
    assert manifest["spec"]["inner"]["kind"] == "hpa"
    assert manifest["versions"]["numpy"] == bundle.versions["numpy"]
    assert len(manifest["files"]["weights/policy.bin"]["sha256"]) == 64


def test_second_write_never_overwrites(tmp_path: Path) -> None:
    first = write_bundle(make_bundle(), tmp_path)
    before = (first / MANIFEST).read_bytes()
    changed = make_bundle().model_copy(update={"scores": {"changed": True}})
    with pytest.raises(PolicyError, match="never overwritten; write version 2 instead"):
        write_bundle(changed, tmp_path)
    assert (first / MANIFEST).read_bytes() == before
    assert next_version(tmp_path, "checkout-hpa") == 2
    second = write_bundle(make_bundle(version=2), tmp_path)
    assert second.name == "v2" and next_version(tmp_path, "checkout-hpa") == 3


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    # "a" is written as a file, so creating "a/b" fails halfway through the write.
    broken = make_bundle(files={"a": b"first", "a/b": b"second"})
    with pytest.raises(OSError):
        write_bundle(broken, root)
    assert not root.exists()


def test_failed_write_keeps_existing_bundles(tmp_path: Path) -> None:
    kept = write_bundle(make_bundle(), tmp_path)
    with pytest.raises(OSError):
        write_bundle(make_bundle(version=2, files={"a": b"1", "a/b": b"2"}), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkout-hpa").iterdir()) == ["v1"]
    assert read_bundle(kept) == make_bundle()


def test_tar_gz_archive_reads_and_resolves(tmp_path: Path) -> None:
    target = write_bundle(make_bundle(), tmp_path / "b")
    archive = pack_bundle(target, tmp_path / "checkout-hpa-v1.tar.gz")
    assert read_bundle(archive) == make_bundle()
    assert resolve(f"bundle:{archive}") == make_bundle().spec
    assert resolve(f"bundle:{target}") == make_bundle().spec
    with pytest.raises(PolicyError, match="never overwritten"):
        pack_bundle(target, archive)


def test_unsupported_schema_version(tmp_path: Path) -> None:
    target = write_bundle(make_bundle(files={}), tmp_path)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["schema_version"] = 2
    (target / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(
        PolicyError, match=r"schema_version 2 is not supported.*reads bundle schema_version 1"
    ):
        read_bundle(target)


def test_tampered_and_missing_files_are_detected(tmp_path: Path) -> None:
    target = write_bundle(make_bundle(), tmp_path)
    (target / "weights" / "policy.bin").write_bytes(b"tampered")
    with pytest.raises(PolicyError, match="does not match its sha256"):
        read_bundle(target)
    (target / "weights" / "policy.bin").unlink()
    with pytest.raises(PolicyError, match="is missing"):
        read_bundle(target)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "no bundle.json", id="no-manifest"),
        pytest.param("{not json", "not valid JSON", id="bad-json"),
        pytest.param("[1]", "expected a JSON object", id="not-object"),
        pytest.param(
            json.dumps(
                {
                    "schema_version": 1,
                    "name": "x",
                    "version": 1,
                    "created_at": CREATED.isoformat(),
                    "spec": {"kind": "hpa", "target": 7},
                }
            ),
            "fraction above 1",
            id="invalid-spec",
        ),
        pytest.param(
            json.dumps(
                {
                    "schema_version": 1,
                    "name": "a/b",
                    "version": 1,
                    "created_at": CREATED.isoformat(),
                    "spec": {"kind": "hpa"},
                }
            ),
            r"bundle\.json: bundle name 'a/b'",
            id="bad-name",
        ),
        pytest.param(
            json.dumps(
                {
                    "schema_version": 1,
                    "name": "x",
                    "version": 0,
                    "created_at": CREATED.isoformat(),
                    "spec": {"kind": "hpa"},
                }
            ),
            "version: Input should be greater than or equal to 1",
            id="bad-version",
        ),
    ],
)
def test_invalid_bundle_directories(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(PolicyError, match=message):
        read_bundle(tmp_path)


def test_not_a_bundle_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist or is not a directory"):
        read_bundle(tmp_path / "nope")
    with pytest.raises(PolicyError, match="needs a path"):
        resolve("bundle:")


def test_archive_member_outside_bundle_is_rejected(tmp_path: Path) -> None:
    target = write_bundle(make_bundle(files={}), tmp_path / "b")
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(target, arcname="v1")
        info = tarfile.TarInfo("../evil.txt")
        payload = b"x"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(PolicyError, match="outside the bundle directory"):
        read_bundle(archive)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        pytest.param(
            {"created_at": datetime(2026, 1, 1)}, "must carry a time zone", id="naive-time"
        ),
        pytest.param({"name": "../up"}, "must start with a letter or digit", id="bad-name"),
        pytest.param({"files": {"../x": b""}}, "without '..'", id="escaping-file"),
        pytest.param({"files": {"sub/bundle.json": b""}}, "not named", id="manifest-name"),
    ],
)
def test_bundle_validation(update: dict, message: str) -> None:
    data = {**make_bundle().model_dump(), "files": {}, **update}
    with pytest.raises(PolicyError, match=message):
        PolicyBundle.model_validate(data)


def test_training_window_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="must be after start_s"):
        TrainingWindow(source="x", start_s=10, end_s=5)


def test_bundles_and_archives_keep_the_users_umask(tmp_path: Path) -> None:
    """mkdtemp / mkstemp create 0700 / 0600 whatever the umask: a bundle a team shares
    must get the modes a plain mkdir / open would."""
    previous = os.umask(0o022)
    try:
        target = write_bundle(make_bundle(), tmp_path / "bundles")
        archive = pack_bundle(target, tmp_path / "bundle.tar.gz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert stat.S_IMODE(archive.stat().st_mode) == 0o644
