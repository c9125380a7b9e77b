"""A time-stamped log of what happened in a run, for narrative tests and debugging.

Logging is off by default (the hot path then pays one `is None` check). With it
on, every pool appends `LogEntry`s; `sorted_log` orders them by time and then by
the order they were written, since the serverless pool writes its internal
transitions when it catches up, slightly after their own time stamps.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What the engine logs (kind: meaning).
KINDS: dict[str, str] = {
    "queue": "request waits in the central queue",
    "start": "request starts on a replica or serverless instance",
    "finish": "request completes",
    "drop": "request dropped (queue timeout or throttled)",
    "spill": "request routed to the spillover pool",
    "retry": "request re-queued at the front after its node was lost",
    "node_launch": "node requested (billing starts)",
    "node_ready": "node booted (and image pulled)",
    "replica_ready": "replica loaded its model and takes requests",
    "replica_drain": "busy replica stops taking requests before removal",
    "replica_remove": "replica removed",
    "node_release": "node released (billing stops)",
    "spot_reclaim": "spot node reclaimed",
    "node_failure": "node failed",
    "cold_start": "serverless instance created for a request",
    "warm_start": "request served by an idle warm instance",
    "expire": "idle serverless instance expired after keep-alive",
    "desired": "accepted desired-capacity change",
}


@dataclass(frozen=True)
class LogEntry:
    """One event: when, in which pool, what, and its details (`key=value` text)."""

    time_s: float
    pool: str
    kind: str
    detail: str


def sorted_log(entries: list[tuple[float, str, str, str]]) -> tuple[LogEntry, ...]:
    """Entries ordered by time, ties kept in writing order (the sort is stable)."""
    ordered = sorted(enumerate(entries), key=lambda pair: (pair[1][0], pair[0]))
    return tuple(LogEntry(*entry) for _, entry in ordered)
