"""The live controller: CloudWatch readings -> the one control loop -> the AWS actuator.

Each decision point reads the Auto Scaling group (desired, bounds, instances)
and the newest CloudWatch datapoints, builds a `sim.control.Reading`, and runs
`ControlLoop.step`, the very loop the simulator runs. When demand is missing or
stale the controller keeps the current capacity and records why (the HPA's
cautious rule): the policy is not asked. In shadow mode the loop drives a
`ShadowActuator`, and every interval records what the policy would have set
beside what the group was running and what demand turned out to be.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from planner.aws import metrics
from planner.aws.actuator import AsgActuator
from planner.control.actuators import GuardedActuator, ShadowActuator
from sim.contract import PRIMARY, Policy, PolicyContext
from sim.control import ControlLoop, Reading

Mode = Literal["shadow", "active"]
#: The shortest window read at each decision point (a few 60 s datapoints); it grows
#: to twice the staleness limit, so an old datapoint reads as stale, not as missing.
LOOKBACK_S = 900
METRIC_PERIOD_S = 60


@dataclass
class StepRecord:
    """One decision interval as the controller saw it (one JSON line)."""

    time: str
    time_s: float
    mode: Mode
    running_desired: int
    would_set: int
    ready: int
    pending: int
    demand_rps: float | None
    utilisation: float | None
    replica_capacity_rps: float
    interval_s: float
    reason: str
    held: bool = False


@dataclass
class LiveController:
    """Runs `policy` every `interval_s` against one Auto Scaling group."""

    policy: Policy
    group: AsgActuator
    cloudwatch: Any
    context: PolicyContext
    mode: Mode
    floor: int
    ceiling: int
    max_step: int | None = None
    record_path: Path | None = None
    clock: Callable[[], float] = time.time
    stale_s: float = 300.0
    records: list[StepRecord] = field(default_factory=list)
    _loop: ControlLoop | None = None
    _start_s: float | None = None
    _shadow: ShadowActuator | None = None

    def _ensure_loop(self, now_s: float) -> ControlLoop:
        if self._loop is not None:
            return self._loop
        self._start_s = now_s
        self.group.refresh()
        actuator: Any
        if self.mode == "shadow":
            low, high = self.group.bounds()
            self._shadow = ShadowActuator(
                self.group.current(), max(low, self.floor), min(high, self.ceiling)
            )
            actuator = self._shadow
        else:
            actuator = GuardedActuator(self.group, self.floor, self.ceiling, self.max_step)
        context = PolicyContext(**{**self.context.__dict__, "epoch_s": now_s})
        self._loop = ControlLoop(self.policy, {PRIMARY: actuator}, context)
        self._loop.reset()
        return self._loop

    def step(self) -> StepRecord:
        """One decision interval now."""
        now_s = self.clock()
        loop = self._ensure_loop(now_s)
        described = self.group.refresh()
        running = int(described["DesiredCapacity"])
        ready, pending = self.group.instances()
        now = datetime.fromtimestamp(now_s, UTC)
        series = metrics.get_metric_data(
            self.cloudwatch,
            metrics.group_queries(self.group.group),
            now - timedelta(seconds=max(LOOKBACK_S, 2 * self.stale_s)),
            now,
            METRIC_PERIOD_S,
            now,
        )
        live = metrics.latest(series, now, METRIC_PERIOD_S, self.stale_s)
        time_s = now_s - (self._start_s or now_s)
        shadow = self._shadow
        if live.held is not None:
            kept = shadow.current() if shadow is not None else running
            record = self._record(
                now,
                time_s,
                running,
                kept,
                ready,
                pending,
                None,
                None,
                f"kept {kept}: {live.held}",
                held=True,
            )
            return record
        queue = 0 if live.queue_per_replica is None else round(live.queue_per_replica * ready)
        reading = Reading(time_s, live.demand_rps, live.utilisation, queue, ready, pending)
        before = len(loop.records)
        observation = loop.step(reading)
        acted = loop.records[before:]
        if shadow is not None:
            would, reason = shadow.current(), shadow.last_reason or "no change"
        else:
            would = self.group.current()
            reason = acted[-1].reason if acted else f"kept {observation.desired}"
        return self._record(
            now, time_s, running, would, ready, pending, live.demand_rps, live.utilisation, reason
        )

    def _record(
        self,
        now: datetime,
        time_s: float,
        running: int,
        would: int,
        ready: int,
        pending: int,
        demand: float | None,
        util: float | None,
        reason: str,
        held: bool = False,
    ) -> StepRecord:
        record = StepRecord(
            time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            time_s=time_s,
            mode=self.mode,
            running_desired=running,
            would_set=would,
            ready=ready,
            pending=pending,
            demand_rps=demand,
            utilisation=util,
            replica_capacity_rps=self.context.replica_capacity_rps,
            interval_s=self.context.interval_s,
            reason=reason,
            held=held,
        )
        self.records.append(record)
        if self.record_path is not None:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            with self.record_path.open("a") as handle:
                handle.write(json.dumps(record.__dict__, sort_keys=True) + "\n")
        return record

    def run(
        self,
        *,
        iterations: int | None,
        duration_s: float | None,
        stop: threading.Event,
        on_step: Callable[[StepRecord], None] | None = None,
    ) -> int:
        """Step every `interval_s` until `iterations`, `duration_s` or `stop`; steps taken.

        Bounded: one of `iterations` or `duration_s` must be given.
        """
        if iterations is None and duration_s is None:
            raise ValueError("the live controller needs a bound: iterations or duration_s")
        start = self.clock()
        taken = 0
        while not stop.is_set():
            record = self.step()
            taken += 1
            if on_step is not None:
                on_step(record)
            if iterations is not None and taken >= iterations:
                break
            if (
                duration_s is not None
                and self.clock() - start + self.context.interval_s > duration_s
            ):
                break
            stop.wait(self.context.interval_s)
        return taken
