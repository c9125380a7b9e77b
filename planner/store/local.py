"""The policy store in a local directory: temp files linked into place, never overwritten.

Write-once files are created by `os.link` from a complete temporary sibling, which
fails when the name exists, so two racing writers cannot both create one. The
champion pointer is compared and swapped under an exclusive `flock` on
`champion/.<stack>.lock` (released by the kernel if its holder dies), then replaced
with `os.replace`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from planner.store.base import (
    UNREAD,
    Expected,
    StoredVersion,
    StoreError,
    append_history,
    bundle_version,
    check_expected,
    check_version,
    effective_history,
    emitted_bytes,
    history_record,
    record_bytes,
)


def _create(path: Path, data: bytes) -> bool:
    """Create `path` holding `data`, complete or not at all; False when it exists.

    The data goes to a temporary sibling first, flushed to disk, then is linked
    to `path`: a link never replaces, so of two racing writers exactly one creates it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def _write_once(path: Path, data: bytes) -> bool:
    """Create `path` with `data` atomically; False when an identical file exists.

    Raises:
        StoreError: a different file already exists there (nothing is overwritten).
    """
    if not path.exists() and _create(path, data):
        return True
    if path.read_bytes() == data:
        return False
    raise StoreError(f"{path} exists with other content; store entries are never overwritten")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if absent) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the holder; the kernel frees a dead one's
        yield
    finally:
        os.close(fd)  # closing releases the lock


class LocalStore:
    """A `PolicyStore` in directory `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_bundle(self, bundle_dir: Path) -> str:
        version = bundle_version(bundle_dir)
        target = self.root / "bundles" / version
        source = Path(bundle_dir)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=target.parent))
            try:
                shutil.copytree(source, temp, dirs_exist_ok=True)
                # Renaming onto a directory another writer filled first fails: never replaces.
                os.rename(temp, target)
                return version
            except OSError:
                if not target.is_dir():
                    raise
            finally:
                shutil.rmtree(temp, ignore_errors=True)
        if _same_tree(source, target):
            return version
        raise StoreError(
            f"version {version} is already stored with other content; bundles are never "
            "overwritten: write the bundle as a new version"
        )

    def put_emitted(self, version: str, stack: str, value: dict[str, Any]) -> str:
        check_version(version)
        data, digest = emitted_bytes(value)
        key = f"emitted/{version}/{stack}/{digest}.json"
        _write_once(self.root / key, data)
        return key

    def get(self, version: str, stack: str, workdir: Path) -> StoredVersion:
        check_version(version)
        bundle = self.root / "bundles" / version
        emitted = self._latest_emitted(version, stack)
        if not bundle.is_dir() and emitted is None:
            known = ", ".join(self.versions()) or "none"
            raise StoreError(f"version {version} is not in store {self.root} (versions: {known})")
        return StoredVersion(version, bundle if bundle.is_dir() else None, emitted)

    def _latest_emitted(self, version: str, stack: str) -> dict[str, Any] | None:
        keys = [
            r["emitted"] for r in self.history(stack) if r["version"] == version and r["emitted"]
        ]
        if keys:
            loaded: dict[str, Any] = json.loads((self.root / keys[-1]).read_text())
            return loaded
        folder = self.root / "emitted" / version / stack
        files = (
            sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
            if folder.is_dir()
            else []
        )
        return json.loads(files[-1].read_text()) if files else None

    def champion(self, stack: str) -> dict[str, Any] | None:
        pointer = self.root / "champion" / f"{stack}.json"
        if not pointer.exists():
            return None
        record: dict[str, Any] = json.loads(pointer.read_text())
        return record

    def set_champion(
        self,
        stack: str,
        version: str,
        *,
        who: str,
        reason: str,
        emitted: str | None = None,
        expected: Expected = UNREAD,
    ) -> dict[str, Any]:
        check_version(version)
        if version not in self.versions():
            raise StoreError(f"version {version} is not in store {self.root}; put it first")
        pointer = self.root / "champion" / f"{stack}.json"
        with _locked(pointer.with_name(f".{stack}.lock")):
            current = self.champion(stack)
            check_expected(stack, expected, current)
            record = self._append_history(stack, version, emitted, who, reason, current)
            fd, tmp = tempfile.mkstemp(prefix=f".{stack}.", suffix=".tmp", dir=pointer.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(record_bytes(record))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, pointer)  # the pointer moves last, in one step
            finally:
                Path(tmp).unlink(missing_ok=True)
        return record

    def _append_history(
        self,
        stack: str,
        version: str,
        emitted: str | None,
        who: str,
        reason: str,
        current: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Write the next free `history/<seq>.json` (see `append_history`)."""
        folder = self.root / "history"
        return append_history(
            [p.name for p in folder.glob("*.json")] if folder.is_dir() else [],
            lambda name, data: _create(folder / name, data),
            lambda seq: history_record(seq, stack, version, emitted, who, reason, current),
            str(folder),
        )

    def history(self, stack: str | None = None) -> list[dict[str, Any]]:
        folder = self.root / "history"
        records = (
            [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
            if folder.is_dir()
            else []
        )
        pointers = sorted((self.root / "champion").glob("*.json"))
        chains = effective_history(
            records,
            [
                json.loads(p.read_text())
                for p in pointers
                if stack is None or p.name == f"{stack}.json"
            ],
        )
        return [r for r in chains if stack is None or r["stack"] == stack]

    def versions(self) -> list[str]:
        found = set()
        for sub in ("bundles", "emitted"):
            folder = self.root / sub
            if folder.is_dir():
                found |= {
                    p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                }
        return sorted(found)

    def put_file(self, key: str, data: bytes) -> bool:
        return _write_once(self._path(key), data)

    def read_file(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def create_lock(self, name: str, data: bytes) -> bool:
        path = self._path(f"locks/{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: exactly one of two racing runs creates it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def read_lock(self, name: str) -> tuple[bytes, float] | None:
        path = self._path(f"locks/{name}.lock")
        try:
            return path.read_bytes(), time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None

    def delete_lock(self, name: str) -> None:
        self._path(f"locks/{name}.lock").unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        path = self.root / key
        if ".." in Path(key).parts or Path(key).is_absolute():
            raise StoreError(f"store key {key!r} leaves the store")
        return path


def _same_tree(a: Path, b: Path) -> bool:
    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    return files(a) == files(b)
