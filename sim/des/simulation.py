"""One run of the SimPy engine: arrivals, routing, decision ticks, and the result.

SimPy is the only clock. The schedule holds one pending arrival at a time (each
arrival schedules the next), the pools' own events (service completions, node
boots, model loads, interruptions) and one pending decision tick. SimPy orders
simultaneous events by (time, priority, insertion id), so ties break the same way
on every run.

With a `spillover` endpoint, arrivals go through `router.SpilloverRouter`.
"""

from __future__ import annotations

import math
from collections import deque

import simpy
from simpy.events import Event, Timeout

from policies.base import Decision, MetricSample, Observation, Policy
from sim.capacity.pools import ServerlessEndpoint
from sim.des.eventlog import LogEntry, sorted_log
from sim.des.instance_pool import SimInstancePool
from sim.des.metrics import SeriesRecorder, latency_summary, observed_s, quantile
from sim.des.requests import SERVED, RequestBook, arrivals_from
from sim.des.router import SpilloverRouter
from sim.des.serverless import SimServerlessPool
from sim.des.streams import stream
from sim.engine import OBSERVATION_HISTORY_LEN, make_context
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

#: Decision intervals kept in `Observation.history` (one hour at the default 15 s).


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
        self.env = simpy.Environment()
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
        if scenario.spillover is not None:
            # Scenario validation guarantees an instance pool with a distinct name here.
            assert isinstance(self.main, SimInstancePool)
            self.spill = SimServerlessPool(
                self.env, scenario.spillover, self.book, seed, role="spillover", log=self.log
            )
            router = SpilloverRouter(self.main, self.spill, self.log)
        clairvoyant = bool(getattr(policy, "clairvoyant", False))
        context = make_context(
            scenario, workload, stream(seed, "policy"), history=history, clairvoyant=clairvoyant
        )
        policy.reset(context)
        self.capacity_rps = context.replica_capacity_rps
        self.epoch_s = workload.epoch_s
        self.interval_s = scenario.decision_interval_s
        self.series = SeriesRecorder()
        self.history: deque[MetricSample] = deque(maxlen=OBSERVATION_HISTORY_LEN)
        self.notes: list[str] = []
        self.clamped = 0
        self._next = 0
        self._arrival_s = self.book.arrival_s
        self._interval_arrivals = 0
        self._tick_index = 0
        self._last_tick_s = 0.0
        self._last_busy = (0.0, 0.0)
        self._route = self.main.submit if router is None else router.submit

    # --- run ---------------------------------------------------------------------------

    def execute(self) -> tuple[RunResult, tuple[LogEntry, ...]]:
        """Run to the horizon; return the result and the (possibly empty) event log."""
        env = self.env
        if self._arrival_s:
            first = Timeout(env, self._arrival_s[0])
            first.callbacks.append(self._on_arrival)
        self._schedule_tick()
        env.run(until=self.horizon_s)
        if self._last_tick_s < self.horizon_s - 1e-9:
            self._record(self.horizon_s, None)  # the last, partial interval: no decision
        return self._result(), sorted_log(self.log) if self.log is not None else ()

    def _on_arrival(self, event: Event) -> None:
        del event
        env, arrival_s, route = self.env, self._arrival_s, self._route
        index, now_s = self._next, env.now
        # The trace's own time stamp, not env.now: the clock reaches it as now + delta,
        # which may round one ulp below it.
        route(index, arrival_s[index])
        index += 1
        handled = 1
        # Arrivals due before the next scheduled SimPy event are handled here, in
        # order, at their own times: nothing else can happen in between. The pools
        # take the time as an argument and schedule what they start relative to it,
        # so this equals one SimPy event per arrival, minus SimPy's overhead.
        count = len(arrival_s)
        while index < count and arrival_s[index] < env.peek():
            route(index, arrival_s[index])
            index += 1
            handled += 1
        self._interval_arrivals += handled
        self._next = index
        if index < len(arrival_s):
            following = Timeout(env, arrival_s[index] - now_s)
            following.callbacks.append(self._on_arrival)

    # --- decisions ---------------------------------------------------------------------

    def _schedule_tick(self) -> None:
        due_s = (self._tick_index + 1) * self.interval_s
        if due_s < self.horizon_s:
            tick = Timeout(self.env, due_s - self.env.now)
            tick.callbacks.append(self._on_tick)

    def _on_tick(self, event: Event) -> None:
        del event
        self._tick_index += 1
        now_s = self.env.now
        observation = self._observe(now_s)
        decision = self.policy.decide(observation)
        self._apply(decision)
        self._record(now_s, observation)
        self._schedule_tick()

    def _observe(self, now_s: float) -> Observation:
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
        low, high = main.bounds()
        return Observation(
            time_s=now_s,
            interval_s=self.interval_s,
            demand_rps=demand_rps,
            utilisation=utilisation,
            queue_len=main.queue_len(now_s),
            ready=main.ready,
            pending=main.pending,
            desired=main.desired,
            min_replicas=low,
            max_replicas=high,
            replica_capacity_rps=self.capacity_rps,
            p95_latency_s=None if math.isnan(p95) else p95,
            epoch_s=self.epoch_s,
            history=tuple(self.history),
            spillover_in_flight=self.spill.busy if self.spill is not None else 0,
        )

    def _apply(self, decision: Decision) -> None:
        """Clamp an out-of-bounds decision (recording why) and apply it through the actuator."""
        self._actuate(self.main, int(decision.desired), decision.reason)
        wanted = decision.spillover_provisioned
        if wanted is None:
            return
        if self.spill is None:
            note = "policy set spillover_provisioned but the scenario has no spillover; ignored"
            if note not in self.notes:
                self.notes.append(note)
            return
        self._actuate(self.spill, int(wanted), decision.reason)

    def _actuate(
        self, pool: SimInstancePool | SimServerlessPool, desired: int, reason: str
    ) -> None:
        low, high = pool.bounds()
        if desired > high:
            reason = f"{reason}; clamped {desired}->{high} (TooManyReplicas)"
            desired, self.clamped = high, self.clamped + 1
        elif desired < low:
            reason = f"{reason}; clamped {desired}->{low} (TooFewReplicas)"
            desired, self.clamped = low, self.clamped + 1
        pool.set_desired(desired, reason)

    def _record(self, now_s: float, observation: Observation | None) -> None:
        """Append a series row and start the next interval."""
        main = self.main
        if observation is None:
            observation = self._observe(now_s)
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
        self.history.append(
            MetricSample(
                time_s=now_s,
                demand_rps=observation.demand_rps,
                utilisation=observation.utilisation,
                ready=observation.ready,
                desired=observation.desired,
            )
        )
        self._last_tick_s = now_s
        self._last_busy = main.busy_areas(now_s)
        self._interval_arrivals = 0
        self.book.new_interval()

    # --- result ------------------------------------------------------------------------

    def _result(self) -> RunResult:
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
        notes = list(self.notes)
        if self.clamped:
            notes.append(f"{self.clamped} decisions were out of bounds and clamped")
        return RunResult(
            policy=self.policy.name,
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
        )
