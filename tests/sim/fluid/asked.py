"""Comparing a run driven with spans against the same run asked at every tick.

A span (a schedule's quiet ticks, a reactive policy's band) must leave the run
exactly as `AskedEveryTick` leaves it, which asks the policy at every tick: the
whole `RunResult`, the loop's history and counters, and the per-interval shares.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sim.contract import Policy
from sim.control import ControlLoop, drive
from sim.engine import make_context
from sim.fluid import FluidEngine
from sim.fluid.engine import _InstanceRun
from sim.replay import AskedEveryTick
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

SEED = 5


def same_result(fast: RunResult, slow: RunResult) -> None:
    """Every field of two results, the series array by array (NaN equal to NaN)."""
    for spec in dataclasses.fields(RunResult):
        a, b = getattr(fast, spec.name), getattr(slow, spec.name)
        if spec.name == "series":
            for column in dataclasses.fields(a):
                x, y = getattr(a, column.name), getattr(b, column.name)
                assert np.array_equal(x, y, equal_nan=True), f"series.{column.name}"
        elif isinstance(a, float) and np.isnan(a):
            assert np.isnan(b), spec.name
        else:
            assert a == b, spec.name


def same_history(fast: ControlLoop, slow: ControlLoop) -> None:
    """What the next observation's history would show, and the loop's counters."""
    for name, value in vars(slow.history).items():
        kept = getattr(fast.history, name)
        assert np.array_equal(np.asarray(kept), np.asarray(value), equal_nan=True), name
    assert (fast.decisions, fast.clamped, fast.notes) == (slow.decisions, slow.clamped, slow.notes)


def started(
    engine: FluidEngine, scenario: Scenario, workload: Workload, policy: Policy
) -> tuple[Any, ControlLoop]:
    run = engine.start(scenario, workload, SEED)
    context = make_context(scenario, workload, np.random.default_rng(0))
    loop = ControlLoop(policy, run.actuators(), context)
    loop.reset()
    return run, loop


def both(
    scenario: Scenario, workload: Workload, policy: Policy, other: Policy | None = None
) -> tuple[tuple[Any, ControlLoop], tuple[Any, ControlLoop]]:
    """The run driven quietly and the run asked at every tick, both to the horizon; the
    asked run's policy is `other` when given (a policy that keeps state needs its own
    instance), else `policy` again (reset before its run)."""
    engine = FluidEngine()
    fast = started(engine, scenario, workload, policy)
    drive(*fast)
    slow = started(engine, scenario, workload, AskedEveryTick(other or policy))
    drive(*slow)
    return fast, slow


def check(fast: tuple[Any, ControlLoop], slow: tuple[Any, ControlLoop]) -> None:
    (fast_run, fast_loop), (slow_run, slow_loop) = fast, slow
    same_result(fast_run.result(fast_loop, SEED), slow_run.result(slow_loop, SEED))
    same_history(fast_loop, slow_loop)
    if isinstance(slow_run, _InstanceRun):  # a serverless run keeps no shares
        assert np.array_equal(fast_run.interval_share, slow_run.interval_share)
