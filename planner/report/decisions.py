"""Why each policy scaled: the control loop's capacity changes with their reasons.

Every engine hands back `RunResult.decisions` (one `ActuationRecord` per accepted
change, as the control loop recorded it). This module turns them into the CSV of
`planner simulate --decisions FILE.csv` and into the per-policy rows and reason
counts the HTML report shows.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sim.control import ActuationRecord
from sim.result import RunResult

#: Columns of the decisions CSV, in order.
CSV_COLUMNS = ("policy", "time_s", "target", "previous", "desired", "change", "kind", "reason")

#: Reasons start with a short kind ("ScaleUp: ...", "AlarmHigh: ...", "fallback: ..."),
#: as the HPA's events do; without a colon, the words before the first number.
_KIND_BEFORE_COLON = re.compile(r"^\s*([A-Za-z][\w ,.-]{0,39}?)\s*:")
_WORDS_BEFORE_NUMBER = re.compile(r"^\s*([A-Za-z][A-Za-z ,._-]{0,39}?)\s*(?=[\d(-]|$)")


def reason_kind(reason: str) -> str:
    """The reason's kind: its leading label, for counting decisions by why they happened.

    >>> reason_kind("ScaleUp: utilisation ratio 1.257, recommended 11, current 8")
    'ScaleUp'
    >>> reason_kind("fixed at 4")
    'fixed at'
    """
    for pattern in (_KIND_BEFORE_COLON, _WORDS_BEFORE_NUMBER):
        match = pattern.match(reason)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return reason.strip()[:40] or "(no reason)"


@dataclass(frozen=True)
class DecisionRow:
    """One capacity change of one policy, ready to print."""

    policy: str
    time_s: float
    target: str
    previous: int
    desired: int
    reason: str

    @property
    def change(self) -> int:
        return self.desired - self.previous

    @property
    def kind(self) -> str:
        return reason_kind(self.reason)


def rows_of(result: RunResult) -> list[DecisionRow]:
    """`result`'s decisions in time order (the loop records them in order)."""
    return [_row(result.policy, record) for record in result.decisions]


def _row(policy: str, record: ActuationRecord) -> DecisionRow:
    return DecisionRow(
        policy=policy,
        time_s=float(record.time_s),
        target=record.target,
        previous=int(record.previous),
        desired=int(record.desired),
        reason=record.reason,
    )


def kind_counts(rows: Iterable[DecisionRow]) -> list[tuple[str, int]]:
    """How many decisions each kind of reason made, most frequent first."""
    counts = Counter(row.kind for row in rows)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def decisions_csv(results: Sequence[RunResult]) -> str:
    """Every policy's decisions as CSV (`CSV_COLUMNS`), policies in report order.

    `time_s` counts from the start of the simulated window, like the report's plots.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in results:
        for row in rows_of(result):
            writer.writerow(
                (
                    row.policy,
                    f"{row.time_s:g}",
                    row.target,
                    row.previous,
                    row.desired,
                    f"{row.change:+d}",
                    row.kind,
                    row.reason,
                )
            )
    return buffer.getvalue()
