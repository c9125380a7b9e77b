"""The live controller: CloudWatch readings -> the one control loop -> the AWS actuator.

Each decision point reads the Auto Scaling group (desired, bounds, instances)
and the newest CloudWatch datapoints, builds a `sim.control.Reading`, and runs
`ControlLoop.step`, the very loop the simulator runs. When demand is missing or
stale the controller keeps the current capacity and records why (the HPA's
cautious rule): the policy is not asked. In shadow mode the loop drives a
`ShadowActuator`, and every interval records what the policy would have set
beside what the group was running and what demand turned out to be.

A spillover policy sizes a second target, the serverless endpoint's provisioned
concurrency (`sim.contract.SPILLOVER`); given a `SpilloverControl`, the loop gets
that target too, behind the same guardrails (active) or a second shadow actuator,
and each record carries both series.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from planner.aws import metrics
from planner.aws.actuator import AsgActuator
from planner.aws.sagemaker import ServerlessVariantActuator
from planner.control.actuators import GuardedActuator, ShadowActuator
from sim.contract import PRIMARY, SPILLOVER, Actuator, Policy, PolicyContext
from sim.control import ActuationRecord, ControlLoop, Reading

Mode = Literal["shadow", "active"]
#: The shortest window read at each decision point (a few 60 s datapoints); it grows
#: to twice the staleness limit, so an old datapoint reads as stale, not as missing.
LOOKBACK_S = 900
METRIC_PERIOD_S = 60
#: The note the control loop adds to a clamped decision's reason.
_CLAMP = re.compile(r"clamped \d+->\d+ \(\w+\)")
_CLAMP_NOTE = re.compile(r"; clamped \d+->\d+ \(\w+\)")


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
    spillover_running: int | None = None
    spillover_would_set: int | None = None


@dataclass
class SpilloverControl:
    """The serverless variant a spillover policy sizes, and its guardrails.

    Args:
        variant: The endpoint variant's actuator.
        floor: Lowest provisioned concurrency the controller sets (SageMaker's 1 at least).
        ceiling: Highest: the stack's `serverless.max_concurrency` (the variant's own
            MaxConcurrency narrows it further).
        max_step: Largest change in one decision (None: no limit).
    """

    variant: ServerlessVariantActuator
    floor: int
    ceiling: int
    max_step: int | None = None


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
    spillover: SpilloverControl | None = None
    records: list[StepRecord] = field(default_factory=list)
    _loop: ControlLoop | None = None
    _start_s: float | None = None
    _shadow: ShadowActuator | None = None
    _shadow_spill: ShadowActuator | None = None
    _guarded_spill: GuardedActuator | None = None

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
        actuators: dict[str, Actuator] = {PRIMARY: actuator}
        if self.spillover is not None:
            actuators[SPILLOVER] = self._spillover_actuator(self.spillover)
        context = PolicyContext(**{**self.context.__dict__, "epoch_s": now_s})
        self._loop = ControlLoop(self.policy, actuators, context)
        self._loop.reset()
        return self._loop

    def _spillover_actuator(self, spill: SpilloverControl) -> Actuator:
        """The variant in the loop: guarded (active) or a shadow that touches nothing."""
        variant = spill.variant
        variant.refresh()
        if self.mode == "shadow":
            low, high = variant.bounds()
            self._shadow_spill = ShadowActuator(
                variant.current(), max(low, spill.floor), min(high, spill.ceiling)
            )
            return self._shadow_spill
        self._guarded_spill = GuardedActuator(variant, spill.floor, spill.ceiling, spill.max_step)
        return self._guarded_spill

    def _spillover_now(self) -> int | None:
        """Provisioned concurrency the controller holds (shadow) or the variant was set to."""
        if self._shadow_spill is not None:
            return self._shadow_spill.current()
        return None if self.spillover is None else self.spillover.variant.current()

    def _spillover_note(self, acted: list[ActuationRecord], refused_before: int) -> str:
        """Why the spillover target did not move as decided: clamped to its bounds, cut
        to one step, or held while the endpoint updates."""
        if self.spillover is None:
            return ""
        notes = [
            f"spillover: {m.group(0)}"
            for r in acted
            if r.target == SPILLOVER and (m := _CLAMP.search(r.reason)) is not None
        ]
        if self._guarded_spill is not None:
            cut = self._guarded_spill.refusals[refused_before:]
            notes += [f"spillover: {m}" for m in cut]
        if self.spillover.variant.held is not None:
            notes.append(f"spillover: {self.spillover.variant.held}")
        return "".join(f"; {n}" for n in notes)

    def step(self) -> StepRecord:
        """One decision interval now."""
        now_s = self.clock()
        loop = self._ensure_loop(now_s)
        described = self.group.refresh()
        running = int(described["DesiredCapacity"])
        ready, pending = self.group.instances()
        spill_running: int | None = None
        if self.spillover is not None:
            self.spillover.variant.refresh()
            spill_running = self.spillover.variant.current()
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
                spill=(spill_running, self._spillover_now()),
            )
            return record
        queue = 0 if live.queue_per_replica is None else round(live.queue_per_replica * ready)
        reading = Reading(time_s, live.demand_rps, live.utilisation, queue, ready, pending)
        before = len(loop.records)
        refused = 0 if self._guarded_spill is None else len(self._guarded_spill.refusals)
        observation = loop.step(reading)
        changes = loop.records[before:]
        acted = [r for r in changes if r.target == PRIMARY]
        if shadow is not None:
            would, reason = shadow.current(), shadow.last_reason or "no change"
        else:
            would = self.group.current()
            spilled = [r.reason for r in changes if r.target == SPILLOVER]
            reason = acted[-1].reason if acted else f"kept {observation.desired}"
            if not acted and spilled:  # the decision's reason, from the spillover's change
                reason = f"{reason}; {_CLAMP_NOTE.sub('', spilled[-1])}"
        return self._record(
            now,
            time_s,
            running,
            would,
            ready,
            pending,
            live.demand_rps,
            live.utilisation,
            reason + self._spillover_note(changes, refused),
            spill=(spill_running, self._spillover_now()),
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
        spill: tuple[int | None, int | None] = (None, None),
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
            spillover_running=spill[0],
            spillover_would_set=spill[1],
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
