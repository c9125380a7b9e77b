"""The fluid engine against the SimPy engine (the fidelity reference), same runs.

Tolerance (the project's): SLO attainment within 1 percentage point and cost within
3 %, on the Azure LLM conv hour (scaled to 12 req/s) and on one ServeGen m-small
day scaled to 2 req/s (the production mean is about 1,170 req/s; scaled down so the
DES runs in seconds). Both engines replay the same arrivals: a trace as is, an
envelope through the workload package's sampler on the DES's workload stream.
Provisioning delays are fixed (conftest) so ready times agree too.

Open-loop policies (fixed at two sizes, a cron schedule, the oracle's replay) meet
the tolerance, as do a serverless main pool and a GPU pool spilling to a
serverless endpoint, and the reactive policies that meet it on seed 0 (HPA,
threshold and step on the conv hour; HPA and step on the ServeGen day). The
utilisation those policies observe agrees interval by interval under fixed
capacity. A reactive policy still amplifies a tiny metric difference at a decision
edge (AWS target tracking on the conv hour: 0.875 vs 0.881 utilisation gives 28
instead of 29 replicas, kept for minutes); those runs are held to 1.5 pp / 6 %,
and over seeds 0-2 every reactive policy's mean difference to the tolerance
(docs/engines.md has the figures and the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from policies.aws_target_tracking import AwsTargetTrackingSpec
from policies.hpa import HpaSpec
from policies.scheduled import ScheduledSpec
from policies.step import StepSpec
from policies.threshold import ThresholdSpec
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.des.engine import DesEngine
from sim.fluid import FluidEngine
from sim.oracle import solve_oracle
from sim.replay import FixedPolicy
from sim.result import RunResult
from sim.scenario import Scenario
from sim.workload.model import Workload

from .conftest import load, make_scenario, poisson_envelope, servegen_day


def _scheduled(windows: list[tuple[str, float, int]]) -> Callable[[], Policy]:
    entries = [
        {"name": f"w{i}", "cron": cron, "duration_s": duration, "min_replicas": n,
         "max_replicas": n, "desired": n}
        for i, (cron, duration, n) in enumerate(windows)
    ]  # fmt: skip
    return lambda: ScheduledSpec.model_validate({"entries": entries}).build()


def _serverless() -> tuple[Scenario, Workload]:
    scenario = make_scenario(
        pool={"kind": "serverless", "max_replicas": 50, "min_replicas": 0, "cold_start_s": 8,
              "keep_alive_s": 120, "service": {"kind": "exponential", "mean_s": 1.0}},
        slo={"latency_s": 5.0, "target_attainment": 0.9},
    )  # fmt: skip
    return scenario, poisson_envelope(5.0, 3600.0)


def _with_workload(make: Callable[[], Scenario]) -> Callable[[], tuple[Scenario, Workload]]:
    def build() -> tuple[Scenario, Workload]:
        scenario = make()
        return scenario, load(scenario)

    return build


SCENARIOS: dict[str, Callable[[], tuple[Scenario, Workload]]] = {
    "conv": _with_workload(make_scenario),
    "servegen": _with_workload(servegen_day),
    # 4 GPU replicas cannot carry 12 req/s: about 45 % spills to the endpoint
    "conv-spillover": _with_workload(
        lambda: make_scenario(
            pool={"initial_replicas": 4},
            spillover={"kind": "serverless", "name": "spill", "max_replicas": 200},
        )
    ),
    "serverless": _serverless,
    # 3 replicas and a spillover endpoint that waits for 50 queued requests: the
    # queue's wait is most of what misses the SLO (the router's rule, `sim.des.router`)
    "conv-spill-threshold": _with_workload(
        lambda: make_scenario(
            pool={"min_replicas": 1, "initial_replicas": 3},
            spillover={"kind": "serverless", "name": "spill", "spill_queue_threshold": 50},
        )
    ),
}
POLICIES: dict[str, Callable[[], Policy]] = {
    "fixed-8": lambda: FixedPolicy(8),
    "fixed-12": lambda: FixedPolicy(12),
    "fixed-3": lambda: FixedPolicy(3),
    "fixed-4": lambda: FixedPolicy(4),
    "fixed-0": lambda: FixedPolicy(0),
    "conv-schedule": _scheduled([("0,20,40 * * * *", 600, 11), ("10,30,50 * * * *", 600, 14)]),
    "day-schedule": _scheduled([("0 7 * * *", 16 * 3600, 5), ("0 23 * * *", 8 * 3600, 3)]),
    "aws-target-tracking": lambda: AwsTargetTrackingSpec().build(),
    "hpa": lambda: HpaSpec().build(),
    "hpa-0.9": lambda: HpaSpec(target=0.9).build(),
    "threshold": lambda: ThresholdSpec().build(),
    "step": lambda: StepSpec().build(),
}


@cache
def _workload(scenario: str) -> tuple[Scenario, Workload]:
    return SCENARIOS[scenario]()


@cache
def _pair(scenario: str, policy: str, seed: int = 0) -> tuple[RunResult, RunResult]:
    sc, workload = _workload(scenario)

    def make() -> Policy:
        if policy == "oracle":  # the planner's way: solve offline, replay the schedule
            return solve_oracle(sc, workload).replay_policy()
        return POLICIES[policy]()

    fluid = FluidEngine().run(sc, workload, make(), seed=seed)
    des = DesEngine().run(sc, workload, make(), seed=seed)
    return fluid, des


TIGHT = [
    ("conv", "fixed-8"),
    ("conv", "fixed-12"),
    ("conv", "conv-schedule"),
    ("conv", "oracle"),
    ("servegen", "fixed-3"),
    ("servegen", "fixed-4"),
    ("servegen", "day-schedule"),
    ("servegen", "oracle"),
    ("conv-spillover", "fixed-4"),
    ("conv-spill-threshold", "fixed-3"),
    ("serverless", "fixed-0"),
    ("conv", "hpa"),
    ("conv", "threshold"),
    ("conv", "step"),
    ("servegen", "hpa"),
    ("servegen", "step"),
    # saturated intervals read 1.0, so the HPA's 10 % tolerance (0.99 / 0.9 would be
    # inside it) does not hide them
    ("conv", "hpa-0.9"),
]
CLOSED_LOOP = [
    ("conv", "aws-target-tracking"),
    ("servegen", "threshold"),
    ("servegen", "aws-target-tracking"),
]
REACTIVE = ["hpa", "threshold", "step", "aws-target-tracking"]


@pytest.mark.parametrize(("scenario", "policy"), TIGHT, ids=[f"{s}-{p}" for s, p in TIGHT])
def test_fluid_agrees_with_des(scenario: str, policy: str) -> None:
    fluid, des = _pair(scenario, policy)
    assert fluid.arrivals == des.arrivals
    assert fluid.slo_attainment == pytest.approx(des.slo_attainment, abs=0.01)
    assert fluid.cost_usd == pytest.approx(des.cost_usd, rel=0.03)


@pytest.mark.parametrize(
    ("scenario", "policy"), CLOSED_LOOP, ids=[f"{s}-{p}" for s, p in CLOSED_LOOP]
)
def test_closed_loop_policies_agree_within_their_documented_band(
    scenario: str, policy: str
) -> None:
    fluid, des = _pair(scenario, policy)
    assert fluid.slo_attainment == pytest.approx(des.slo_attainment, abs=0.015)
    assert fluid.cost_usd == pytest.approx(des.cost_usd, rel=0.06)


@pytest.mark.parametrize("policy", REACTIVE)
def test_reactive_policies_agree_on_average_over_seeds(policy: str) -> None:
    """No systematic bias: seeds 0-2 of the ServeGen day (each seed samples other
    arrivals), mean differences within the project tolerance."""
    pairs = [_pair("servegen", policy, seed) for seed in (0, 1, 2)]
    attainment_pp = np.mean([f.slo_attainment - d.slo_attainment for f, d in pairs])
    cost_rel = np.mean([f.cost_usd / d.cost_usd - 1.0 for f, d in pairs])
    assert abs(attainment_pp) <= 0.01
    assert abs(cost_rel) <= 0.03


class _Recorder:
    """A fixed policy that keeps the utilisation of every observation."""

    name = "recorder"

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.utilisation: list[float] = []

    def reset(self, context: PolicyContext) -> None:
        del context

    def decide(self, observation: Observation) -> Decision:
        assert observation.utilisation is not None
        self.utilisation.append(observation.utilisation)
        return Decision(self.replicas, "fixed")


@pytest.mark.parametrize(
    ("scenario", "replicas"), [("conv", 8), ("servegen", 2)], ids=["conv-8", "servegen-2"]
)
def test_observed_utilisation_agrees_interval_by_interval(scenario: str, replicas: int) -> None:
    """What the reactive policies decide on: the busy share of the batch slots over
    each 15 s interval, the same requests in both engines (conv-8 spends minutes
    saturated, servegen-2 runs near 50 %)."""
    sc, workload = _workload(scenario)
    fluid, des = _Recorder(replicas), _Recorder(replicas)
    FluidEngine().run(sc, workload, fluid, seed=0)
    DesEngine().run(sc, workload, des, seed=0)
    u_fluid, u_des = np.array(fluid.utilisation), np.array(des.utilisation)
    assert u_fluid.shape == u_des.shape
    assert np.mean(np.abs(u_fluid - u_des)) < 0.01
    assert abs(u_fluid.mean() / u_des.mean() - 1.0) < 0.01
    assert np.corrcoef(u_fluid, u_des)[0, 1] > 0.99


def test_a_saturated_pool_reads_full_utilisation() -> None:
    """Two replicas cannot carry the conv hour: requests wait through whole intervals,
    every slot is busy all the while, and both engines report 1.0 (the HPA rounds
    0.996 down to 99 %, inside its 10 % tolerance of a 0.9 target)."""
    sc, workload = _workload("conv")
    fluid, des = _Recorder(2), _Recorder(2)
    FluidEngine().run(sc, workload, fluid, seed=0)
    DesEngine().run(sc, workload, des, seed=0)
    u_fluid, u_des = np.array(fluid.utilisation), np.array(des.utilisation)
    saturated = u_des == 1.0
    assert saturated.sum() > len(u_des) // 2
    assert (u_fluid[saturated] == 1.0).all()  # was 0.996-0.999
    assert (u_des[u_fluid == 1.0] > 0.999).all()  # the DES's float sums stop just short


def test_the_spillover_waits_for_its_queue_threshold() -> None:
    """With `spill_queue_threshold` 50 the primary queue fills to 50 before anything
    spills: attainment falls well below the threshold-0 run's, in both engines."""
    at_threshold, _ = _pair("conv-spill-threshold", "fixed-3")
    sc = make_scenario(
        pool={"min_replicas": 1, "initial_replicas": 3},
        spillover={"kind": "serverless", "name": "spill"},
    )
    at_zero = FluidEngine().run(sc, load(sc), FixedPolicy(3), seed=0)
    assert at_threshold.slo_attainment < at_zero.slo_attainment - 0.05
