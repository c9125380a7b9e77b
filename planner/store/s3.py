"""The policy store in S3: objects written once, the champion pointer written last.

A bundle's files go up first, then its emitted config, then a history record,
then the pointer: a crash anywhere leaves the previous pointer, so the previous
champion, in force. Objects are never replaced (a write checks first and
refuses other content); on a versioned bucket (the stack's bundle bucket is
versioned, `infra.components.bundle_bucket`) even the pointer keeps every version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planner.store.base import (
    StoredVersion,
    StoreError,
    bundle_version,
    check_version,
    emitted_bytes,
    history_record,
)


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

    def _write_once(self, key: str, data: bytes) -> bool:
        existing = self._read(key)
        if existing is not None:
            if existing == data:
                return False
            raise StoreError(f"s3://{self.bucket}/{self._key(key)} exists with other content")
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return True

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
        data = self._read(f"champion/{stack}.json")
        return None if data is None else json.loads(data)

    def set_champion(
        self, stack: str, version: str, *, who: str, reason: str, emitted: str | None = None
    ) -> dict[str, Any]:
        check_version(version)
        if version not in self.versions():
            raise StoreError(f"version {version} is not in s3://{self.bucket}/{self.prefix}")
        current = self.champion(stack)
        seq = len(self._keys("history/")) + 1
        record = history_record(
            seq, stack, version, emitted, who, reason, current["version"] if current else None
        )
        data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        self._write_once(f"history/{seq:08d}.json", data)
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(f"champion/{stack}.json"), Body=data
        )
        return record

    def history(self, stack: str | None = None) -> list[dict[str, Any]]:
        records = [json.loads(self._read(k) or b"{}") for k in self._keys("history/")]
        return [r for r in records if stack is None or r.get("stack") == stack]

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
        from botocore.exceptions import ClientError

        try:
            # A conditional write: S3 refuses it (412) when the object exists, so two
            # racing runs cannot both hold the lock.
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(f"locks/{name}.lock"), Body=data, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

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
