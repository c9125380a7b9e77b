"""The policy store: versioned bundles, emitted configs, a champion pointer per stack, history.

`open_store("dir/")` or `open_store("s3://bucket/prefix")` gives a `PolicyStore`
(`planner.store.base`). The retraining job puts a bundle and sets the champion;
`planner apply` records what it applied; `planner rollback --to VERSION` reads a
version back and re-applies it. Nothing is ever overwritten; the pointer is
written last, so a crash mid-write leaves the previous champion in force, and it
moves by compare-and-swap, so of two racing promotions one takes effect and the
other raises `StoreError` (`planner.store.base` says how).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.aws.session import AwsConnection
    from planner.store.base import PolicyStore


def open_store(url: str, connection: AwsConnection | None = None) -> PolicyStore:
    """A local directory store, or an S3 store for `s3://bucket[/prefix]`."""
    from pathlib import Path

    if url.startswith("s3://"):
        from planner.store.s3 import S3Store

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            from sim.errors import UserInputError

            raise UserInputError(f"store {url!r}: give a bucket, e.g. s3://my-bucket/policies")
        if connection is None:
            from planner.aws.session import AwsConnection

            connection = AwsConnection(region="us-east-1")
        return S3Store(connection.client("s3"), bucket, prefix.strip("/"))
    if "://" in url:
        from sim.errors import UserInputError

        raise UserInputError(
            f"store {url!r}: give a directory or s3://bucket/prefix (no other scheme is supported)"
        )
    from planner.store.local import LocalStore

    return LocalStore(Path(url))
