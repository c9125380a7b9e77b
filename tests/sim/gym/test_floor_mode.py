"""The safety floor's two modes on a spike, in the fluid engine (issue 10).

Three quiet hours at 3 req/s with a ten-minute spike to 30 req/s in the first. A
threshold base steps one replica at a time; behind the floor in `hold` mode it sees
the spike's capacity as its own and sheds it a step a cooldown; in `release` mode
it keeps its own level and the floor lets go once the demand has.
"""

from __future__ import annotations

import pytest

from policies.registry import resolve
from sim.engines import make_engine
from sim.gym.actions import DEFAULT_FLOOR_UTILISATION, ActionMap, FloorMode
from sim.gym.agent import AgentPolicy
from sim.result import RunResult
from sim.scenario import Scenario, scenario_from_dict
from sim.workload.build import build_workload

SPIKE_START_S, SPIKE_END_S = 3600, 4200


@pytest.fixture(scope="module")
def spike(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    path = tmp_path_factory.mktemp("spike") / "spike.csv"
    rows = ["timestamp,value"] + [
        f"{t},{30.0 if SPIKE_START_S <= t < SPIKE_END_S else 3.0}" for t in range(0, 3 * 3600, 60)
    ]
    path.write_text("\n".join(rows) + "\n")
    data = {
        "name": "spike",
        "workload": {"format": "rate-csv", "path": str(path), "bin_s": 60},
        "pool": {"kind": "gpu-node-pool", "instance_type": "g5.xlarge", "min_replicas": 1,
                 "max_replicas": 64, "initial_replicas": 3},
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 2,
    }  # fmt: skip
    return scenario_from_dict(data, "test scenario", path.parent)


def run(scenario: Scenario, policy: object) -> RunResult:
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
    return make_engine("fluid").run(scenario, workload, policy, seed=scenario.seed)  # type: ignore[arg-type]


def behind_floor(mode: FloorMode, floor: float | None = DEFAULT_FLOOR_UTILISATION) -> AgentPolicy:
    actions = ActionMap.default("residual-change")
    return AgentPolicy(
        resolve("threshold").build(), actions, floor_utilisation=floor, floor_mode=mode
    )


def desired_at(result: RunResult, time_s: float) -> int:
    """The desired capacity in force at `time_s` (the last decision before it)."""
    before = [d for d in result.decisions if d.time_s <= time_s]
    return before[-1].desired if before else -1


def test_the_floor_lets_go_of_a_spike_in_release_mode_and_holds_it_in_hold_mode(
    spike: Scenario,
) -> None:
    hold, release = run(spike, behind_floor("hold")), run(spike, behind_floor("release"))
    alone = run(spike, resolve("threshold").build())
    peak = {name: max(d.desired for d in r.decisions) for name, r in
            (("hold", hold), ("release", release))}  # fmt: skip
    # both lift to the spike's need (30 req/s at 90 % of full batch: far above the base's)
    assert min(peak.values()) > 3 * desired_at(alone, SPIKE_START_S - 1)
    # twenty minutes after the spike: release is back near the base's level, hold is not
    after = SPIKE_END_S + 1200
    assert desired_at(release, after) <= desired_at(alone, after) + 2
    assert desired_at(hold, after) >= peak["hold"] // 2
    assert release.cost_usd < 0.8 * hold.cost_usd
    # the floor still buys attainment over the base alone in release mode
    assert release.slo_attainment > alone.slo_attainment


def test_without_a_floor_both_modes_are_the_base_exactly(spike: Scenario) -> None:
    alone = run(spike, resolve("threshold").build())
    for mode in ("hold", "release"):
        result = run(spike, behind_floor(mode, floor=None))  # type: ignore[arg-type]
        assert [(d.time_s, d.desired) for d in result.decisions] == [
            (d.time_s, d.desired) for d in alone.decisions
        ]
        assert result.cost_usd == alone.cost_usd
