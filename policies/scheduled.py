"""Scheduled scaling: cron windows that set min, max and/or desired floors.

Like AWS scheduled actions and KEDA's cron scaler: a window opens at each cron
fire time (in the entry's time zone, DST-aware via `croniter` and `zoneinfo`) and
lasts `duration_s`. While open it sets the bounds, and optionally a desired
floor, that the wrapped policy (e.g. an HPA) works within.

Wall-clock time is `Observation.epoch_s + time_s`. When the workload has no epoch
(`epoch_s is None`), t = 0 is taken as Monday 1970-01-05T00:00 UTC, so a trace
whose t = 0 is a midnight (ServeGen's is local midnight) lines up with day-of-week
and hour-of-day schedules.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator

from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.control import Band, QuietSpan
from sim.errors import PolicyError

#: t = 0 when the workload has no epoch: Monday 1970-01-05T00:00:00 UTC.
DEFAULT_EPOCH_S = 4 * 86400.0
_JUST_AFTER = timedelta(microseconds=1)


class ScheduleEntry(BaseModel):
    """One recurring window.

    Attributes:
        name: Identifies the entry in errors and decision reasons.
        cron: Five-field cron expression for the window's start (e.g. `0 9 * * MON-FRI`).
        timezone: IANA time zone the cron is read in (e.g. `Europe/Paris`).
        duration_s: How long each window stays open.
        min_replicas / max_replicas: Bounds while open.
        desired: Desired-capacity floor while open (the wrapped policy may go higher).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    cron: str
    timezone: str = "UTC"
    duration_s: float = Field(gt=0.0)
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=0)
    desired: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ScheduleEntry:
        where = f"schedule entry {self.name!r}"
        if not croniter.is_valid(self.cron):
            raise PolicyError(
                f"{where}: invalid cron expression {self.cron!r}; use five fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 9 * * MON-FRI'"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(
                f"{where}: unknown time zone {self.timezone!r}; use an IANA name "
                "such as 'UTC' or 'Europe/Paris'"
            ) from None
        if self.min_replicas is None and self.max_replicas is None and self.desired is None:
            raise PolicyError(f"{where}: set at least one of min_replicas, max_replicas, desired")
        low = self.min_replicas if self.min_replicas is not None else 0
        if self.max_replicas is not None and low > self.max_replicas:
            raise PolicyError(f"{where}: min_replicas {low} > max_replicas {self.max_replicas}")
        if (
            self.desired is not None
            and self.max_replicas is not None
            and (self.desired > self.max_replicas)
        ):
            raise PolicyError(f"{where}: desired {self.desired} > max_replicas {self.max_replicas}")
        return self


@dataclasses.dataclass
class _WindowCache:
    """The entry's last fire time <= t and next fire time > t (UTC seconds)."""

    last_fire_s: float
    next_fire_s: float


@dataclasses.dataclass(frozen=True)
class _Scope:
    """The scheduled bounds and floor for one set of pool bounds, constant on [from_s, until_s).

    No window opens or closes between `from_s` (the latest fire time <= t) and
    `until_s` (the earliest next fire or close of an open window), so the open
    entries and everything derived from them hold; `decide` reuses them there.
    """

    from_s: float
    until_s: float
    pool_low: int
    pool_high: int
    low: int
    high: int
    floor: int
    prefix: str  # the reason up to the inner policy's own


class ScheduledPolicy:
    """Applies cron-windowed bounds and floors around an optional inner policy.

    Parameters:
        entries: The windows. Several open at once combine: the highest min and
            desired floor, the lowest max; a floor above a cap wins (a scheduled
            job gets its capacity), the pool's own bounds always win.
        inner: The policy deciding within the scheduled bounds (it sees an
            observation whose min/max are the scheduled ones). Without one, the
            desired capacity is held, moved only into the bounds and floors.

    Edges: outside every window the pool's bounds apply unchanged; the cron is
    evaluated in the entry's time zone (DST transitions included).
    """

    def __init__(
        self,
        entries: tuple[ScheduleEntry, ...],
        inner: Policy | None = None,
        name: str = "scheduled",
    ) -> None:
        self.entries = entries
        self.inner = inner
        self.name = name
        self._zones = tuple(ZoneInfo(entry.timezone) for entry in entries)
        self._cache: list[_WindowCache | None] = [None] * len(entries)
        self._scope: _Scope | None = None
        # the inner policy's last request and the observation it saw (for `quiet_band`)
        self._inner_asked: tuple[int, Observation] | None = None

    def reset(self, context: PolicyContext) -> None:
        self._cache = [None] * len(self.entries)
        self._scope = None
        self._inner_asked = None
        if self.inner is not None:
            self.inner.reset(context)

    def _window(self, index: int, wall_s: float) -> _WindowCache:
        cached = self._cache[index]
        if cached is not None and cached.last_fire_s <= wall_s < cached.next_fire_s:
            return cached
        when = datetime.fromtimestamp(wall_s, tz=UTC).astimezone(self._zones[index])
        # Just after `when`, so a fire exactly at `when` counts as the last one.
        it = croniter(self.entries[index].cron, when + _JUST_AFTER)
        last = it.get_prev(datetime).timestamp()
        it = croniter(self.entries[index].cron, when)
        nxt = it.get_next(datetime).timestamp()
        window = _WindowCache(last, nxt)
        self._cache[index] = window
        return window

    def active(self, wall_s: float) -> tuple[ScheduleEntry, ...]:
        """Entries whose window is open at UTC time `wall_s`."""
        return tuple(
            entry
            for index, entry in enumerate(self.entries)
            if wall_s < self._window(index, wall_s).last_fire_s + entry.duration_s
        )

    def _scope_at(self, wall_s: float, pool_low: int, pool_high: int) -> _Scope:
        """The open entries' bounds and floor at `wall_s`, and how long they hold."""
        open_now = self.active(wall_s)
        low, high, floor = pool_low, pool_high, 0
        for entry in open_now:
            if entry.min_replicas is not None:
                low = max(low, entry.min_replicas)
            if entry.max_replicas is not None:
                high = min(high, entry.max_replicas)
            if entry.desired is not None:
                floor = max(floor, entry.desired)
        # A scheduled floor above a scheduled cap wins; the pool's own max always wins.
        low, floor = min(low, pool_high), min(floor, pool_high)
        high = max(high, low, floor)
        names = ",".join(entry.name for entry in open_now) or "none"
        from_s, until_s = -math.inf, math.inf
        for index, entry in enumerate(self.entries):
            window = self._window(index, wall_s)  # cached by `active`
            close_s = window.last_fire_s + entry.duration_s
            from_s = max(from_s, window.last_fire_s)
            until_s = min(until_s, window.next_fire_s, close_s if wall_s < close_s else math.inf)
        prefix = f"Scheduled[{names}] [{low},{high}] floor {floor}: "
        return _Scope(from_s, until_s, pool_low, pool_high, low, high, floor, prefix)

    def decide(self, observation: Observation) -> Decision:
        epoch = observation.epoch_s if observation.epoch_s is not None else DEFAULT_EPOCH_S
        wall_s = epoch + observation.time_s
        pool_low, pool_high = observation.min_replicas, observation.max_replicas
        scope = self._scope
        if (
            scope is None
            or not scope.from_s <= wall_s < scope.until_s
            or scope.pool_low != pool_low
            or scope.pool_high != pool_high
        ):
            scope = self._scope = self._scope_at(wall_s, pool_low, pool_high)
        low, high, floor = scope.low, scope.high, scope.floor
        if self.inner is not None:
            scoped = observation
            if low != pool_low or high != pool_high:
                scoped = observation.replace(min_replicas=low, max_replicas=high)
            inner = self.inner.decide(scoped)
            base, why, targets = inner.desired, inner.reason, inner.targets
            self._inner_asked = (base, scoped)
        else:
            base, why, targets = observation.desired, "hold", {}
        desired = min(max(base, floor, low), high)
        return Decision(desired, scope.prefix + why, targets)

    def quiet_band(self, observation: Observation) -> Band | None:
        """The inner policy's band (`sim.control.BandedPolicy`), when it asked for the
        capacity in force itself (not one a floor or bound replaced), up to the tick
        before the next window opens or closes."""
        asked, scope = self._inner_asked, self._scope
        quiet_band = getattr(self.inner, "quiet_band", None)
        if quiet_band is None or asked is None or scope is None:
            return None
        desired, seen = asked
        if seen.time_s != observation.time_s or desired != observation.desired:
            return None
        scoped = observation  # (after a change: as it left the fleet)
        if scope.low != observation.min_replicas or scope.high != observation.max_replicas:
            scoped = observation.replace(min_replicas=scope.low, max_replicas=scope.high)
        band: Band | None = quiet_band(scoped)
        if band is None or math.isinf(scope.until_s):
            return band
        epoch = observation.epoch_s if observation.epoch_s is not None else DEFAULT_EPOCH_S
        # ticks lie on whole seconds near k x interval: a second's margin keeps every
        # tick of the band before the scope's end
        until = max(0, math.floor((scope.until_s - epoch - 1.0) / observation.interval_s))
        if band.until_tick is not None:
            until = min(until, band.until_tick)
        return band._replace(until_tick=until)

    def pass_band(self, span: QuietSpan) -> None:
        self.inner.pass_band(span)  # type: ignore[union-attr]  # (it gave the band)


class ScheduledSpec(PolicySpecBase):
    """Spec of `ScheduledPolicy`; `inner` is any policy spec (by `kind`).

    Preset `scheduled`: an HPA (70% target) inside weekday business hours (09:00-18:00
    UTC, at least 2 replicas) and a Saturday 02:00 UTC batch window (4 replicas for 4 h).
    """

    kind: Literal["scheduled"] = "scheduled"
    entries: tuple[ScheduleEntry, ...] = Field(min_length=1)
    inner: SerializeAsAny[PolicySpecBase] | None = None

    @field_validator("inner", mode="before")
    @classmethod
    def _inner_spec(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from policies.kinds import spec_from_dict

            return spec_from_dict(value, source="scheduled.inner")
        return value

    @model_validator(mode="after")
    def _unique(self) -> ScheduledSpec:
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule entry names must be unique, got {names}")
        return self

    def build(self) -> Policy:
        inner = self.inner.build() if self.inner is not None else None
        return self.wrap(ScheduledPolicy(self.entries, inner, name=self.display_name()))
