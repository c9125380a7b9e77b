"""The store's contract and the parts both backends share (keys, records, validation).

Keys, relative to the store root (a directory or an S3 prefix):

    bundles/<version>/<file>                 a bundle's files (bundle.json ...)
    emitted/<version>/<stack>/<sha12>.json   a compiled `scaleplan:scaling` value
    history/<seq:08d>.json                   one promotion: stack, version, emitted, who, why
    champion/<stack>.json                    the pointer: the latest history record (replaced)
    runs/<run id>/<file>                     a retraining run's report; `done.json` written last
    locks/<name>.lock                        a held lock (created only if absent, then deleted)

Everything but the pointer is written once; the pointer is written last and
replaced whole (os.replace locally, a new object version on S3).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sim.errors import UserInputError

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class StoreError(UserInputError):
    """A version that does not exist, a conflicting write, an unreadable store."""


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise StoreError(
            f"version {version!r}: use letters, digits, '.', '_', '-' and '@' "
            "(e.g. prod-predictive@7)"
        )
    return version


def bundle_version(bundle_dir: Path) -> str:
    """`<name>@<version>` of a bundle directory (what `planner.apply.inputs.label` gives)."""
    from policies.bundle import read_bundle

    bundle = read_bundle(bundle_dir)
    return check_version(f"{bundle.name}@{bundle.version}")


def emitted_bytes(value: dict[str, Any]) -> tuple[bytes, str]:
    data = (json.dumps(value, sort_keys=True, indent=1) + "\n").encode("utf-8")
    return data, hashlib.sha256(data).hexdigest()[:12]


@dataclass(frozen=True)
class StoredVersion:
    """A version read back: its bundle directory (None for a config-only version), its config."""

    version: str
    bundle_dir: Path | None
    emitted: dict[str, Any] | None


def history_record(
    seq: int,
    stack: str,
    version: str,
    emitted: str | None,
    who: str,
    reason: str,
    previous: str | None,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stack": stack,
        "version": version,
        "emitted": emitted,
        "who": who,
        "reason": reason,
        "previous": previous,
    }


class PolicyStore(Protocol):
    """What the apply path and the retraining job use."""

    def put_bundle(self, bundle_dir: Path) -> str:
        """Store a bundle directory once; returns its version `<name>@<N>` (idempotent)."""
        ...

    def put_emitted(self, version: str, stack: str, value: dict[str, Any]) -> str:
        """Store a compiled `scaleplan:scaling` value of `version` for `stack`; its key."""
        ...

    def get(self, version: str, stack: str, workdir: Path) -> StoredVersion:
        """A version's bundle (copied under `workdir`) and its latest emitted config for `stack`."""
        ...

    def champion(self, stack: str) -> dict[str, Any] | None:
        """The champion record of `stack` (version, emitted key, who, when), or None."""
        ...

    def set_champion(
        self, stack: str, version: str, *, who: str, reason: str, emitted: str | None = None
    ) -> dict[str, Any]:
        """Make `version` the champion of `stack`: a history record, then the pointer."""
        ...

    def history(self, stack: str | None = None) -> list[dict[str, Any]]:
        """Promotions, oldest first (of one stack when given)."""
        ...

    def versions(self) -> list[str]:
        """Every stored version (bundles and config-only versions)."""
        ...

    def put_file(self, key: str, data: bytes) -> bool:
        """Write `key` once; False when identical content is already there.

        Raises:
            StoreError: other content is stored under `key` (nothing is overwritten).
        """
        ...

    def read_file(self, key: str) -> bytes | None:
        """The content under `key`, or None."""
        ...

    def create_lock(self, name: str, data: bytes) -> bool:
        """Create `locks/<name>.lock` holding `data` only if it does not exist; True if created."""
        ...

    def read_lock(self, name: str) -> tuple[bytes, float] | None:
        """A held lock's content and its age in seconds, or None when free."""
        ...

    def delete_lock(self, name: str) -> None:
        """Release a lock (no error when already free)."""
        ...
