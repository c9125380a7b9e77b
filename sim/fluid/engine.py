"""`FluidEngine`: the per-second fluid engine (`name = "fluid"`).

Python runs the decision loop: every `decision_interval_s` it builds the same
`Observation` the SimPy engine builds, calls the policy, and applies the decision
through the pool's actuator (`Fleet`). Between decisions the per-second dynamics
run compiled (`sim.fluid.kernel.advance`). A policy that says when its request may
next change (a schedule, a fixed capacity), or at which readings it would not (a
`sim.control.Band`), is not asked in between: an instance pool without hazards or
spillover runs those intervals in one compiled call (`_InstanceRun.advance_quiet`).
See `docs/engines.md` for the model and its approximations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.capacity.pools import ServerlessEndpoint
from sim.capacity.service import ServiceModel
from sim.contract import PRIMARY, SPILLOVER, Actuator, Observation, Policy
from sim.control import Band, ControlLoop, QuietSpan, Reading, drive
from sim.engine import make_context
from sim.errors import ScenarioError
from sim.fluid import kernel as K
from sim.fluid import latency as L
from sim.fluid import quiet_kernel as Q
from sim.fluid import serverless_kernel as V
from sim.fluid.fleet import Fleet
from sim.fluid.fleet_kernel import drain_s
from sim.fluid.inputs import SecondInputs, dispersion, per_second_arrivals, service_strata
from sim.fluid.prepared import Prepared, Sampled, Timeline, cached, prepare, timeline
from sim.fluid.serverless import ServerlessFluid, ServerlessRun
from sim.result import RunResult, TimeSeries
from sim.scenario import Scenario
from sim.workload.model import FloatArray, RequestTrace, Workload

#: `Reading(...)` without the NamedTuple's Python-level `__new__` (once per interval)
_new_reading = tuple.__new__


def _nan_for_none(value: float | None) -> float:
    return math.nan if value is None else value


#: `Band.metric` as the kernel's code
_BAND_METRICS = {
    "utilisation": Q.BAND_UTILISATION,
    "demand": Q.BAND_DEMAND,
    "demand_per_ready": Q.BAND_DEMAND_PER_READY,
    "busy": Q.BAND_BUSY,
}
#: `Band.missing_demand` as the kernel's code
_MISSING = {"leave": Q.MISSING_LEAVE, "check": Q.MISSING_CHECK, "hold": Q.MISSING_HOLD}


@dataclass(frozen=True)
class FluidSettings:
    """Knobs of the fluid approximation (defaults documented in docs/engines.md).

    Attributes:
        rate_window_s: Width of the centred moving average that turns per-second
            counts into the arrival rate of the M/M/c stationary wait.
        rho_max: Cap on utilisation in the Erlang C term while no backlog exists.
        arrival_scv: Squared coefficient of variation of inter-arrival times for
            the Allen-Cunneen factor (1 = Poisson).
    """

    rate_window_s: int = 31
    exact_sampling_max_requests: int = 3_000_000
    size_block_s: int = 60
    rho_max: float = 0.995
    arrival_scv: float | None = None
    queue_input: str = "raw"


class FluidEngine:
    """Per-second fluid model of a serving pool under a scaling policy."""

    name = "fluid"

    def __init__(self, settings: FluidSettings | None = None) -> None:
        self.settings = settings or FluidSettings()
        # keyed by the workload's id, holding the workload to check the id is still its
        self._sampled_runs: dict[tuple[int, int], tuple[object, Sampled]] = {}
        self._prepared: dict[tuple[int, int, ServiceModel], tuple[object, Prepared]] = {}
        self._timelines: dict[tuple[int, int, float], tuple[object, Timeline]] = {}

    def run(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
    ) -> RunResult:
        """Simulate `policy` on `workload` under `scenario`; see `RunResult`."""
        policy_seq = np.random.SeedSequence(seed).spawn(2)[1]
        context = make_context(
            scenario, workload, np.random.default_rng(policy_seq), history=history
        )
        run = self.start(scenario, workload, seed)
        loop = ControlLoop(policy, run.actuators(), context)
        loop.reset()
        return run.simulate(loop, seed)

    def start(self, scenario: Scenario, workload: Workload, seed: int) -> FluidRun:
        """A steppable run of `workload` under `scenario` (no policy yet).

        The arrivals and service strata of a (workload, seed) pair are sampled once
        per engine and shared by every run of it, so several policies and the
        oracle's start-up replay pay for them once.
        """
        sampled, inputs, rng = self._sampled(workload, seed)
        pool = scenario.pool
        if isinstance(pool, ServerlessEndpoint):
            return ServerlessRun(scenario, pool, sampled, inputs, rng, self.settings.size_block_s)
        # the DES's provisioning stream: both engines draw the same delays per seed
        from sim.des.streams import stream

        provisioning = stream(seed, "pool.provisioning")
        prepared = cached(
            self._prepared,
            (id(sampled), seed, pool.service),
            sampled,
            lambda: prepare(
                pool.service,
                sampled,
                inputs,
                rate_window_s=self.settings.rate_window_s,
                size_block_s=self.settings.size_block_s,
            ),
        )
        interval_s = scenario.decision_interval_s
        intervals = cached(
            self._timelines,
            (id(sampled), seed, interval_s),
            sampled,
            lambda: timeline(inputs, interval_s),
        )
        return _InstanceRun(
            scenario, sampled, inputs, rng, self.settings, provisioning, prepared, intervals
        )

    def _sampled(
        self, workload: Workload, seed: int
    ) -> tuple[Workload, SecondInputs, np.random.Generator]:
        """Sampled arrivals and the engine's generator, in the state right after sampling."""

        def sample() -> Sampled:
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
            sampled, inputs = self.sample_arrivals(workload, seed, rng)
            return sampled, inputs, dict(rng.bit_generator.state)

        sampled, inputs, state = cached(self._sampled_runs, (id(workload), seed), workload, sample)
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        return sampled, inputs, rng

    def realised_arrivals(self, workload: Workload, seed: int) -> FloatArray:
        """The per-second arrivals every run of (`workload`, `seed`) sees (sampled once
        and kept, as for the runs: the oracle plans for them)."""
        _, inputs, _ = self._sampled(workload, seed)
        return np.asarray(inputs.arrivals, dtype=np.float64)

    def sample_arrivals(
        self, workload: Workload, seed: int, rng: np.random.Generator
    ) -> tuple[Workload, SecondInputs]:
        """The run's per-second arrivals (and the workload the service strata use)."""
        if isinstance(workload, RequestTrace):
            return workload, per_second_arrivals(workload)
        rates = np.where(workload.missing, 0.0, np.nan_to_num(workload.rate_rps))
        expected = float(rates.sum() * workload.bin_s)
        if expected <= self.settings.exact_sampling_max_requests:
            from sim.des.streams import stream  # the DES's workload stream: same arrivals
            from sim.workload import to_requests

            trace = to_requests(workload, stream(seed, "workload"))
            return trace, per_second_arrivals(trace)
        return workload, per_second_arrivals(workload, rng)


def startup_attainment(scenario: Scenario, workload: Workload, intervals: int) -> FloatArray:
    """Share of requests within the SLO in each of the first `intervals` intervals when
    the pool keeps its initial replicas (used by the oracle for the intervals no
    decision can change yet: queues carried over between them are captured here)."""
    from sim.replay import FixedPolicy

    engine = FluidEngine()
    run = engine.start(scenario, workload, 0)
    assert isinstance(run, _InstanceRun)
    policy = FixedPolicy(scenario.pool.start_replicas, name="startup")
    context = make_context(scenario, workload, np.random.default_rng(0))
    loop = ControlLoop(policy, run.actuators(), context)
    run.simulate(loop, 0, stop_after=intervals)
    return np.asarray(run.interval_share[:intervals], dtype=np.float64)


class _InstanceRun:
    """One run of an instance pool (GPU node pool or ASG), optionally with spillover.

    `workload` is the one the arrivals were sampled from (`FluidEngine.sample_arrivals`):
    its requests' sizes give the service strata.
    """

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        inputs: SecondInputs,
        rng: np.random.Generator,
        settings: FluidSettings,
        provisioning: np.random.Generator | None,
        prepared: Prepared,
        intervals: Timeline,
    ) -> None:
        pool = scenario.pool
        assert not isinstance(pool, ServerlessEndpoint)
        tokens, strata = prepared.tokens, prepared.strata
        self.strata = strata
        self.scenario = scenario
        self.inputs = inputs
        self.fleet = Fleet(pool, rng, drain_s_at=self._drain_s_at, provisioning=provisioning)
        self._ready = 0
        self.max_batch = pool.service.max_batch
        self.interval_s = scenario.decision_interval_s
        if self.interval_s < 1.0:
            raise ScenarioError(
                f"scenario {scenario.name!r}: decision_interval_s={self.interval_s} is below "
                "the fluid engine's 1 s resolution; use decision_interval_s >= 1"
            )
        full = float(pool.service.max_batch)
        self.lam = prepared.lam
        self.arrivals_before = prepared.arrivals_before
        ca2 = settings.arrival_scv
        if ca2 is None:
            # raw counts already carry their bursts into the queue; a smoothed queue
            # needs them in the wait through the measured dispersion
            raw = settings.queue_input == "raw"
            ca2 = 1.0 if raw else dispersion(inputs.arrivals, self.lam)
        ac = (ca2 + strata.scv(full)) / 2.0
        self.params = np.zeros(K.N_PARAMS)
        self.params[K.P_MAX_BATCH] = pool.service.max_batch
        self.params[K.P_SLOWDOWN_PER_SLOT] = strata.slowdown_per_slot
        self.params[K.P_SLO_S] = scenario.slo.latency_s
        self.params[K.P_TIMEOUT_S] = pool.queue_timeout_s
        self.params[K.P_AC_FACTOR] = ac
        self.params[K.P_RHO_MAX] = settings.rho_max
        self.params[K.P_QUEUE_SMOOTHED] = 1.0 if settings.queue_input == "smoothed" else 0.0
        self.blocks = prepared.blocks
        self.params[K.P_BLOCK_S] = settings.size_block_s
        self.work = prepared.work
        self._longest_service_s = prepared.longest_service_s
        self._timeline = intervals
        self.params[K.P_COHORT_WORK] = 1.0 if self.work.per_request else 0.0
        self.params[K.P_GLOBAL_BATCH1_S] = strata.mean_s(1.0)
        self.spill: ServerlessFluid | None = None
        if scenario.spillover is not None:
            spill_strata = service_strata(scenario.spillover.service, workload, tokens)
            self.spill = ServerlessFluid(scenario, scenario.spillover, inputs, spill_strata, rng)
            self.params[K.P_SPILL_THRESHOLD] = scenario.spillover.spill_queue_threshold
        self._start()

    def actuators(self) -> dict[str, Actuator]:
        """The run's named actuator targets: the fleet, and the spillover if any."""
        targets: dict[str, Actuator] = {PRIMARY: self.fleet}
        if self.spill is not None:
            targets[SPILLOVER] = self.spill
        return targets

    def simulate(self, loop: ControlLoop, seed: int, stop_after: int | None = None) -> RunResult:
        """Run `loop` over the workload (or its first `stop_after` intervals)."""
        if stop_after is not None:
            self._limit = min(self.n_intervals, stop_after)
        drive(self, loop)
        return self.result(loop, seed)

    # --- the steppable run ---------------------------------------------------------------

    def _start(self) -> None:
        """Allocate the run's state (once, at construction)."""
        inputs = self.inputs
        self.duration = inputs.duration_s
        # shared by every run of the sampled workload and interval: read only
        self.bounds, self.demands = self._timeline.bounds, self._timeline.demands
        self.n_intervals = len(self.bounds) - 1
        self.state = np.zeros(K.N_STATE)
        self.ring = np.zeros(math.ceil(self.params[K.P_TIMEOUT_S]) + 2)
        # completions are scheduled up to the longest service time (a full batch) ahead
        done_len = math.ceil(self._longest_service_s) + 3
        self.done_ring, self.done_busy_ring = np.zeros(done_len), np.zeros(done_len)
        self.hist = np.zeros(L.HIST_BINS)
        self.ihist = np.zeros(L.HIST_BINS)
        self.out = np.zeros(K.N_OUT)
        self.totals = np.zeros(K.N_OUT)
        # The series, columnar: the kernel writes each interval's row (K.R_* columns;
        # NaN time: not reached), a decision that changes the fleet overwrites ready
        # and pending, and desired and cost are kept only where they change (`_mark`),
        # filled forward in `result`: an interval without a change costs no Python.
        self.series = np.full((self.n_intervals, K.N_ROW), np.nan)
        self._marks: list[tuple[int, int, float, float, float]] = []
        self._spill_cost = np.zeros(self.n_intervals) if self.spill is not None else None
        # attainment per interval (1 where nothing finished), read by the oracle
        self.interval_share = np.ones(self.n_intervals)
        self._mark(0)
        spill = self.spill
        spill_args: tuple[object, ...]
        if spill is not None:
            spill_args = (
                True, spill.service_s, spill.strata.packed(), spill.vp, spill.vs,
                spill.dq_t, spill.dq_v, spill.cw,
            )  # fmt: skip
        else:
            spill_args = (
                False, 1.0, self.strata.packed(), np.zeros(8), np.zeros(32),
                np.zeros(2), np.zeros(2), np.zeros(1),
            )  # fmt: skip
        # The kernel's arguments after `desired`, gathered once: every array is
        # updated in place, so one tuple serves the whole run.
        ready_at, until = self.fleet.ready_arrays()
        drain_end, drain_replicas = self.fleet.drain_arrays()
        self._args: tuple[Any, ...] = (
            self.inputs.arrivals, self.arrivals_before, self.lam, ready_at, until,
            drain_end, drain_replicas,
            self.blocks, self.work.offsets, self.work.base_s, self.work.slope_s,
            self.params, self.state, self.ring, self.done_ring, self.done_busy_ring,
            self.hist, self.ihist, self.out, self.totals, self.series, self.interval_share,
            *spill_args,
        )  # fmt: skip
        # called with the packed arguments; returns the reading (see `K.advance`)
        self._kernel: Callable[..., tuple[float, int, int, int, float]] = K.advance
        self._index = 0
        self._limit = self.n_intervals
        self._reading: Reading | None = None
        # an interval a banded quiet span advanced past its band: the next `advance`
        # returns its end without running it again
        self._held = False
        # Quiet spans (`advance_quiet`) are exact only while nothing but a decision
        # changes the fleet (no spot reclaims or failures) and nothing is recorded
        # every interval (a spillover's cost): those runs ask at every tick.
        self.quiet = not self.fleet.has_hazard and spill is None
        self._quiet: _QuietArrays | None = None

    def advance(self) -> float | None:
        """Run the compiled kernel over the next decision interval.

        Returns the time of the decision that ends it, or None when the run is over
        (the last, partial interval gets a series row and no decision).
        """
        if self._held:
            self._held = False
            return self._reading.time_s  # type: ignore[union-attr]  # (set with it)
        bounds, fleet = self.bounds, self.fleet
        while self._index < self._limit:
            i = self._index
            self._index += 1
            t0, t1 = bounds[i], bounds[i + 1]
            if t1 <= t0:
                continue
            utilisation, queue_len, ready, pending, p95 = self._kernel(
                t0, t1, i, fleet.desired, *self._args
            )
            if fleet.has_hazard and fleet.replace_dead(float(t1)):
                self._mark(i)
            self._ready = ready
            now = float(t1)
            spill = self.spill
            self._reading = _new_reading(
                Reading,
                (
                    now,
                    self.demands[i],
                    None if utilisation != utilisation else utilisation,  # NaN: no ready slot
                    queue_len,
                    ready,
                    pending,
                    None if p95 != p95 else p95,  # NaN: nothing finished
                    int(spill.vs[V.V_IN_FLIGHT] + 0.5) if spill is not None else 0,
                ),
            )
            if t1 >= self.duration:
                self._record_spill(i)  # the last, partial interval: no decision
                self._index = self._limit
                return None
            return now
        return None

    def advance_quiet(
        self, before_tick: int, most: int | None = None, band: Band | None = None
    ) -> QuietSpan | None:
        """Run the kernel over the next intervals whose decision ticks come before
        `before_tick` (at most `most`, never the last, partial one) at the capacity in
        force, in one compiled call: the control loop has no decision to take at their
        ends (`sim.control.QuietRun`). Their series rows and shares are the kernel's,
        as after a decision that changes nothing. With a `band`, the span also ends
        at the first interval whose reading leaves it; that interval is run, and the
        next `advance` returns its end. None when no interval stayed quiet.
        """
        arrays = self._quiet or self._quiet_arrays()
        first = self._index
        last = min(self._limit, arrays.full, bisect.bisect_left(arrays.ticks, before_tick))
        if most is not None:
            last = min(last, first + most)
        if last <= first:
            return None
        packed = arrays.band
        if band is None:
            packed[Q.B_METRIC] = Q.BAND_NONE
        else:
            packed[:] = (
                _BAND_METRICS[band.metric], band.low, band.high, band.renew_s, band.hold_low,
                band.hold_high, band.hold_until_s, band.replicas,
                -1 if band.ready is None else band.ready, band.ready_high,
                band.above_for_s, _nan_for_none(band.above_since_s), band.below_for_s,
                _nan_for_none(band.below_since_s), band.demand_high, band.queue_rate,
                band.demand_window_s or 0.0, band.demand_renew, _MISSING[band.missing_demand],
                float(band.detector is not None), band.pending_busy_high, band.anomaly_high,
            )  # fmt: skip
        detector = None if band is None else band.detector
        if detector is None:
            det: tuple[Any, ...] = arrays.no_detector
        else:
            detector.export()
            det = (detector.times, detector.values, detector.state, detector.params, arrays.scratch)
        utilisation, queue_len, ready, pending, p95, quiet, left = Q.advance_quiet(
            first, last, arrays.bounds, self.fleet.desired, arrays.utilisation, arrays.ready,
            arrays.demand, packed, arrays.window, arrays.queue, *det, *self._args,
        )  # fmt: skip
        if detector is not None:
            detector.adopt()  # (the quiet readings it kept)
        end = first + quiet + 1 if left else first + quiet  # intervals run
        self._index = end
        self._ready = ready
        self._held = left
        self._reading = _new_reading(
            Reading,
            (
                float(self.bounds[end]),
                self.demands[end - 1],
                None if utilisation != utilisation else utilisation,
                queue_len,
                ready,
                pending,
                None if p95 != p95 else p95,
                0,
            ),
        )
        if quiet == 0:
            return None
        stop = first + quiet
        windowed = band is not None and band.demand_window_s is not None
        return QuietSpan(
            arrays.times[first:stop],
            self.demands[first:stop],
            arrays.utilisation[first:stop].tolist(),
            arrays.ready[first:stop].tolist(),
            arrays.queue[first:stop].tolist(),
            [None if mean != mean else mean for mean in arrays.window[first:stop].tolist()]
            if windowed
            else None,
        )

    def ready_pending(self) -> tuple[int, int]:
        """The fleet's ready and pending replicas at the last decision, after it (what the
        next interval starts from: `sim.control.QuietRun`)."""
        reading = self._reading
        assert reading is not None, "no decision taken yet"
        return self.fleet.ready_pending(reading.time_s)

    def _quiet_arrays(self) -> _QuietArrays:
        """What quiet spans need, made at the first one."""
        ends = np.asarray(self.bounds[1:], dtype=np.int64)
        self._quiet = _QuietArrays(
            bounds=np.asarray(self.bounds, dtype=np.int64),
            # the tick of the decision that ends each interval (`sim.control.decision_tick`)
            ticks=np.round(ends / self.interval_s).tolist(),
            times=ends.astype(np.float64).tolist(),
            # intervals that end before the horizon (the last one gets no decision)
            full=int(np.searchsorted(ends, self.duration, "left")),
            utilisation=np.full(self.n_intervals, np.nan),
            ready=np.zeros(self.n_intervals, dtype=np.int64),
            demand=np.array(self.demands, dtype=np.float64),  # None: NaN
            window=np.full(self.n_intervals, np.nan),
            queue=np.zeros(self.n_intervals, dtype=np.int64),
            no_detector=(np.zeros(1), np.zeros(1), np.zeros(6), np.zeros(6), np.zeros(8)),
            scratch=np.zeros(8),
            band=np.zeros(Q.N_BAND),
        )
        return self._quiet

    def read(self, now: float) -> Reading:
        """The metrics of the interval that ended at `now` (after `advance`)."""
        reading = self._reading
        if reading is None or reading.time_s != now:
            raise ValueError(f"no reading at {now} s: advance() to it first")
        return reading

    def record(self, now: float, observation: Observation) -> None:
        """The series row after the decision, as the SimPy engine records it: the
        kernel wrote it; only a change moves ready, pending, desired and cost."""
        fleet = self.fleet
        i = self._index - 1
        if fleet.desired != observation.desired:
            row = self.series[i]
            row[K.R_READY], row[K.R_PENDING] = fleet.ready_pending(now)
            self._mark(i)
        if self.spill is not None:
            self._record_spill(i)

    def _mark(self, row: int) -> None:
        """Desired and the cost terms from series row `row` on (until the next mark)."""
        self._marks.append((row, self.fleet.desired, *self.fleet.cost_terms()))

    def _record_spill(self, row: int) -> None:
        """The spillover's cost so far, in series row `row` (it changes every interval)."""
        if self._spill_cost is not None and self.spill is not None:
            self._spill_cost[row] = self.spill.cost_usd()

    def _drain_s_at(self, now: float) -> float:
        """How long a busy replica removed at `now` keeps serving (see `drain_s`)."""
        return drain_s(self.state[K.S_IN_SERVICE], self._ready, self.done_ring, int(now))

    def _series(self) -> TimeSeries:
        """The rows reached, with demand, and desired and cost from the marks (a row's
        cost is `Fleet.cost_terms` of its last mark at the row's time)."""
        reached = np.flatnonzero(~np.isnan(self.series[:, K.R_TIME]))
        rows = self.series[reached]
        time_s = rows[:, K.R_TIME]
        marks = np.asarray(self._marks, dtype=np.float64).reshape(-1, 5)
        # the last mark at or before each row (marks are in row order; a later mark
        # of the same row wins)
        which = np.searchsorted(marks[:, 0], reached, side="right") - 1
        desired, closed, rate, launch = (marks[which, k] for k in range(1, 5))
        cost = closed + rate * time_s - launch
        if self._spill_cost is not None:
            cost = cost + self._spill_cost[reached]
        demand = self._timeline.demand_rps[reached]
        return TimeSeries(
            time_s=time_s,
            demand_rps=demand,
            ready=rows[:, K.R_READY],
            desired=desired,
            pending=rows[:, K.R_PENDING],
            p95_latency_s=rows[:, K.R_P95],
            cost_usd=cost,
        )

    def result(self, loop: ControlLoop, seed: int) -> RunResult:
        """The run's result (after the last `advance`)."""
        fleet, spill, totals, hist = self.fleet, self.spill, self.totals, self.hist
        duration = self.duration
        arrivals = float(totals[K.O_ARRIVALS])
        served = float(totals[K.O_SERVED])
        dropped = float(totals[K.O_DROPPED])
        attained = float(totals[K.O_ATTAINED])
        in_flight = max(arrivals - served - dropped, 0.0)
        pool_cost = fleet.final_cost_usd(float(duration))
        cost_by_pool = {self.scenario.pool.name: pool_cost}
        cold_starts = 0
        if spill is not None:
            spilled = float(spill.vs[V.V_SERVED])
            served += spilled
            in_flight = max(in_flight - spilled, 0.0)
            attained += float(spill.vs[V.V_ATTAINED])
            cost_by_pool[spill.endpoint.name] = spill.cost_usd()
            cold_starts = round(spill.vs[V.V_COLD_STARTS])
        notes = loop.run_notes()
        if fleet.replaced_nodes:
            notes.append(f"{fleet.replaced_nodes} nodes replaced after a spot reclaim or failure")
        finished = served + dropped
        attainment = attained / finished if finished > 0 else 1.0
        cost = float(sum(cost_by_pool.values()))
        gpu_hours = fleet.billed_node_seconds(float(duration)) * fleet.gpus_per_node / 3600.0
        ts = self._series()
        return RunResult(
            policy=loop.policy.name,
            engine="fluid",
            seed=seed,
            cost_usd=cost,
            cost_by_pool=cost_by_pool,
            gpu_hours=gpu_hours,
            arrivals=round(arrivals),
            served=round(served),
            dropped=round(dropped),
            in_flight=round(in_flight),
            slo_attainment=min(max(attainment, 0.0), 1.0),
            slo_target=self.scenario.slo.target_attainment,
            p50_latency_s=float(L.hist_quantile(hist, 0.50)),
            p95_latency_s=float(L.hist_quantile(hist, 0.95)),
            p99_latency_s=float(L.hist_quantile(hist, 0.99)),
            scaling_actions=fleet.actions,
            series=ts,
            cold_starts=cold_starts,
            notes=tuple(notes),
            decisions=tuple(loop.records),
        )


@dataclass(frozen=True)
class _QuietArrays:
    """A run's arrays for quiet spans (`_InstanceRun.advance_quiet`).

    Attributes:
        bounds: The interval bounds (s), as the kernel takes them.
        ticks: The decision tick at the end of each interval.
        times: The time (s) at the end of each interval.
        full: Intervals that end before the horizon.
        utilisation: Each interval's reading of utilisation (NaN: no ready slot),
            written by the kernel.
        ready: Each interval's reading of ready replicas, written by the kernel.
        demand: Each interval's observed demand (NaN: none observed).
        window: The demand a band watched at each quiet interval (its mean over the
            band's window: `quiet_kernel.window_demand`), written by the kernel.
        queue: Each interval's reading of the queue, written by the kernel.
        no_detector: The kernel's detector arrays when a band has no detector.
        scratch: The kernel's scratch for a band's detector (`score_reading`).
        band: The kernel's copy of a span's `Band` (`quiet_kernel.B_*`).
    """

    bounds: np.ndarray
    ticks: list[float]
    times: list[float]
    full: int
    utilisation: np.ndarray
    ready: np.ndarray
    demand: np.ndarray
    window: np.ndarray
    queue: np.ndarray
    no_detector: tuple[np.ndarray, ...]
    scratch: np.ndarray
    band: np.ndarray


#: A steppable fluid run: an instance pool (with its spillover) or a serverless endpoint.
FluidRun = _InstanceRun | ServerlessRun
