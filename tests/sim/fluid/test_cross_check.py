"""The fluid engine against the SimPy engine (the fidelity reference), same runs.

Tolerance (the project's): SLO attainment within 1 percentage point and cost within
3 %, on the Azure LLM conv hour (scaled to 12 req/s) and on one ServeGen m-small
day scaled to 2 req/s (the production mean is about 1,170 req/s; scaled down so the
DES runs in seconds). Both engines replay the same arrivals: a trace as is, an
envelope through the workload package's sampler on the DES's workload stream.
Provisioning delays are fixed (conftest) so ready times agree too.

Open-loop policies (fixed at two sizes, a cron schedule, the oracle's replay) meet
the tolerance, as do a serverless main pool and a GPU pool spilling to a
serverless endpoint. Closed-loop policies that react every interval (HPA, threshold,
step, AWS target tracking) amplify small metric differences into
different decisions; they are checked at the tolerance docs/engines.md measures
for them (attainment 1.5 pp, cost 10 %), with the reason written there.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest

from policies.aws_target_tracking import AwsTargetTrackingSpec
from policies.base import FixedPolicy, Policy
from policies.hpa import HpaSpec
from policies.scheduled import ScheduledSpec
from policies.step import StepSpec
from policies.threshold import ThresholdSpec
from sim.des.engine import DesEngine
from sim.fluid import FluidEngine
from sim.oracle import OracleSpec
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
}
POLICIES: dict[str, Callable[[], Policy]] = {
    "fixed-8": lambda: FixedPolicy(8),
    "fixed-12": lambda: FixedPolicy(12),
    "fixed-3": lambda: FixedPolicy(3),
    "fixed-4": lambda: FixedPolicy(4),
    "fixed-0": lambda: FixedPolicy(0),
    "conv-schedule": _scheduled([("0,20,40 * * * *", 600, 11), ("10,30,50 * * * *", 600, 14)]),
    "day-schedule": _scheduled([("0 7 * * *", 16 * 3600, 5), ("0 23 * * *", 8 * 3600, 3)]),
    "oracle": lambda: OracleSpec().build(),
    "aws-target-tracking": lambda: AwsTargetTrackingSpec().build(),
    "hpa": lambda: HpaSpec().build(),
    "threshold": lambda: ThresholdSpec().build(),
    "step": lambda: StepSpec().build(),
}


@cache
def _pair(scenario: str, policy: str) -> tuple[RunResult, RunResult]:
    sc, workload = SCENARIOS[scenario]()
    fluid = FluidEngine().run(sc, workload, POLICIES[policy](), seed=0)
    des = DesEngine().run(sc, workload, POLICIES[policy](), seed=0)
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
    ("serverless", "fixed-0"),
]
CLOSED_LOOP = [
    ("conv", "aws-target-tracking"),
    ("conv", "hpa"),
    ("conv", "threshold"),
    ("conv", "step"),
    ("servegen", "hpa"),
    ("servegen", "threshold"),
]


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
    assert fluid.cost_usd == pytest.approx(des.cost_usd, rel=0.10)
