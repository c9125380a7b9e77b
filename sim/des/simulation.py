"""One run of the SimPy engine: arrivals, routing, decision ticks, and the result.

SimPy is the only clock. The schedule holds one pending arrival at a time (each
arrival schedules the next), the pools' own events (service completions, node
boots, model loads, interruptions) and one pending decision tick. SimPy orders
simultaneous events by (time, priority, insertion id), so ties break the same way
on every run.

With a `spillover` endpoint, arrivals go through `router.SpilloverRouter`.

Decisions go through the shared control loop (`sim.control.ControlLoop`): this
module supplies only the reading at each tick and the pools as actuators. The
run is steppable (`advance` to the next tick, `read`, `record`), so a driver
other than `execute` can run the same loop.
"""

from __future__ import annotations

import math
from heapq import heappush
from typing import Any

from simpy.events import NORMAL, Timeout

from sim.capacity.pools import ServerlessEndpoint
from sim.contract import PRIMARY, SPILLOVER, Actuator, Observation, Policy
from sim.control import ControlLoop, Reading, drive
from sim.des.clock import Clock
from sim.des.eventlog import LogEntry, sorted_log
from sim.des.instance_pool import SimInstancePool
from sim.des.metrics import SeriesRecorder, latency_summary, observed_s, quantile
from sim.des.requests import SERVED, RequestBook, arrivals_from
from sim.des.router import SpilloverRouter
from sim.des.serverless import SimServerlessPool
from sim.des.streams import stream
from sim.engine import make_context
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

#: `Reading(...)` without the NamedTuple's Python-level `__new__` (once per tick)
_new_reading = tuple.__new__


class Simulation:
    """State of one run; `execute()` runs it to the workload's end.

    Args:
        scenario: The capacity model, SLO and decision interval.
        workload: The traffic to replay.
        policy: The scaling policy (reset here with `make_context`).
        seed: Seed of every random draw in the run.
        history: Traffic before the run, handed to the policy.
        record_log: Keep a time-stamped event log (slower; for tests and debugging).
    """

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
        record_log: bool = False,
    ) -> None:
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.env = Clock()
        arrivals = arrivals_from(workload, stream(seed, "workload"))
        self.book = RequestBook(arrivals)
        self.horizon_s = arrivals.duration_s
        self.missing = arrivals.missing
        self.log: list[tuple[float, str, str, str]] | None = [] if record_log else None
        self.main: SimInstancePool | SimServerlessPool
        if isinstance(scenario.pool, ServerlessEndpoint):
            self.main = SimServerlessPool(
                self.env, scenario.pool, self.book, seed, role="pool", log=self.log
            )
        else:
            self.main = SimInstancePool(self.env, scenario.pool, self.book, seed, log=self.log)
        self.spill: SimServerlessPool | None = None
        router: SpilloverRouter | None = None
        actuators: dict[str, Actuator] = {PRIMARY: self.main}
        if scenario.spillover is not None:
            # Scenario validation guarantees an instance pool with a distinct name here.
            assert isinstance(self.main, SimInstancePool)
            self.spill = SimServerlessPool(
                self.env, scenario.spillover, self.book, seed, role="spillover", log=self.log
            )
            router = SpilloverRouter(self.main, self.spill, self.log)
            actuators[SPILLOVER] = self.spill
        context = make_context(scenario, workload, stream(seed, "policy"), history=history)
        self.loop = ControlLoop(policy, actuators, context)
        self.loop.reset()
        self.interval_s = scenario.decision_interval_s
        self.series = SeriesRecorder()
        self._next = 0
        self._arrival_s = self.book.arrival_s
        self._interval_arrivals = 0
        self._tick_index = 0
        self._last_tick_s = 0.0
        self._last_busy = (0.0, 0.0)
        self._route = self.main.submit if router is None else router.submit
        # Without a router, the main pool takes the arrivals due before the next
        # scheduled SimPy event in one call.
        self._submit_until = self.main.submit_until if router is None else None
        self._started = False
        self._done = False

    # --- run ---------------------------------------------------------------------------

    def execute(self) -> tuple[RunResult, tuple[LogEntry, ...]]:
        """Run to the horizon; return the result and the (possibly empty) event log."""
        drive(self, self.loop)
        return self.result(), sorted_log(self.log) if self.log is not None else ()

    def advance(self) -> float | None:
        """Run SimPy to the next decision tick and return its time, or None at the end.

        The tick is an ordinary SimPy event at (time, NORMAL priority, insertion id),
        so events due at the same instant keep the order they would have in one
        uninterrupted run. At the end, the last (partial) interval is recorded
        without a decision.
        """
        env = self.env
        if self._done:
            return None
        if not self._started:
            self._started = True
            if self._arrival_s:
                env.call_in(self._arrival_s[0], self._on_arrival, None)
        due_s = (self._tick_index + 1) * self.interval_s
        if due_s < self.horizon_s:
            self._tick_index += 1
            env.run_to(Timeout(env, due_s - env.now))
            return env.now
        env.run_until_s(self.horizon_s)
        self._done = True
        if self._last_tick_s < self.horizon_s - 1e-9:
            self.record(self.horizon_s, None)  # the last, partial interval: no decision
        return None

    def _on_arrival(self, _: None) -> None:
        env, arrival_s, route = self.env, self._arrival_s, self._route
        index, now_s = self._next, env._now
        count = len(arrival_s)
        # Arrivals due before the next scheduled SimPy event are handled here, in
        # order, at their own times (the trace's time stamps, not env.now, which
        # reaches them as now + delta and may round one ulp below): nothing else can
        # happen in between. The pools take the time as an argument and schedule
        # what they start relative to it, so this equals one SimPy event per
        # arrival, minus SimPy's overhead.
        submit_until = self._submit_until
        if submit_until is not None:
            stop = submit_until(index, env.peek)
            self._interval_arrivals += stop - index
            index = stop
        else:
            route(index, arrival_s[index])
            index += 1
            handled = 1
            peek = env.peek
            while index < count and arrival_s[index] < peek():
                route(index, arrival_s[index])
                index += 1
                handled += 1
            self._interval_arrivals += handled
        self._next = index
        if index < count:
            # env.call_in(arrival_s[index] - now_s, ...), inline: once per arrival batch
            at_s = now_s + (arrival_s[index] - now_s)
            queue: list[Any] = env._queue  # SimPy's 4-tuples and call_in's 6-tuples
            heappush(queue, (at_s, NORMAL, next(env._eid), None, self._on_arrival, None))

    # --- what the control loop sees ----------------------------------------------------

    def actuators(self) -> dict[str, Actuator]:
        return dict(self.loop.actuators)

    def read(self, now_s: float) -> Reading:
        """The metrics of the interval that ends at `now_s`."""
        main = self.main
        if self.spill is not None:
            self.spill.advance(now_s)
        busy_s, slot_s = main.busy_areas(now_s)
        busy_delta, slot_delta = busy_s - self._last_busy[0], slot_s - self._last_busy[1]
        utilisation = busy_delta / slot_delta if slot_delta > 0.0 else None
        # Demand over the interval's observed seconds: a collection gap in the trace
        # is no metric (None), not zero load.
        seen_s = observed_s(self.missing, self._last_tick_s, now_s)
        demand_rps = self._interval_arrivals / seen_s if seen_s > 1e-9 else None
        p95 = quantile(self.book.interval_latencies, 0.95)
        return _new_reading(
            Reading,
            (
                now_s,  # time_s
                demand_rps,
                utilisation,
                main.queue_len(now_s),
                main.ready,
                main.pending,
                None if p95 != p95 else p95,  # p95_latency_s; NaN: none finished
                self.spill.busy if self.spill is not None else 0,  # spillover_in_flight
            ),
        )

    def record(self, now_s: float, observation: Observation | Reading | None) -> None:
        """Append a series row (the state after the decision) and start the next interval."""
        main = self.main
        if observation is None:
            observation = self.read(now_s)
        cost = main.cost_usd(now_s)
        if self.spill is not None:
            cost += self.spill.cost_usd(now_s)
        self.series.add(
            now_s,
            math.nan if observation.demand_rps is None else observation.demand_rps,
            main.ready,
            main.desired,
            main.pending,
            math.nan if observation.p95_latency_s is None else observation.p95_latency_s,
            cost,
        )
        self._last_tick_s = now_s
        self._last_busy = main.busy_areas(now_s)
        self._interval_arrivals = 0
        self.book.new_interval()

    # --- result ------------------------------------------------------------------------

    def result(self) -> RunResult:
        """The run's result (call once the run has reached its horizon)."""
        end_s, book, main, spill = self.horizon_s, self.book, self.main, self.spill
        main.finish(end_s)
        cost_by_pool = {main.name: main.cost_usd(end_s, final=True)}
        cold_starts = main.cold_starts if isinstance(main, SimServerlessPool) else 0
        actions = main.actions
        if spill is not None:
            spill.finish(end_s)
            cost_by_pool[spill.name] = spill.cost_usd(end_s, final=True)
            cold_starts += spill.cold_starts
            actions += spill.actions
        gpu_hours = main.ledger.gpu_hours(end_s) if isinstance(main, SimInstancePool) else 0.0
        arrivals = len(book.arrival_s)
        p50, p95, p99, within = latency_summary(
            book.latency_s, book.outcome, self.scenario.slo.latency_s, SERVED
        )
        finished = book.served + book.dropped
        notes = self.loop.run_notes()
        return RunResult(
            policy=self.loop.policy.name,
            engine="des",
            seed=self.seed,
            cost_usd=sum(cost_by_pool.values()),
            cost_by_pool=cost_by_pool,
            gpu_hours=gpu_hours,
            arrivals=arrivals,
            served=book.served,
            dropped=book.dropped,
            in_flight=arrivals - finished,
            slo_attainment=within / finished if finished else 1.0,
            slo_target=self.scenario.slo.target_attainment,
            p50_latency_s=p50,
            p95_latency_s=p95,
            p99_latency_s=p99,
            scaling_actions=actions,
            series=self.series.freeze(),
            cold_starts=cold_starts,
            retried=book.retried,
            notes=tuple(notes),
            decisions=tuple(self.loop.records),
        )
