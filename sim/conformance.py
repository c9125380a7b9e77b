"""Policy conformance check, after Gymnasium's `check_env`: both engines, one policy.

`check_policy` runs a policy through the SimPy engine (the reference) under a
recording wrapper, then replays the decisions it took in the fluid engine (so
both runs see the same capacity changes at the same times even where a reactive
policy sits at a decision edge), and compares the two observation streams field
by field, interval by interval. It also checks the decision contract in each
engine on its own, and feeds the fluid observations to a second instance of the
policy to count the decisions it would have taken differently.

Capacity randomness is taken out first (`deterministic_capacity`): every
provisioning delay is fixed at its mean and spot reclaims and node failures are
off, so with the same arrivals (both engines replay the DES's workload stream)
ready and pending replicas must agree exactly.

Per-field tolerances (`Tolerance`: absolute + relative x the larger value),
`DEFAULT_TOLERANCES`:

==================== ============= ===============================================
field                tolerance     why
==================== ============= ===============================================
time_s               1e-9 s        both tick at k x interval_s
interval_s, bounds,  exact         from the scenario and `make_context`
epoch_s, capacity
ready, pending,      exact         fixed delays: the same replicas at the same times
desired
demand_rps           1e-9          both count the same arrivals per interval
utilisation          0.06          fluid batch occupancy vs the DES's exact area
queue_len            5 + 25 %      the fluid queue is a fluid (rounded) quantity
p95_latency_s        8 s + 50 %    the fluid engine reads it off a histogram; the
                                   DES's p95 of ~180 requests is itself noisy
spillover_in_flight  10 + 50 %     an instantaneous count of a bursty quantity
history              per field     the tolerance of the field it repeats
==================== ============= ===============================================

Measured (the default scenario cut to 20 minutes, GPU node pool at 12 req/s,
every preset and `fixed:N`, seed 0): time, demand, ready, pending, desired, the
bounds, epoch and the history length agree exactly; utilisation within 0.033
(draining replicas keep their slots in both engines) except in the interval
after a backlog empties (0.075, threshold); queue length within 5 + 25 % (read at
the tick after replicas ready then took their share, as the DES does) except as
a backlog empties (13 vs 0); p95 latency within 8 s + 50 % (largest 23 s, 41 vs
20 s). A serverless main pool disagrees on ready, pending and utilisation once
the first burst's instances expire, a spillover run on p95 latency and queue
length during the endpoint's first cold starts (docs/engines.md, "Conformance
check").

Contract properties checked per engine (`ContractViolation.rule`): the first
observation is at one interval and each next one interval later; `interval_s`,
the bounds, `replica_capacity_rps` and `epoch_s` are those of the
`PolicyContext`; the history holds exactly the engine's own earlier
observations, never the current one, at most `OBSERVATION_HISTORY_LEN` of them;
`desired` lies within the bounds; counts are non-negative and utilisation in
[0, 1]; the next observation's `desired` is the previous decision clamped to the
bounds, and every clamp is recorded in the run's notes.

Usage::

    report = check_policy(lambda: resolve("hpa").build(), scenario, workload)
    report.raise_on_failure()   # or: assert report.passed, report.summary()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel

from sim.capacity.distributions import Delay, fixed
from sim.capacity.pools import ServerlessEndpoint
from sim.conformance_report import (
    DEFAULT_TOLERANCES,
    EXACT,
    FIELDS,
    HISTORY_FIELDS,
    ConformanceError,
    ConformanceReport,
    ContractViolation,
    Mismatch,
    Step,
    Tolerance,
    difference,
)
from sim.contract import (
    SPILLOVER,
    Decision,
    MetricSample,
    Observation,
    Policy,
    PolicyContext,
)
from sim.control import OBSERVATION_HISTORY_LEN, clamped_in_notes
from sim.engine import Engine
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

__all__ = [
    "DEFAULT_TOLERANCES",
    "ConformanceError",
    "ConformanceReport",
    "ContractViolation",
    "Mismatch",
    "Step",
    "Tolerance",
    "check_policy",
    "compare_streams",
    "contract_violations",
    "deterministic_capacity",
]

#: `PolicyContext` fields both engines must hand `Policy.reset` alike (not rng, history).
CONTEXT_FIELDS: tuple[str, ...] = (
    "interval_s",
    "min_replicas",
    "max_replicas",
    "replica_capacity_rps",
    "provisioning_s",
    "slo_latency_s",
    "slo_target",
    "mean_service_s",
    "max_batch",
    "epoch_s",
    "spillover_mean_service_s",
)


# --- the scenario without capacity randomness ---------------------------------------------


def deterministic_capacity(scenario: Scenario) -> Scenario:
    """`scenario` with every provisioning delay fixed at its mean, reclaims and failures off."""

    def fix(pool: BaseModel) -> BaseModel:
        updates: dict[str, object] = {
            name: fixed(value.mean_s) for name, value in pool if isinstance(value, Delay)
        }
        if not isinstance(pool, ServerlessEndpoint):
            updates.update(spot_interruption_per_h=0.0, node_failure_per_h=0.0)
        return pool.model_copy(update=updates)

    updates: dict[str, object] = {"pool": fix(scenario.pool)}
    if scenario.spillover is not None:
        updates["spillover"] = fix(scenario.spillover)
    return scenario.model_copy(update=updates)


# --- recording and replaying wrappers -----------------------------------------------------


class RecordingPolicy:
    """Wraps a policy and records its context, every observation and every decision.

    With `replay`, the engine gets `replay[k]` at the k-th decision instead of the
    policy's own (which is still asked, and recorded, on the same observation).
    """

    def __init__(self, policy: Policy, replay: Sequence[Decision] | None = None) -> None:
        self.policy = policy
        self.name = policy.name
        self.replay = replay
        self.context: PolicyContext | None = None
        self.steps: list[Step] = []

    def reset(self, context: PolicyContext) -> None:
        self.context = context
        self.steps.clear()
        self.policy.reset(context)

    def decide(self, observation: Observation) -> Decision:
        own = self.policy.decide(observation)
        decision = own
        if self.replay is not None:
            k = len(self.steps)
            # past the reference's last decision (a longer run): hold the last one
            decision = self.replay[min(k, len(self.replay) - 1)] if self.replay else own
        self.steps.append(Step(observation, tuple(observation.history), decision, own))
        return decision


# --- the check ----------------------------------------------------------------------------


def check_policy(
    policy_factory: Callable[[], Policy],
    scenario: Scenario,
    workload: Workload,
    *,
    seed: int = 0,
    history: Workload | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
    reference: Engine | None = None,
    candidate: Engine | None = None,
) -> ConformanceReport:
    """Run a fresh policy from `policy_factory` through both engines and compare them.

    Args:
        policy_factory: Builds a fresh policy (called twice: one per engine).
        scenario: The scenario; its capacity randomness is removed first
            (`deterministic_capacity`).
        workload: The traffic both engines replay.
        seed: The runs' seed.
        history: Traffic before the run, handed to the policy.
        tolerances: Per-field absolute tolerances replacing `DEFAULT_TOLERANCES`'.
        reference: The engine the policy runs in (default: the SimPy engine).
        candidate: The engine its decisions are replayed in (default: the fluid engine).
    """
    if reference is None:
        from sim.des import DesEngine

        reference = DesEngine()
    if candidate is None:
        from sim.fluid import FluidEngine

        candidate = FluidEngine()
    tol = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    unknown = set(tol) - set(DEFAULT_TOLERANCES)
    if unknown:
        raise ValueError(f"tolerances name unknown fields {sorted(unknown)}; known: {FIELDS}")
    fixed_scenario = deterministic_capacity(scenario)

    recorded = RecordingPolicy(policy_factory())
    ref_result = reference.run(fixed_scenario, workload, recorded, seed=seed, history=history)
    replayed = RecordingPolicy(policy_factory(), [s.decision for s in recorded.steps])
    cand_result = candidate.run(fixed_scenario, workload, replayed, seed=seed, history=history)

    violations = [
        *contract_violations(reference.name, recorded, ref_result, fixed_scenario),
        *contract_violations(candidate.name, replayed, cand_result, fixed_scenario),
        *_context_violations(candidate.name, recorded.context, replayed.context),
    ]
    mismatches, max_diff = compare_streams(recorded.steps, replayed.steps, tol)
    differing = [
        k
        for k, (a, b) in enumerate(zip(recorded.steps, replayed.steps, strict=False))
        if not _same_decision(a.own, b.own)
    ]
    return ConformanceReport(
        policy=recorded.name,
        engines=(reference.name, candidate.name),
        intervals=min(len(recorded.steps), len(replayed.steps)),
        mismatches=tuple(mismatches),
        violations=tuple(violations),
        max_difference=max_diff,
        decision_differences=len(differing),
        first_decision_difference=differing[0] if differing else None,
        tolerances=tol,
        reference_steps=tuple(recorded.steps),
        candidate_steps=tuple(replayed.steps),
    )


def compare_streams(
    reference: Sequence[Step], candidate: Sequence[Step], tolerances: Mapping[str, Tolerance]
) -> tuple[list[Mismatch], dict[str, float]]:
    """First mismatch per field (earliest first) and the largest difference per field."""
    first: dict[str, Mismatch] = {}
    max_diff = {name: 0.0 for name in (*FIELDS, "history_len")}

    def compare(k: int, now_s: float, name: str, key: str, a: object, b: object) -> None:
        diff = difference(a, b)
        max_diff[key] = max(max_diff[key], diff)
        tolerance = tolerances.get(key, EXACT)
        if name in first or diff == 0.0:
            return
        if math.isinf(diff) or not tolerance.allows(float(a), float(b)):  # type: ignore[arg-type]
            first[name] = Mismatch(k, now_s, name, a, b, tolerance)

    if len(reference) != len(candidate):
        k = min(len(reference), len(candidate))
        now_s = reference[k].observation.time_s if k < len(reference) else math.nan
        first["intervals"] = Mismatch(k, now_s, "intervals", len(reference), len(candidate), EXACT)
    for k, (a, b) in enumerate(zip(reference, candidate, strict=False)):
        now_s = a.observation.time_s
        for name in FIELDS:
            compare(
                k, now_s, name, name, getattr(a.observation, name), getattr(b.observation, name)
            )
        compare(k, now_s, "history_len", "history_len", len(a.history), len(b.history))
        for x, y in zip(a.history, b.history, strict=False):
            for name in HISTORY_FIELDS:
                compare(k, now_s, f"history.{name}", name, getattr(x, name), getattr(y, name))
    ordered = sorted(first.values(), key=lambda m: (m.interval, m.field))
    return ordered, max_diff


def contract_violations(
    engine: str, recorded: RecordingPolicy, result: RunResult, scenario: Scenario
) -> list[ContractViolation]:
    """The decision-contract properties one engine's run broke (the first of each)."""
    found: dict[str, ContractViolation] = {}

    def flag(k: int, rule: str, detail: str) -> None:
        found.setdefault(rule, ContractViolation(engine, k, rule, detail))

    context = recorded.context
    if context is None:
        return [ContractViolation(engine, 0, "reset", "the engine never called Policy.reset")]
    steps = recorded.steps
    clamps = 0
    for k, step in enumerate(steps):
        obs = step.observation
        expected_s = (k + 1) * context.interval_s
        if abs(obs.time_s - expected_s) > 1e-9:
            flag(k, "time", f"time_s {obs.time_s!r}, expected {expected_s!r} (k+1 intervals)")
        for name in ("interval_s", "min_replicas", "max_replicas", "replica_capacity_rps"):
            seen, known = getattr(obs, name), getattr(context, name)
            if seen != known:
                flag(k, name, f"{seen!r}, the context says {known!r}")
        if obs.epoch_s != context.epoch_s:
            flag(k, "epoch_s", f"{obs.epoch_s!r}, the context says {context.epoch_s!r}")
        if not obs.min_replicas <= obs.desired <= obs.max_replicas:
            flag(
                k,
                "desired in bounds",
                f"{obs.desired} outside [{obs.min_replicas}, {obs.max_replicas}]",
            )
        if obs.ready > obs.max_replicas:
            flag(k, "ready within max", f"{obs.ready} ready, max_replicas {obs.max_replicas}")
        for name in ("ready", "pending", "queue_len", "spillover_in_flight"):
            if getattr(obs, name) < 0:
                flag(k, "non-negative", f"{name} = {getattr(obs, name)}")
        if obs.utilisation is not None and not -1e-9 <= obs.utilisation <= 1.0 + 1e-9:
            flag(k, "utilisation in [0, 1]", f"{obs.utilisation!r}")
        if obs.demand_rps is not None and obs.demand_rps < 0:
            flag(k, "non-negative", f"demand_rps = {obs.demand_rps!r}")
        _check_history(k, step, steps, flag)
        if k > 0:
            previous = steps[k - 1].decision.desired
            clamped = min(max(previous, obs.min_replicas), obs.max_replicas)
            if obs.desired != clamped:
                flag(
                    k,
                    "decision applied",
                    f"desired {obs.desired} after a decision of {previous} "
                    f"(clamped to [{obs.min_replicas}, {obs.max_replicas}]: {clamped})",
                )
        clamps += _out_of_bounds(step.decision, obs, scenario)
    recorded_clamps = clamped_in_notes(result.notes)
    if recorded_clamps != clamps:
        flag(
            len(steps),
            "clamping recorded",
            f"{clamps} decisions were out of bounds, the run's notes record {recorded_clamps}",
        )
    return list(found.values())


def _check_history(
    k: int, step: Step, steps: Sequence[Step], flag: Callable[[int, str, str], None]
) -> None:
    """The history is the engine's own last observations, oldest first, not this one."""
    history = step.history
    expected_len = min(k, OBSERVATION_HISTORY_LEN)
    if len(history) != expected_len:
        flag(k, "history length", f"{len(history)} entries, expected {expected_len}")
        return
    if history and history[-1].time_s >= step.observation.time_s:
        flag(k, "history excludes now", f"last entry at {history[-1].time_s} s")
        return
    for entry, earlier in zip(history, steps[k - expected_len : k], strict=True):
        obs = earlier.observation
        seen = MetricSample(obs.time_s, obs.demand_rps, obs.utilisation, obs.ready, obs.desired)
        if entry != seen:
            flag(k, "history contents", f"{entry} differs from the observation {seen}")
            return


def _out_of_bounds(decision: Decision, obs: Observation, scenario: Scenario) -> int:
    """How many of the decision's targets the control loop must clamp."""
    count = int(not obs.min_replicas <= decision.desired <= obs.max_replicas)
    spill = scenario.spillover
    if spill is not None and SPILLOVER in decision.targets:
        count += int(not spill.min_replicas <= decision.targets[SPILLOVER] <= spill.max_replicas)
    return count


def _context_violations(
    engine: str, reference: PolicyContext | None, candidate: PolicyContext | None
) -> list[ContractViolation]:
    """The candidate's `PolicyContext` fields that differ from the reference's."""
    if reference is None or candidate is None:
        return []
    for name in CONTEXT_FIELDS:
        a, b = getattr(reference, name), getattr(candidate, name)
        if a != b:
            return [ContractViolation(engine, 0, "context", f"{name} = {b!r}, reference {a!r}")]
    return []


def _same_decision(a: Decision, b: Decision) -> bool:
    return a.desired == b.desired and dict(a.targets) == dict(b.targets)
