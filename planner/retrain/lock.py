"""One retraining run per stack at a time: a lock object in the store.

The lock is created only if absent (O_EXCL locally, a conditional `If-None-Match`
write on S3), so of two runs started together exactly one proceeds; the other
stops with a message naming the holder. A run that died without releasing it
leaves a lock older than `stale_after_s`, which the next run takes over (the
Kubernetes CronJob's `activeDeadlineSeconds` bounds a live run well below it).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from planner.store.base import PolicyStore
from sim.errors import UserInputError

#: A lock older than this belongs to a run that died (a run is bounded far below it).
STALE_AFTER_S = 6 * 3600.0


class RunLocked(UserInputError):
    """Another run holds the lock."""


@contextmanager
def run_lock(
    store: PolicyStore, name: str, *, stale_after_s: float = STALE_AFTER_S
) -> Iterator[dict[str, object]]:
    """Hold `locks/<name>.lock` for the duration of the block; release it on any exit."""
    record: dict[str, object] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    if not store.create_lock(name, data):
        held = store.read_lock(name)
        if held is not None and held[1] < stale_after_s:
            raise RunLocked(
                f"another retraining run holds the lock {name!r} ({held[0].decode().strip()}, "
                f"{held[1] / 60:.0f} min old); nothing was changed. It is released when that run "
                f"ends, or taken over after {stale_after_s / 3600:g} h"
            )
        store.delete_lock(name)  # stale: its run died
        if not store.create_lock(name, data):
            raise RunLocked(f"another run took the stale lock {name!r} first; nothing was changed")
        record["took_over_stale_lock"] = True
    try:
        yield record
    finally:
        store.delete_lock(name)
