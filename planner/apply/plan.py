"""The diff between intended and live state, and its all-or-nothing execution.

Every live resource scaleplan manages is an item of a `Driver`: a kind (an ASG's
bounds, one scaling policy, one alarm, one scheduled action...), a key, and a
state (a JSON-like dict, the arguments AWS takes for it). A driver reads the
items that exist, writes one, deletes one. `diff` compares the intent with what
is live and yields ordered `Change`s; `execute` applies them one by one and, if
one fails, restores every change already made in reverse order, so the stack is
never left half-applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

State = dict[str, Any]
Action = Literal["create", "update", "delete"]


class Driver(Protocol):
    """Reads and writes the live items of one kind, on one resource."""

    kind: str

    def read(self) -> dict[str, State]:
        """Managed items that exist now, by key."""
        ...

    def write(self, key: str, state: State) -> None:
        """Create or replace the item `key` with `state`."""
        ...

    def delete(self, key: str) -> None:
        """Remove the item `key`."""
        ...


@dataclass(frozen=True)
class Change:
    """One item to create, update or delete, with its state before and after."""

    kind: str
    key: str
    action: Action
    before: State | None
    after: State | None

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        lines = [f"{sign} {self.kind} {self.key}"]
        if self.action == "update" and self.before is not None and self.after is not None:
            for field in sorted(set(self.before) | set(self.after)):
                old, new = self.before.get(field), self.after.get(field)
                if not matches(old, new):
                    lines.append(f"    {field}: {_short(old)} -> {_short(new)}")
        else:
            shown = self.after if self.action == "create" else self.before
            for field, value in sorted((shown or {}).items()):
                if value is not None:
                    lines.append(f"    {field}: {_short(value)}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def matches(live: Any, desired: Any) -> bool:
    """True when `live` already has every value `desired` sets.

    Keys of `desired` whose value is None must be absent (or None) in `live`;
    keys only in `live` are AWS's own (ARNs, defaults) and are ignored. Numbers
    compare as numbers (AWS returns 60.0 for 60).
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(matches(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list | tuple):
        if not isinstance(live, list | tuple) or len(live) != len(desired):
            return False
        return all(matches(a, b) for a, b in zip(live, desired, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired or live == desired
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return math.isclose(float(live), float(desired), rel_tol=1e-9, abs_tol=1e-9)
    return bool(live == desired)


@dataclass(frozen=True)
class Plan:
    """Ordered changes; empty when the live stack already matches the intent."""

    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def describe(self) -> str:
        if self.empty:
            return "no changes: the live stack already matches the policy"
        return "\n".join(change.describe() for change in self.changes)


def diff(drivers: Sequence[Driver], intent: Mapping[str, Mapping[str, State | None]]) -> Plan:
    """Changes that make the live items equal `intent` (kind -> key -> state or None).

    Drivers are given in apply order (bounds before policies, policies before the
    alarms that call them); creates and updates follow that order, deletes come
    after them in reverse order (alarms before the policies they call). A key
    whose state is None must not exist; a live key absent from the intent of a
    driver that is in `intent` is deleted.
    """
    upserts: list[Change] = []
    deletes: list[Change] = []
    for driver in drivers:
        wanted = intent.get(driver.kind)
        if wanted is None:
            continue
        live = driver.read()
        for key, state in wanted.items():
            before = live.get(key)
            if state is None:
                if before is not None:
                    deletes.append(Change(driver.kind, key, "delete", before, None))
            elif before is None:
                upserts.append(Change(driver.kind, key, "create", None, state))
            elif not matches(before, state):
                upserts.append(Change(driver.kind, key, "update", before, state))
        for key in sorted(set(live) - set(wanted)):
            deletes.append(Change(driver.kind, key, "delete", live[key], None))
    return Plan(tuple(upserts + deletes[::-1]))


class PlanFailed(Exception):
    """A change failed; the changes made before it were restored (except `unrestored`)."""

    def __init__(self, change: Change, cause: BaseException, unrestored: list[Change]) -> None:
        self.change = change
        self.cause = cause
        self.unrestored = unrestored
        extra = (
            ""
            if not unrestored
            else f"; COULD NOT RESTORE {', '.join(c.key for c in unrestored)}: check them by hand"
        )
        super().__init__(
            f"{change.action} {change.kind} {change.key} failed ({type(cause).__name__}: "
            f"{cause}); the changes made before it were restored{extra}"
        )


#: Called with (change, outcome) after every step: "applied", "failed", "restored",
#: "restore-failed". The audit log listens here.
Listener = Callable[[Change, str], None]
Retry = Callable[[Callable[[], None]], None]


def _direct(step: Callable[[], None]) -> None:
    step()


def execute(
    plan: Plan,
    drivers: Sequence[Driver],
    *,
    listener: Listener,
    retry: Retry = _direct,
) -> list[Change]:
    """Apply `plan` in order; on a failure restore every applied change, newest first.

    Raises:
        PlanFailed: a change failed (after `retry` gave up); the stack is back to
            its state before the plan, except the changes named in `unrestored`.
    """
    by_kind = {d.kind: d for d in drivers}
    done: list[Change] = []
    for change in plan.changes:
        driver = by_kind[change.kind]
        try:
            retry(lambda d=driver, c=change: _forward(d, c))  # type: ignore[misc]
        except Exception as exc:
            listener(change, "failed")
            unrestored = _restore(done, by_kind, listener, retry)
            raise PlanFailed(change, exc, unrestored) from exc
        done.append(change)
        listener(change, "applied")
    return done


def _forward(driver: Driver, change: Change) -> None:
    if change.after is None:
        driver.delete(change.key)
    else:
        driver.write(change.key, change.after)


def _restore(
    done: list[Change], by_kind: Mapping[str, Driver], listener: Listener, retry: Retry
) -> list[Change]:
    unrestored: list[Change] = []
    for change in reversed(done):
        driver = by_kind[change.kind]
        undo = Change(change.kind, change.key, change.action, change.after, change.before)
        try:
            retry(lambda d=driver, c=undo: _forward(d, c))  # type: ignore[misc]
        except Exception:
            listener(change, "restore-failed")
            unrestored.append(change)
            continue
        listener(change, "restored")
    return unrestored
