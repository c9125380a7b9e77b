"""The engine's SimPy environment, with a tighter loop to run to an event.

`Clock.run_to(until)` does what `simpy.Environment.run(until=event)` does for an
event that is already scheduled: it processes events in SimPy's own order
(time, priority, insertion id) and stops after `until`'s callbacks have run. It
loops inline instead of calling `step()` per event and raising `StopSimulation`
at the end, which is about a fifth of SimPy's cost per event. Only the order of
processing matters to a run, so its results are those of `run`; a failed event
that is not defused still crashes the run, as in `step()`.
"""

from __future__ import annotations

from heapq import heappop

import simpy
from simpy.events import URGENT, Event


class Clock(simpy.Environment):
    """A `simpy.Environment` with `run_to` (and `run_until_s`) for the engine's own loop."""

    def run_to(self, until: Event) -> None:
        """Process events in order up to and including `until` (scheduled, not yet processed).

        Raises:
            RuntimeError: `until` was not scheduled (the schedule ran out before it).
        """
        queue = self._queue
        while queue:
            now_s, _, _, event = heappop(queue)
            self._now = now_s
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
