"""Checkpoints of a fluid run: start another run of the same inputs part-way through.

A fluid run of an instance pool is deterministic given its scenario, workload, seed
and the capacity its policy asks for. Two schedule replays that ask for the same
capacity at every decision up to the k-th are therefore in the same state after it,
bit for bit; a checkpoint one of them took there lets the other start at decision
k instead of at 0. The oracle's local search (`planner.oracle`) replays thousands
of schedules that differ from the best one only from some interval on.

A checkpoint holds what the run changes in place (the kernel's queue and completion
rings, the latency histogram and totals, the fleet's replicas, nodes and bill, the
spillover endpoint, both random generators) and the control loop's history and
counters. What the run only appends (series rows, cost marks, the loop's decision
records) stays with the run that took the checkpoint and is copied from it on
`resume`. The policy is not captured: only a policy without state (a schedule
replay, a fixed capacity) may be resumed, and the caller's policy must ask for what
the checkpointed run's asked for up to the checkpoint.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sim.contract import MetricHistory, PolicyContext
from sim.control import pass_quiet, quiet_run
from sim.fluid.serverless import ServerlessRun
from sim.replay import SchedulePolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import FloatArray, Workload

if TYPE_CHECKING:
    from sim.control import ControlLoop, Reading
    from sim.fluid.engine import FluidEngine, _InstanceRun

#: The run's arrays the kernel changes in place (scratch arrays it zeroes each call
#: are left out).
_KERNEL_ARRAYS = ("state", "ring", "done_ring", "done_busy_ring", "hist", "totals")


@dataclass(frozen=True)
class Checkpoint:
    """A fluid instance run after its first `index` decision intervals.

    Attributes:
        index: Decision intervals done (the decision at the end of interval
            `index - 1`, at tick `index`, applied and recorded).
        kernel: Copies of `_KERNEL_ARRAYS`, in that order.
        fleet: The fleet's attributes that change (arrays copied).
        spill: The spillover endpoint's, or None without one.
        generators: Bit-generator states of the engine's generator and of the
            fleet's provisioning stream (None without one).
        ready: Ready replicas at the last reading.
        reading: The last reading.
        marks: Cost marks taken so far (a prefix of the run's).
        history: The control loop's metric history (kept pristine: copied on resume).
        records: Decision records so far (a prefix of the loop's).
        notes: The loop's run notes so far.
        clamped: Decisions the loop clamped so far.
        decisions: Decisions the loop asked for so far.
    """

    index: int
    kernel: tuple[np.ndarray, ...]
    fleet: dict[str, Any]
    spill: dict[str, Any] | None
    generators: tuple[Mapping[str, Any], Mapping[str, Any] | None]
    ready: int
    reading: Reading | None
    marks: int
    history: MetricHistory
    records: int
    notes: tuple[str, ...]
    clamped: int
    decisions: int


def take(run: _InstanceRun, loop: ControlLoop) -> Checkpoint:
    """The state of `run` (driven by `loop`) now, between two decision intervals."""
    if run._held:
        raise ValueError("no checkpoint while an interval waits for its decision")
    fleet = run.fleet
    prov = fleet._prov
    provisioning = None if prov is None else prov.bit_generator.state
    return Checkpoint(
        index=run._index,
        kernel=tuple(getattr(run, name).copy() for name in _KERNEL_ARRAYS),
        fleet=_mutable(fleet),
        spill=None if run.spill is None else _mutable(run.spill),
        generators=(fleet.rng.bit_generator.state, provisioning),
        ready=run._ready,
        reading=run._reading,
        marks=len(run._marks),
        history=_copied(loop.history),
        records=len(loop.records),
        notes=tuple(loop.notes),
        clamped=loop.clamped,
        decisions=loop.decisions,
    )


def resume(
    run: _InstanceRun,
    loop: ControlLoop,
    checkpoint: Checkpoint,
    base: _InstanceRun,
    base_loop: ControlLoop,
) -> None:
    """Put the fresh `run` and `loop` in the state `checkpoint` recorded of `base`.

    `run` must be new (`FluidEngine.start` of the same scenario, workload and seed as
    `base`) and `loop` reset, with a policy that asks for what `base_loop`'s asked for
    at every decision up to the checkpoint; `base` and `base_loop` supply the rows,
    marks and records before it.
    """
    k = checkpoint.index
    for name, saved in zip(_KERNEL_ARRAYS, checkpoint.kernel, strict=True):
        np.copyto(getattr(run, name), saved)  # in place: the kernel's arguments hold them
    _restore(run.fleet, checkpoint.fleet)
    if run.spill is not None and checkpoint.spill is not None:
        _restore(run.spill, checkpoint.spill)
    engine_state, provisioning_state = checkpoint.generators
    run.fleet.rng.bit_generator.state = engine_state
    if run.fleet._prov is not None and provisioning_state is not None:
        run.fleet._prov.bit_generator.state = provisioning_state
    run.series[:k] = base.series[:k]
    run.interval_share[:k] = base.interval_share[:k]
    if run._spill_cost is not None and base._spill_cost is not None:
        run._spill_cost[:k] = base._spill_cost[:k]
    run._marks = base._marks[: checkpoint.marks]
    run._index = k
    run._ready = checkpoint.ready
    run._reading = checkpoint.reading
    loop.history = _copied(checkpoint.history)
    loop.records = base_loop.records[: checkpoint.records]
    loop.notes = list(checkpoint.notes)
    loop.clamped = checkpoint.clamped
    loop.decisions = checkpoint.decisions


def drive_checkpointed(
    run: _InstanceRun, loop: ControlLoop, every: int, checkpoints: list[Checkpoint]
) -> None:
    """`sim.control.drive`, appending a checkpoint to `checkpoints` after every
    `every`-th decision interval (a quiet span stops at each, so a replay resumed
    from one goes on as the run that took it did)."""
    advance, read, step, record = run.advance, run.read, loop.step, run.record
    quiet = quiet_run(run, loop)
    while (now_s := advance()) is not None:
        record(now_s, step(read(now_s)))
        if run._index % every == 0:
            checkpoints.append(take(run, loop))
        if (
            quiet is not None
            and pass_quiet(quiet, loop, now_s, every - run._index % every)
            and run._index % every == 0
        ):
            checkpoints.append(take(run, loop))


def _copied(history: MetricHistory) -> MetricHistory:
    """A copy of `history` (its samples are plain lists of numbers: `copy.deepcopy`
    took 2.6 ms a checkpoint, a fifth of the checkpoints' cost)."""
    twin = copy.copy(history)
    for name, value in vars(history).items():
        if isinstance(value, list):
            setattr(twin, name, value.copy())
    return twin


def _mutable(thing: object) -> dict[str, Any]:
    """The attributes of `thing` a run changes: arrays (copied), numbers, flags and
    generator states held as dicts; the model, callables and generators (restored
    apart) are the new run's own."""
    kept: dict[str, Any] = {}
    for name, value in vars(thing).items():
        if isinstance(value, np.ndarray):
            kept[name] = value.copy()
        elif isinstance(value, bool | int | float | np.generic | dict) or value is None:
            kept[name] = value
    return kept


def _restore(thing: object, kept: dict[str, Any]) -> None:
    for name, value in kept.items():
        current = getattr(thing, name)
        if isinstance(current, np.ndarray):
            np.copyto(current, value)
        else:
            setattr(thing, name, value)


#: Checkpoints one replay takes, evenly spaced.
CHECKPOINTS_PER_RUN = 64
#: Replays kept to resume from (the most recent first).
KEPT_RUNS = 4


@dataclass
class _Kept:
    requests: NDArray[np.int64]
    run: _InstanceRun
    loop: ControlLoop
    checkpoints: list[Checkpoint]


@dataclass
class ScheduleReplays:
    """Replays of request schedules in one fluid run setting (scenario, workload,
    seed), each resumed from the latest checkpoint of a kept replay that asked for the
    same capacity up to it.

    They keep no latency histogram (`kernel.P_NO_LATENCIES`): their results' latencies
    are NaN, while the bill, the attainment, the arrivals and the series' capacity are
    what a full run has, bit for bit (the histogram feeds none of them), a fifth less
    time a replay.

    Attributes:
        engine: The fluid engine (its sampled inputs are shared by every replay).
        scenario: An instance pool's scenario.
        workload: The traffic.
        seed: The run's seed.
        context: What the schedule policies are reset with (they ignore it).
    """

    engine: FluidEngine
    scenario: Scenario
    workload: Workload
    seed: int
    context: PolicyContext
    kept: list[_Kept] = field(default_factory=list)

    def replay(self, policy: SchedulePolicy, requests: NDArray[np.int64]) -> Replayed:
        """Replay `policy`, which asks for `requests[k]` at decision tick k.

        Returns the run's result, its per-interval shares within the SLO and the
        decision intervals simulated (fewer than the run's when it resumed).
        """
        from sim.control import ControlLoop
        from sim.fluid import kernel

        run = self.engine.start(self.scenario, self.workload, self.seed)
        assert not isinstance(run, ServerlessRun), "schedule replays of an instance pool"
        run.params[kernel.P_NO_LATENCIES] = 1.0
        loop = ControlLoop(policy, run.actuators(), self.context)
        loop.reset()
        base, checkpoint = self._resume_point(requests)
        checkpoints: list[Checkpoint] = []
        if base is not None and checkpoint is not None:
            resume(run, loop, checkpoint, base.run, base.loop)
            checkpoints = [c for c in base.checkpoints if c.index <= checkpoint.index]
        start = run._index
        every = max(1, run.n_intervals // CHECKPOINTS_PER_RUN)
        drive_checkpointed(run, loop, every, checkpoints)
        self.kept.insert(0, _Kept(np.asarray(requests), run, loop, checkpoints))
        del self.kept[KEPT_RUNS:]
        shares = np.asarray(run.interval_share, dtype=np.float64)
        return Replayed(run.result(loop, self.seed), shares, run.n_intervals - start)

    def _resume_point(self, requests: NDArray[np.int64]) -> tuple[_Kept | None, Checkpoint | None]:
        """The kept replay and its checkpoint that let `requests` start latest."""
        found: tuple[_Kept | None, Checkpoint | None] = (None, None)
        latest = 0
        for kept in self.kept:
            if len(kept.requests) != len(requests) or not kept.checkpoints:
                continue
            differ = np.flatnonzero(kept.requests != requests)
            first = int(differ[0]) if differ.size else len(requests) + 1
            # a checkpoint after decision tick k holds when ticks 0..k asked the same
            indices = [c.index for c in kept.checkpoints]
            usable = bisect.bisect_left(indices, first) - 1
            if usable >= 0 and indices[usable] > latest:
                latest = indices[usable]
                found = (kept, kept.checkpoints[usable])
        return found


@dataclass(frozen=True)
class Replayed:
    """One schedule replay: its result, its per-interval shares of requests within the
    SLO, and the decision intervals it simulated."""

    result: RunResult
    shares: FloatArray
    simulated: int
