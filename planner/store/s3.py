"""The policy store in S3: objects written once, the champion pointer written last.

A bundle's files go up first, then its emitted config, then a history record,
then the pointer: a crash anywhere leaves the previous pointer, so the previous
champion, in force. Objects are created with a conditional write
(`If-None-Match: *`): S3 refuses it (412) when the key exists, so of two racing
writers exactly one creates an object and the other reads it back (the same
content is a no-op, other content a `StoreError`). The pointer is replaced with
`If-Match: <the ETag this writer read>` (`If-None-Match: *` for the first one), so
it moves only from the record its writer read. On a versioned bucket (the stack's
bundle bucket is versioned, `infra.components.bundle_bucket`) even the pointer keeps
every version.
"""

from __future__ import annotations

import json
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
    lost_race,
    record_bytes,
)

#: S3's answer to a failed `If-None-Match` / `If-Match` condition (412).
_PRECONDITION_FAILED = ("PreconditionFailed", "412")
#: S3's answer (409) when another conditional write to the key is in flight: retry.
_CONFLICT = ("ConditionalRequestConflict", "409")
#: How often a write retries after a 409, and how many history numbers it tries.
_ATTEMPTS = 100


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Store:
    """A `PolicyStore` under `s3://bucket/prefix`."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = f"{prefix}/" if prefix else ""

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _read(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        data: bytes = body.read()
        return data

    def _keys(self, under: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2")
        out = []
        for page in pages.paginate(Bucket=self.bucket, Prefix=self._key(under)):
            out += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
        return sorted(out)

    def _create(self, key: str, data: bytes) -> bool:
        """Create `key` holding `data` only if it does not exist; False when it does."""
        from botocore.exceptions import ClientError

        for _attempt in range(_ATTEMPTS):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
            except ClientError as exc:
                if _error_code(exc) in _CONFLICT:
                    continue  # another write to the key is in flight: S3 asks for a retry
                if _error_code(exc) in _PRECONDITION_FAILED:
                    return False
                raise
            return True
        raise StoreError(f"s3://{self.bucket}/{self._key(key)}: writes kept conflicting; re-run")

    def _write_once(self, key: str, data: bytes) -> bool:
        if self._create(key, data):
            return True
        existing = self._read(key)
        if existing == data:
            return False
        raise StoreError(f"s3://{self.bucket}/{self._key(key)} exists with other content")

    def put_bundle(self, bundle_dir: Path) -> str:
        version = bundle_version(bundle_dir)
        root = Path(bundle_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        # bundle.json last: a bundle without its manifest is not a version yet.
        files.sort(key=lambda p: p.name == "bundle.json")
        for path in files:
            self._write_once(
                f"bundles/{version}/{path.relative_to(root).as_posix()}", path.read_bytes()
            )
        return version

    def put_emitted(self, version: str, stack: str, value: dict[str, Any]) -> str:
        check_version(version)
        data, digest = emitted_bytes(value)
        key = f"emitted/{version}/{stack}/{digest}.json"
        self._write_once(key, data)
        return key

    def get(self, version: str, stack: str, workdir: Path) -> StoredVersion:
        check_version(version)
        keys = self._keys(f"bundles/{version}/")
        bundle_dir: Path | None = None
        if any(k.endswith("/bundle.json") for k in keys):
            bundle_dir = Path(workdir) / version
            for key in keys:
                target = bundle_dir / key.removeprefix(f"bundles/{version}/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self._read(key) or b"")
        emitted = self._latest_emitted(version, stack)
        if bundle_dir is None and emitted is None:
            raise StoreError(
                f"version {version} is not in s3://{self.bucket}/{self.prefix} "
                f"(versions: {', '.join(self.versions()) or 'none'})"
            )
        return StoredVersion(version, bundle_dir, emitted)

    def _latest_emitted(self, version: str, stack: str) -> dict[str, Any] | None:
        keys = [
            r["emitted"] for r in self.history(stack) if r["version"] == version and r["emitted"]
        ]
        if not keys:
            keys = self._keys(f"emitted/{version}/{stack}/")
        if not keys:
            return None
        loaded: dict[str, Any] = json.loads(self._read(keys[-1]) or b"null")
        return loaded

    def champion(self, stack: str) -> dict[str, Any] | None:
        return self._pointer(stack)[0]

    def _pointer(self, stack: str) -> tuple[dict[str, Any] | None, str | None]:
        """The champion record of `stack` and its object's ETag (None, None: no champion)."""
        try:
            obj = self.client.get_object(
                Bucket=self.bucket, Key=self._key(f"champion/{stack}.json")
            )
        except self.client.exceptions.NoSuchKey:
            return None, None
        record: dict[str, Any] = json.loads(obj["Body"].read())
        return record, str(obj["ETag"])

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
        from botocore.exceptions import ClientError

        check_version(version)
        if version not in self.versions():
            raise StoreError(f"version {version} is not in s3://{self.bucket}/{self.prefix}")
        current, etag = self._pointer(stack)
        check_expected(stack, expected, current)
        record = self._append_history(stack, version, emitted, who, reason, current)
        # Compare-and-swap: the pointer moves only if it is still the object read above.
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        for _attempt in range(_ATTEMPTS):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(f"champion/{stack}.json"),
                    Body=record_bytes(record),
                    **condition,
                )
                return record
            except ClientError as exc:
                code = _error_code(exc)
                if code not in (*_PRECONDITION_FAILED, *_CONFLICT, "NoSuchKey", "404"):
                    raise
            now, now_etag = self._pointer(stack)
            if now == record:
                return record  # this write landed; a retry of it was the one refused
            if now_etag != etag:
                # Lost: this run's history record stays pending, on no pointer's chain.
                raise lost_race(stack, now)
            # A 409 for a concurrent write that did not land: the pointer is unchanged.
        raise StoreError(f"the champion of {stack}: writes kept conflicting; re-run")

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
        return append_history(
            self._keys("history/"),
            lambda name, data: self._create(f"history/{name}", data),
            lambda seq: history_record(seq, stack, version, emitted, who, reason, current),
            f"s3://{self.bucket}/{self._key('history/')}",
        )

    def history(self, stack: str | None = None) -> list[dict[str, Any]]:
        records = [json.loads(self._read(k) or b"{}") for k in self._keys("history/")]
        if stack is None:
            pointer_keys = [k for k in self._keys("champion/") if k.endswith(".json")]
        else:
            pointer_keys = [f"champion/{stack}.json"]
        pointers = [json.loads(data) for k in pointer_keys if (data := self._read(k)) is not None]
        chains = effective_history(records, pointers)
        return [r for r in chains if stack is None or r.get("stack") == stack]

    def versions(self) -> list[str]:
        found = set()
        for key in self._keys("bundles/"):
            if key.endswith("/bundle.json"):
                found.add(key.split("/")[1])
        found |= {k.split("/")[1] for k in self._keys("emitted/")}
        return sorted(found)

    def put_file(self, key: str, data: bytes) -> bool:
        return self._write_once(key, data)

    def read_file(self, key: str) -> bytes | None:
        return self._read(key)

    def create_lock(self, name: str, data: bytes) -> bool:
        # A conditional write: S3 refuses it (412) when the object exists, so two
        # racing runs cannot both hold the lock.
        return self._create(f"locks/{name}.lock", data)

    def read_lock(self, name: str) -> tuple[bytes, float] | None:
        from datetime import UTC, datetime

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(f"locks/{name}.lock"))
        except self.client.exceptions.NoSuchKey:
            return None
        age_s = (datetime.now(UTC) - obj["LastModified"]).total_seconds()
        return obj["Body"].read(), age_s

    def delete_lock(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(f"locks/{name}.lock"))
