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

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.contract import MetricHistory

if TYPE_CHECKING:
    from sim.control import ControlLoop, Reading
    from sim.fluid.engine import _InstanceRun

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
        history=copy.deepcopy(loop.history),
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
    loop.history = copy.deepcopy(checkpoint.history)
    loop.records = base_loop.records[: checkpoint.records]
    loop.notes = list(checkpoint.notes)
    loop.clamped = checkpoint.clamped
    loop.decisions = checkpoint.decisions


def drive_checkpointed(
    run: _InstanceRun, loop: ControlLoop, every: int, checkpoints: list[Checkpoint]
) -> None:
    """`sim.control.drive`, appending a checkpoint to `checkpoints` after every
    `every`-th decision interval."""
    advance, read, step, record = run.advance, run.read, loop.step, run.record
    while (now_s := advance()) is not None:
        record(now_s, step(read(now_s)))
        if run._index % every == 0:
            checkpoints.append(take(run, loop))


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
