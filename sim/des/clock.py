"""The engine's SimPy environment, with a tighter loop to run to an event.

`Clock.run_to(until)` does what `simpy.Environment.run(until=event)` does for an
event that is already scheduled: it processes events in SimPy's own order
(time, priority, insertion id) and stops after `until`'s callbacks have run. It
loops inline instead of calling `step()` per event and raising `StopSimulation`
at the end (M/M/16 benchmark: 313k -> 331k customers per CPU second). Only the
order of processing matters to a run, so its results are those of `run`; a failed
event that is not defused still crashes the run, as in `step()`.

`Clock.call_in(delay, callback, value)` schedules a plain call where a `Timeout`
made now would go (same time, NORMAL priority, next insertion id), without an
event object; `step()` and `run_to` run such entries. The engine schedules its
arrivals and instance-pool completions this way; `caller(env)` gives a plain
`simpy.Environment` the same through a `Timeout`.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT, Event, Timeout


class Clock(simpy.Environment):
    """A `simpy.Environment` with `run_to` (and `run_until_s`) for the engine's own loop."""

    def call_in(self, delay: float, callback: Callable[[Any], None], value: Any) -> None:
        """Schedule `callback(value)` in `delay` seconds, without an event object.

        It takes the place in the schedule a `Timeout(self, delay)` made now would
        take (same time, NORMAL priority, the next insertion id), so it runs exactly
        when that timeout's callbacks would; the engine schedules one per request.
        """
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        queue: list[Any] = self._queue  # SimPy's 4-tuples, and these 6-tuples
        heappush(queue, (self._now + delay, NORMAL, next(self._eid), None, callback, value))

    def step(self) -> None:
        """Process the next event or call (see `call_in`), as SimPy's `step`."""
        queue = self._queue
        if queue and queue[0][3] is None:
            entry = heappop(queue)
            self._now = entry[0]
            entry[4](entry[5])
            return
        super().step()

    def run_to(self, until: Event) -> None:
        """Process events in order up to and including `until` (scheduled, not yet processed).

        Raises:
            RuntimeError: `until` was not scheduled (the schedule ran out before it).
        """
        queue = self._queue
        while queue:
            entry = heappop(queue)
            self._now = entry[0]
            event = entry[3]
            if event is None:  # a call_in entry
                entry[4](entry[5])
                continue
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                # As simpy's step(): a copy of the failure, with a new traceback.
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
            if event is until:
                return
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}')

    def run_until_s(self, at_s: float) -> None:
        """Run until the clock reaches `at_s`, as `run(until=at_s)` does.

        Raises:
            ValueError: `at_s` is not later than now.
        """
        if at_s <= self._now:
            raise ValueError(f"until ({at_s}) must be greater than the current simulation time")
        # Before every regular event at that time, as SimPy's own `until` event.
        until = Event(self)
        until._ok = True
        until._value = None
        self.schedule(until, URGENT, at_s - self._now)
        self.run_to(until)


def caller(env: simpy.Environment) -> Callable[[float, Callable[[Any], None], Any], None]:
    """`env.call_in` for a `Clock`; for a plain environment, the same through a `Timeout`.

    Either way `callback(value)` runs where a `Timeout(env, delay)` made now would.
    """
    if isinstance(env, Clock):
        return env.call_in

    def call_in(delay: float, callback: Callable[[Any], None], value: Any) -> None:
        Timeout(env, delay, value).callbacks.append(lambda event: callback(event.value))

    return call_in
