"""The one control loop: observe -> decide -> check -> clamp -> act -> record.

Every place a policy decides runs this loop: the SimPy engine, the fluid engine,
the Gymnasium env and the live controller. Each supplies only a `Reading` (what
its metrics say at a decision point) and its named actuators; the loop builds the
`Observation`, asks the policy, checks the decision (an integer, finite, a known
target), clamps it to the target's bounds with a note in the reason, applies it
through `Actuator.set_desired` and records every change with its reason. The
history the next observation carries is appended here too, so every engine shows
policies the same history.

The decision and the actuation are separate steps (`decide`, `act`), as the HPA
separates its replica calculation from its one `Scales().Update` call, so a
driver (a Gymnasium env, a shadow-mode controller) can look at or replace a
decision before it is applied; `step` does both.

A policy that knows in advance when its request may next change (a schedule
replay, a fixed capacity: `QuietPolicy`) lets `drive` skip the ticks in between:
a tick at which the policy would ask for the capacity in force changes nothing
but the history and the decision count, so a run that can (`QuietRun`) advances
over those intervals in one compiled call and the loop records them in bulk
(`ControlLoop.pass_quietly`). A reactive policy that knows which readings leave
its request as it is (`BandedPolicy`: a utilisation inside a threshold policy's
band, inside the HPA's tolerance) names them as a `Band`; the run advances while
the readings stay inside it and the policy catches up on what those readings
would have changed in its state (`pass_band`). Every decision that may change
something is still taken by `step`.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Literal, NamedTuple, Protocol, cast

from sim.contract import (
    PRIMARY,
    Actuator,
    Decision,
    MetricHistory,
    Observation,
    Policy,
    PolicyContext,
)
from sim.detector import ResidualDetector
from sim.errors import PolicyError

#: Intervals of history in every Observation (one hour at 15 s), the same everywhere.
OBSERVATION_HISTORY_LEN = 240
_CLAMPED_NOTE = "{count} decisions were out of bounds and clamped"
# `Observation.build` without its call and checks (see `ControlLoop.observe`)
_new_observation = object.__new__
_set_fields = object.__setattr__
_CLAMPED_PATTERN = re.compile(r"^(\d+) decisions were out of bounds and clamped$")
#: `QuietPolicy.next_change_tick`'s None (no change ever again): a tick no run reaches.
_NEVER = sys.maxsize


def decision_tick(time_s: float, interval_s: float) -> int:
    """The decision tick at `time_s` (tick k is at k x `interval_s`, rounded to even)."""
    return round(time_s / interval_s)


def clamped_in_notes(notes: Sequence[str]) -> int:
    """How many decisions a run's notes say the loop clamped (0 when none)."""
    return sum(int(m.group(1)) for note in notes if (m := _CLAMPED_PATTERN.match(note)))


class Reading(NamedTuple):
    """What an engine (or the live stack) measures at one decision point.

    The loop adds the rest of the `Observation`: interval, desired and bounds of
    the primary target, the replica capacity and epoch from the context, history.
    A NamedTuple (immutable, built in a fraction of a frozen dataclass's time):
    the engines build one every decision interval.
    """

    time_s: float
    demand_rps: float | None
    utilisation: float | None
    queue_len: int
    ready: int
    pending: int
    p95_latency_s: float | None = None
    spillover_in_flight: int = 0


class QuietPolicy(Protocol):
    """A policy that knows when its request may next change (`SchedulePolicy`,
    `FixedPolicy`): an optional addition to `Policy`, which the loop looks for.

    `next_change_tick(tick)` is the first decision tick after `tick` (see
    `decision_tick`) at which `decide` may return another decision than at `tick`,
    given the same bounds; None when it never will. The loop does not ask the
    policy at the ticks in between.
    """

    def next_change_tick(self, tick: int) -> int | None: ...


BandMetric = Literal["utilisation", "demand", "demand_per_ready", "busy"]


class Band(NamedTuple):
    """Readings after which a `BandedPolicy` would again ask for the capacity in force.

    A tick is quiet when its reading's ready and pending replicas add up to
    `replicas` (a node coming up moves one to the other) and its `metric` (the
    utilisation, the demand, the demand per ready replica, or the busy slots' measure
    ready x utilisation; never a missing one) lies within [`low`, `high`], or within
    [`hold_low`, `hold_high`] before `hold_until_s`; a reading within [`low`, `high`]
    at t moves `hold_until_s` to t + `renew_s` when that is later (the HPA's
    scale-down window: a recommendation of the current count keeps the count for one
    window). While `ready` replicas are ready the band reaches up to `ready_high` (the
    HPA with pods pending: it recounts them at 0 above its tolerance), and while any
    are pending it takes in a reading whose ready x metric is at most
    `pending_busy_high` (a count that keeps a scale-out in flight). A reading above
    the band is quiet while the run of readings above it that it belongs to began
    less than `above_for_s` before it (an alarm's clock: `above_since_s` is when a run
    the span starts in began, None when the last reading was not above), and likewise
    below the band with `below_for_s` and `below_since_s` (before the hold band). No
    tick at or after `until_tick` is quiet (None: any).

    Whatever the metric, the reading's demand (with `demand_window_s`, its mean over
    that window as `sim.contract.window_demand_rps` takes it; the window must lie
    within the history the observations keep) must be at most `demand_high`, counting
    each queued request at `queue_rate` (a backlog to drain); at or above
    `demand_renew` it renews the hold as a metric within [`low`, `high`] does. A
    missing one (none reported in the window) leaves the band, or with
    `missing_demand` "check" is left to the metric, or with "hold" passes at once (the
    policy holds without a demand metric). With a `detector`, the run scores each
    demand in it against its baseline (`sim.detector.ResidualDetector.follow` and
    `score`): one it finds no anomaly in passes whatever `demand_high`; an anomaly
    passes only within [`low`, `high`] (or the pending replicas' limit) and while the
    demand it implies (`ResidualDetector.implied`) is at most `anomaly_high`; the
    detector keeps the readings that passed, as the policy's `decide` would have. With
    `demand_window_s`, the span the policy is handed carries that mean at each of its
    ticks (`QuietSpan.window_demand_rps`).

    A band may be narrower than the readings the policy would hold at (an edge rounded
    inwards): a tick outside it is decided as usual.
    """

    metric: BandMetric
    low: float
    high: float
    replicas: int
    ready: int | None = None
    ready_high: float = -math.inf
    renew_s: float = 0.0
    hold_low: float = math.inf
    hold_high: float = -math.inf
    hold_until_s: float = -math.inf
    above_for_s: float = -math.inf
    above_since_s: float | None = None
    below_for_s: float = -math.inf
    below_since_s: float | None = None
    until_tick: int | None = None
    demand_high: float = math.inf
    queue_rate: float = 0.0
    demand_window_s: float | None = None
    demand_renew: float = math.inf
    missing_demand: Literal["leave", "check", "hold"] = "leave"
    detector: ResidualDetector | None = None
    pending_busy_high: float = -math.inf
    anomaly_high: float = -math.inf


class BandedPolicy(Protocol):
    """A policy that names the readings at which it would not change its request (an
    optional addition to `Policy`, which the loop looks for).

    `quiet_band(observation)`, asked right after `decide` returned the capacity in
    force, gives the `Band` of the ticks that follow at which `decide` would again
    return it (None: none known). `observation` is the one `decide` saw or, when the
    decision changed the capacity, that one as the change left it: the new desired
    count and the ready and pending replicas after it. The loop then does not ask it
    at those ticks but hands it their readings, oldest first (`pass_band`): its state
    must become what those `decide` calls would have made it.
    """

    def quiet_band(self, observation: Observation) -> Band | None: ...

    def pass_band(self, span: QuietSpan) -> None: ...


class QuietSpan(NamedTuple):
    """Decision intervals a run advanced without a decision, oldest first: the time of
    the tick that ends each, its demand (None: not observed), utilisation (NaN: no
    ready slot), ready replicas and queue, as the `Reading` there would say; for a
    band that names a demand window, the mean demand over it at each tick as the
    tick's observation would have read it (`sim.contract.window_demand_rps`; None:
    none reported), else None."""

    time_s: list[float]
    demand_rps: list[float | None]
    utilisation: list[float]
    ready: list[int]
    queue_len: list[int]
    window_demand_rps: list[float | None] | None = None


@dataclass(frozen=True)
class ActuationRecord:
    """One accepted capacity change of one target."""

    time_s: float
    target: str
    previous: int
    desired: int
    reason: str


class ControlLoop:
    """Drives one policy against named actuators.

    Args:
        policy: The scaling policy (reset by `reset`).
        actuators: Named targets; `PRIMARY` is the one `Decision.desired` sets.
        context: What the policy may know before the run; its interval, replica
            capacity and epoch also go into every observation.
        history_len: Intervals kept in `Observation.history`.
    """

    def __init__(
        self,
        policy: Policy,
        actuators: Mapping[str, Actuator],
        context: PolicyContext,
        *,
        history_len: int = OBSERVATION_HISTORY_LEN,
    ) -> None:
        if PRIMARY not in actuators:
            raise ValueError(
                f"the control loop needs a {PRIMARY!r} actuator, got {sorted(actuators)}"
            )
        self.policy = policy
        self.actuators = dict(actuators)
        self._primary = self.actuators[PRIMARY]
        self.context = context
        # what every observation repeats from the context, read once
        self._interval_s = context.interval_s
        self._capacity_rps = context.replica_capacity_rps
        self._epoch_s = context.epoch_s
        self.history = MetricHistory(history_len)
        self.records: list[ActuationRecord] = []
        self.notes: list[str] = []
        self.clamped = 0
        self.decisions = 0
        self._next_change = getattr(policy, "next_change_tick", None)
        self._quiet_band = getattr(policy, "quiet_band", None)
        # the observation of the last decision `step` took (what `band_after` reads)
        self._observed: Observation | None = None
        # the last decision's primary request, when `step` took it as it came (None:
        # checked or with other targets, so the loop asks again at the next tick)
        self._asked: int | None = None

    def reset(self) -> None:
        """Start the run: hand the policy its context."""
        self.policy.reset(self.context)

    # --- the loop ---------------------------------------------------------------------

    def observe(self, reading: Reading) -> Observation:
        """The observation the policy sees for `reading`.

        Built as `Observation.build` builds one (every field, no dataclass
        `__init__`), with the fields in one dict display: this runs every decision
        interval of every engine (`tests/sim/test_control.py` checks it against the
        dataclass constructor).
        """
        primary = self._primary
        low, high = primary.bounds()
        time_s, demand_rps, utilisation, queue_len, ready, pending, p95_s, spill = reading
        observation = _new_observation(Observation)
        _set_fields(
            observation,
            "__dict__",
            {
                "time_s": time_s,
                "interval_s": self._interval_s,
                "demand_rps": demand_rps,
                "utilisation": utilisation,
                "queue_len": queue_len,
                "ready": ready,
                "pending": pending,
                "desired": primary.current(),
                "min_replicas": low,
                "max_replicas": high,
                "replica_capacity_rps": self._capacity_rps,
                "p95_latency_s": p95_s,
                "epoch_s": self._epoch_s,
                "history": self.history.view(),
                "spillover_in_flight": spill,
            },
        )
        return observation

    def decide(self, observation: Observation) -> Decision:
        """Ask the policy and check what it returned."""
        decision = self.policy.decide(observation)
        self.decisions += 1
        return check_decision(self.policy.name, decision)

    def act(self, observation: Observation, decision: Decision) -> None:
        """Clamp and apply `decision`, then record the interval in the history."""
        self._asked = None
        now_s, current = observation.time_s, observation.desired
        desired = decision.desired
        if desired != current or not (
            observation.min_replicas <= desired <= observation.max_replicas
        ):
            self._actuate(PRIMARY, desired, decision.reason, now_s)
        for target, desired in decision.targets.items():
            if target == PRIMARY:
                raise PolicyError(
                    f"policy {self.policy.name!r} set the primary target {PRIMARY!r} in "
                    "Decision.targets; use Decision.desired"
                )
            if target not in self.actuators:
                self.note(
                    f"policy set target {target!r}, which this scenario does not have "
                    f"(targets: {', '.join(sorted(self.actuators))}); ignored"
                )
                continue
            self._actuate(target, desired, decision.reason, now_s)
        self.history.append(
            now_s, observation.demand_rps, observation.utilisation, observation.ready, current
        )

    def step(self, reading: Reading) -> Observation:
        """One decision interval: observe, decide, check, clamp, act, record."""
        observation = self.observe(reading)
        decision = self.policy.decide(observation)
        self.decisions += 1  # `decide`, inline: this runs every interval
        if type(decision) is not Decision or type(decision.desired) is not int or decision.targets:
            self.act(observation, check_decision(self.policy.name, decision))
            return observation
        # `act` for the common case `check_decision` passes as is: only the primary target
        now_s, current = observation.time_s, observation.desired
        desired = decision.desired
        if desired != current or not (
            observation.min_replicas <= desired <= observation.max_replicas
        ):
            self._actuate(PRIMARY, desired, decision.reason, now_s)
        self._asked = desired
        self._observed = observation
        self.history.append(
            now_s, observation.demand_rps, observation.utilisation, observation.ready, current
        )
        return observation

    # --- quiet spans ------------------------------------------------------------------

    @property
    def may_be_quiet(self) -> bool:
        """Whether the policy says when its request may change (`QuietPolicy`) or at
        which readings it would not (`BandedPolicy`)."""
        return self._next_change is not None or self._quiet_band is not None

    def _holds(self) -> bool:
        """Whether `step` took the last request as it came and it is the capacity in
        force, within bounds: then a tick at which the policy asks for it again
        actuates nothing, records nothing and adds no note."""
        asked = self._asked
        if asked is None:
            return False
        primary = self._primary
        low, high = primary.bounds()
        return asked == primary.current() and low <= asked <= high

    def band_after(
        self, now_s: float, replicas: Callable[[], tuple[int, int]] | None = None
    ) -> Band | None:
        """The `Band` of the ticks after the decision just taken at `now_s` at which a
        `BandedPolicy` would ask for the capacity in force again; None when there is
        none (another policy, no band known, a decision the loop clamped).

        After a change the policy is shown the observation as the change left it: the
        new desired count, and the ready and pending replicas `replicas()` gives (None:
        no band after a change).
        """
        quiet_band, observation = self._quiet_band, self._observed
        if quiet_band is None or observation is None or observation.time_s != now_s:
            return None
        if not self._holds():
            return None
        asked = self._asked
        if observation.desired != asked:
            if replicas is None:
                return None
            ready, pending = replicas()
            observation = observation.replace(desired=asked, ready=ready, pending=pending)
        return cast(Band | None, quiet_band(observation))

    def quiet_until(self, now_s: float) -> int | None:
        """The first tick after the decision just taken at `now_s` at which the policy
        may ask for another capacity, when the ticks before it need no decision; None
        when the next tick does.

        A tick needs none when the policy would ask for what is in force (`step`
        took its last request as it came, in bounds, and nothing has changed it):
        such a decision actuates nothing, records nothing and adds no note.
        """
        next_change = self._next_change
        if next_change is None or not self._holds():
            return None
        tick = decision_tick(now_s, self._interval_s)
        until = next_change(tick)
        if until is None:
            return _NEVER
        return until if until > tick + 1 else None

    def pass_quietly(self, span: QuietSpan, band: Band | None = None) -> None:
        """Record the intervals of `span`, in which the policy was not asked: what `step`
        records for a decision that changes nothing (the history sample of each, the
        decision count); with a `band`, the span was the policy's band and it catches
        up on its readings (`BandedPolicy.pass_band`)."""
        desired = self._primary.current()
        self.history.extend(span.time_s, span.demand_rps, span.utilisation, span.ready, desired)
        self.decisions += len(span.time_s)
        if band is not None:
            cast(BandedPolicy, self.policy).pass_band(span)

    # --- helpers ----------------------------------------------------------------------

    def _actuate(self, target: str, desired: int, reason: str, now_s: float) -> None:
        actuator = self.actuators[target]
        low, high = actuator.bounds()
        if desired > high:
            reason = f"{reason}; clamped {desired}->{high} (TooManyReplicas)"
            desired, self.clamped = high, self.clamped + 1
        elif desired < low:
            reason = f"{reason}; clamped {desired}->{low} (TooFewReplicas)"
            desired, self.clamped = low, self.clamped + 1
        previous = actuator.current()
        if desired == previous:
            return
        actuator.set_desired(desired, reason, now_s)
        self.records.append(ActuationRecord(now_s, target, previous, desired, reason))

    def note(self, note: str) -> None:
        """Add a run note once."""
        if note not in self.notes:
            self.notes.append(note)

    def run_notes(self) -> list[str]:
        """The notes for the `RunResult`, the clamp count included."""
        notes = list(self.notes)
        if self.clamped:
            notes.append(_CLAMPED_NOTE.format(count=self.clamped))
        return notes


class SteppableRun(Protocol):
    """An engine run that a driver advances one decision interval at a time.

    `advance` runs the dynamics to the next decision point and returns its time
    (None once the horizon is reached); `read` gives the metrics there; `record`
    keeps the interval's series row once the decision is applied.
    """

    def actuators(self) -> Mapping[str, Actuator]: ...

    def advance(self) -> float | None: ...

    def read(self, now_s: float) -> Reading: ...

    def record(self, now_s: float, observation: Observation) -> None: ...


class QuietRun(SteppableRun, Protocol):
    """A steppable run that can also advance over intervals with no decision to take.

    `quiet` says whether it can at all (a run whose dynamics or actuators change
    between decisions by themselves cannot); `advance_quiet(before_tick, most)`
    advances over the next intervals whose ticks come before `before_tick` (at most
    `most` of them; the last, partial interval never), keeping the capacity in force,
    and returns what their readings said (None: it advanced none). Their series rows
    are the run's to keep, as `record` keeps them after a decision that changes nothing.
    With a `band`, it also stops at the first interval whose reading leaves the band;
    that interval is advanced, and the next `advance` returns its end without running
    it again, so the policy decides there.
    """

    quiet: bool

    def advance_quiet(
        self, before_tick: int, most: int | None = None, band: Band | None = None
    ) -> QuietSpan | None: ...

    def ready_pending(self) -> tuple[int, int]:
        """The primary pool's ready and pending replicas now, after the last decision."""
        ...


def drive(run: SteppableRun, loop: ControlLoop) -> None:
    """Run `loop` over `run` to its horizon: the whole of every engine's decision path.

    With a `QuietPolicy` and a `QuietRun`, the ticks at which the policy has nothing
    to decide are passed over (`pass_quiet`); the rest are `step`ped.
    """
    advance, read, step, record = run.advance, run.read, loop.step, run.record
    quiet = quiet_run(run, loop)
    if quiet is None:
        while (now_s := advance()) is not None:
            record(now_s, step(read(now_s)))
        return
    while (now_s := advance()) is not None:
        record(now_s, step(read(now_s)))
        pass_quiet(quiet, loop, now_s)


def quiet_run(run: SteppableRun, loop: ControlLoop) -> QuietRun | None:
    """`run` when it and `loop`'s policy allow quiet spans, else None."""
    if not loop.may_be_quiet or not getattr(run, "quiet", False):
        return None
    return cast(QuietRun, run)  # it says it is quiet: it has `advance_quiet`


def pass_quiet(run: QuietRun, loop: ControlLoop, now_s: float, most: int | None = None) -> bool:
    """After the decision at `now_s`, advance `run` over the intervals (at most `most`)
    whose ticks need no decision, recording them in `loop`; whether it advanced any."""
    band = loop.band_after(now_s, run.ready_pending)
    if band is not None:
        span = run.advance_quiet(_NEVER if band.until_tick is None else band.until_tick, most, band)
        if span is None:
            return False
        loop.pass_quietly(span, band)
        return True
    before_tick = loop.quiet_until(now_s)
    if before_tick is None:
        return False
    span = run.advance_quiet(before_tick, most)
    if span is None:
        return False
    loop.pass_quietly(span)
    return True


def check_decision(policy_name: str, decision: object) -> Decision:
    """A `Decision` whose desired counts are integers (numpy ints accepted, not bools).

    Raises:
        PolicyError: Not a Decision, or a desired count that is not a finite integer.
    """
    if type(decision) is Decision and type(decision.desired) is int and not decision.targets:
        return decision  # the common case, checked in one line: this runs every interval
    if not isinstance(decision, Decision):
        raise PolicyError(
            f"policy {policy_name!r} returned {type(decision).__name__}, not a Decision"
        )
    values = {PRIMARY: decision.desired, **dict(decision.targets)}
    cleaned: dict[str, int] = {}
    for target, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Integral | float):
            raise PolicyError(
                f"policy {policy_name!r} asked for {value!r} replicas of {target!r}; "
                "desired capacity must be an integer"
            )
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            raise PolicyError(
                f"policy {policy_name!r} asked for {value!r} replicas of {target!r}; "
                "desired capacity must be a finite whole number"
            )
        cleaned[target] = int(value)
    if type(decision.desired) is int and all(type(v) is int for v in decision.targets.values()):
        return decision
    primary = cleaned.pop(PRIMARY)
    return Decision(primary, decision.reason, cleaned)
