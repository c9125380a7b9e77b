"""Score a shadow run: the candidate policy's would-be capacity against what ran.

Both series are scored on the same demand, the demand that turned out: capacity
set at interval i serves the demand measured over interval i + 1 (the next
record's reading). Figures: capacity-hours, intervals under-provisioned
(demand above capacity x replica throughput) and actions (changes of capacity).

A spillover policy's records also carry the serverless endpoint's provisioned
concurrency (`spillover_would_set` beside `spillover_running`); those two series
are scored in concurrency-hours and actions. They have no under-provisioned count:
the records hold no serverless service time to turn concurrency into throughput.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import UserInputError


@dataclass(frozen=True)
class SeriesScore:
    capacity_hours: float
    under_provisioned: int
    actions: int


@dataclass(frozen=True)
class ConcurrencyScore:
    """One series of provisioned concurrency: concurrency-hours and changes."""

    concurrency_hours: float
    actions: int


@dataclass(frozen=True)
class ShadowScore:
    intervals: int
    held: int
    shadow: SeriesScore
    running: SeriesScore
    spillover_shadow: ConcurrencyScore | None = None
    spillover_running: ConcurrencyScore | None = None


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserInputError(
            f"shadow record {path} does not exist; run `planner control --mode shadow "
            "--record PATH` (or `planner apply --mode shadow`) first"
        )
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}:{number}: not a JSON line ({exc})") from None
    if not records:
        raise UserInputError(f"{path} holds no shadow records yet")
    return records


def _score(records: list[dict[str, Any]], field: str) -> SeriesScore:
    hours = sum(r[field] * r["interval_s"] for r in records) / 3600.0
    under = 0
    for now, following in itertools.pairwise(records):
        demand = following.get("demand_rps")
        if demand is not None and demand > now[field] * now["replica_capacity_rps"]:
            under += 1
    actions = sum(1 for a, b in itertools.pairwise(records) if a[field] != b[field])
    return SeriesScore(round(hours, 6), under, actions)


def _concurrency(records: list[dict[str, Any]], field: str) -> ConcurrencyScore:
    hours = sum(r[field] * r["interval_s"] for r in records) / 3600.0
    actions = sum(1 for a, b in itertools.pairwise(records) if a[field] != b[field])
    return ConcurrencyScore(round(hours, 6), actions)


def score(records: list[dict[str, Any]]) -> ShadowScore:
    """Both series scored over the same intervals (and both spillover series, when
    every record has them)."""
    spill = all(
        r.get("spillover_running") is not None and r.get("spillover_would_set") is not None
        for r in records
    )
    return ShadowScore(
        intervals=len(records),
        held=sum(1 for r in records if r.get("held")),
        shadow=_score(records, "would_set"),
        running=_score(records, "running_desired"),
        spillover_shadow=_concurrency(records, "spillover_would_set") if spill else None,
        spillover_running=_concurrency(records, "spillover_running") if spill else None,
    )
