"""The store's contract and the parts both backends share (keys, records, validation).

Keys, relative to the store root (a directory or an S3 prefix):

    bundles/<version>/<file>                 a bundle's files (bundle.json ...)
    emitted/<version>/<stack>/<sha12>.json   a compiled `scaleplan:scaling` value
    history/<seq:08d>.json                   one promotion: stack, version, emitted, who, why
    champion/<stack>.json                    the pointer: the latest history record (replaced)
    runs/<run id>/<file>                     a retraining run's report; `done.json` written last
    locks/<name>.lock                        a held lock (created only if absent, then deleted)

Everything but the pointer is written once, by a create that cannot replace
(a hard link locally, `If-None-Match: *` on S3): of two writers racing for a key
exactly one creates it, and the other gets False (the same content) or a
`StoreError` (other content). The pointer is written last and replaced whole by a
compare-and-swap (under an `flock` locally, `If-Match: <ETag>` on S3): it moves
only if it still holds the record its writer read, so of two promotions from the
same champion exactly one takes effect and the other raises `StoreError`.

A history record is written before its pointer move and names the record it
replaces (`previous_seq`); `history()` counts only the records on a chain walked
back from a pointer. A record whose writer lost the race for the pointer, or
crashed before moving it, is on no chain: it stays in `history/` as a pending
record and is never reported as a promotion. So a crash at any point leaves the
previous champion in force, and history agrees with the pointer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal, Protocol

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
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """Promotion number `seq`, replacing the pointer record `previous` (None: the first)."""
    return {
        "seq": seq,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stack": stack,
        "version": version,
        "emitted": emitted,
        "who": who,
        "reason": reason,
        "previous": None if previous is None else previous["version"],
        "previous_seq": None if previous is None else previous["seq"],
    }


def record_bytes(record: dict[str, Any]) -> bytes:
    """A history record as stored, in `history/` and in the pointer alike."""
    return (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")


def history_seq(name: str) -> int | None:
    """The number of a `history/<seq:08d>.json` file name, None for anything else."""
    stem, dot, ext = name.rpartition("/")[2].partition(".")
    return int(stem) if dot and ext == "json" and stem.isdigit() else None


#: How many history numbers a writer tries before giving up (other writers take them).
HISTORY_ATTEMPTS = 100


def append_history(
    taken: Iterable[str],
    create: Callable[[str, bytes], bool],
    make_record: Callable[[int], dict[str, Any]],
    where: str,
) -> dict[str, Any]:
    """Write the record for the next free history number through `create`.

    `taken` names the history entries already there; `create(name, data)` writes
    `<seq:08d>.json` only if it does not exist (False when another writer has it),
    and the next number is tried: promotions of other stacks race for the numbers.
    """
    numbers = [n for n in (history_seq(name) for name in taken) if n is not None]
    seq = max(numbers, default=0) + 1
    for _attempt in range(HISTORY_ATTEMPTS):
        record = make_record(seq)
        if create(f"{seq:08d}.json", record_bytes(record)):
            return record
        seq += 1  # another writer took this number
    raise StoreError(f"could not append to {where}: {HISTORY_ATTEMPTS} numbers taken meanwhile")


class Unread(Enum):
    """The type of `UNREAD`."""

    UNREAD = "unread"


#: `set_champion(expected=UNREAD)`: the caller read no champion before deciding; the
#: store still moves the pointer only from the record it read itself.
UNREAD: Final = Unread.UNREAD

#: What a caller of `set_champion` read before deciding: the record `champion()`
#: gave, None when there was no champion, or `UNREAD`.
Expected = dict[str, Any] | None | Literal[Unread.UNREAD]


def lost_race(stack: str, current: dict[str, Any] | None) -> StoreError:
    """The error of a promotion whose pointer moved (to `current`) under it."""
    if current is None:
        return StoreError(
            f"the champion of {stack} was removed while this run was deciding; "
            "nothing was promoted: re-run"
        )
    return StoreError(
        f"the champion of {stack} changed to {current.get('version')} by {current.get('who')} "
        f"at {current.get('time')} while this run was deciding; nothing was promoted: re-run"
    )


def check_expected(stack: str, expected: Expected, current: dict[str, Any] | None) -> None:
    """Raise `lost_race` when the pointer is no longer what the caller read.

    Raises:
        StoreError: the champion of `stack` changed since the caller read it.
    """
    if expected is not UNREAD and expected != current:
        raise lost_race(stack, current)


def effective_history(
    records: Iterable[dict[str, Any]], pointers: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The promotions that took effect, oldest first: the chains behind `pointers`.

    Walking back from each pointer through `previous_seq` gives exactly the
    promotions whose pointer move succeeded; a record written by a run that lost
    the race for the pointer, or crashed before moving it, is on no chain and is
    left out. A record from before `previous_seq` was recorded ends the walk and
    brings every earlier such record of its stack with it (what history was then).
    """
    by_seq = {r["seq"]: r for r in records if isinstance(r.get("seq"), int)}
    taken: dict[int, dict[str, Any]] = {}
    for pointer in pointers:
        record: dict[str, Any] | None = by_seq.get(pointer["seq"], pointer)
        while record is not None and record["seq"] not in taken:
            taken[record["seq"]] = record
            if "previous_seq" not in record:
                taken |= {
                    seq: r
                    for seq, r in by_seq.items()
                    if seq <= record["seq"]
                    and r.get("stack") == record["stack"]
                    and "previous_seq" not in r
                }
                break
            before = record["previous_seq"]
            # A record names an older one (its seq was free when it was written).
            record = by_seq.get(before) if before is not None and before < record["seq"] else None
    return [taken[seq] for seq in sorted(taken)]


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
        self,
        stack: str,
        version: str,
        *,
        who: str,
        reason: str,
        emitted: str | None = None,
        expected: Expected = UNREAD,
    ) -> dict[str, Any]:
        """Make `version` the champion of `stack`: a history record, then the pointer.

        The pointer moves only from the record the store reads at the start of this
        call, and, when `expected` is given, only if that is still `expected` (what the
        caller read from `champion(stack)` before deciding, None for no champion).

        Raises:
            StoreError: `version` is not stored, or the champion changed meanwhile (no
                pointer is written, and history does not count this promotion).
        """
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
