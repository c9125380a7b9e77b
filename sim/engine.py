"""The engine contract shared by the SimPy (`des`) and fluid engines.

Both engines take the same scenario, workload and policy objects and return a
`RunResult`. `make_context` builds the `PolicyContext` both hand to
`Policy.reset`, so a policy sees identical facts in either engine. The registry
of engines by name is `sim.engines`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sim.contract import Policy, PolicyContext
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import RateEnvelope, RequestTrace, TokenProfile, Workload


class Engine(Protocol):
    """Runs one policy over one workload under one scenario's capacity model."""

    name: str

    def run(
        self,
        scenario: Scenario,
        workload: Workload,
        policy: Policy,
        *,
        seed: int,
        history: Workload | None = None,
    ) -> RunResult: ...


def token_profile(workload: Workload) -> TokenProfile:
    """Mean request size of a workload: measured for traces with tokens, declared otherwise."""
    if isinstance(workload, RateEnvelope):
        return workload.tokens
    if (
        isinstance(workload, RequestTrace)
        and workload.input_tokens is not None
        and len(workload.input_tokens)
    ):
        inputs = workload.input_tokens.astype(float)
        outputs = (
            workload.output_tokens.astype(float)
            if workload.output_tokens is not None
            else np.full_like(inputs, TokenProfile().output_mean)
        )
        return TokenProfile(
            input_mean=float(inputs.mean()),
            input_cv=float(inputs.std() / max(inputs.mean(), 1e-9)),
            output_mean=float(outputs.mean()),
            output_cv=float(outputs.std() / max(outputs.mean(), 1e-9)),
        )
    return TokenProfile()


def provisioning_mean_s(scenario: Scenario) -> float:
    """Mean time from a scale-out decision to a serving replica (every pool kind has one)."""
    return scenario.pool.provisioning_mean_s()


def make_context(
    scenario: Scenario,
    workload: Workload,
    rng: np.random.Generator,
    *,
    history: Workload | None = None,
) -> PolicyContext:
    """The facts a policy may know before the run (never the run's own traffic)."""
    pool = scenario.pool
    tokens = token_profile(workload)
    batch = pool.service.max_batch
    return PolicyContext(
        interval_s=scenario.decision_interval_s,
        min_replicas=pool.min_replicas,
        max_replicas=pool.max_replicas,
        replica_capacity_rps=pool.service.throughput_rps(tokens),
        provisioning_s=provisioning_mean_s(scenario),
        slo_latency_s=scenario.slo.latency_s,
        slo_target=scenario.slo.target_attainment,
        mean_service_s=pool.service.mean_service_s(tokens, batch),
        max_batch=batch,
        epoch_s=workload.epoch_s,
        history=history,
        rng=rng,
        spillover_mean_service_s=(
            None
            if scenario.spillover is None
            else scenario.spillover.service.mean_service_s(tokens, 1)
        ),
    )
