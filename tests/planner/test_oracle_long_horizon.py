"""On a long horizon (one search of the rate-sized cap spends the oracle's refinement
budget: 14 days and more at 15 s), `solve_reference` searches the rate-sized family
first and replays a model plan only where the model expects it to bill close enough
to win. Forced here on a day of the bundled ServeGen trace by a budget of half a search.
"""

from __future__ import annotations

import pytest

import planner.oracle
import planner.oracle_bounds
import planner.oracle_replays
from planner.oracle import MODEL_BILL_MARGIN, solve_reference
from planner.oracle_search import RATE_REPLAYS
from sim.engines import make_engine
from sim.oracle import OracleResult
from sim.replay import SchedulePolicy
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload

HOURS = 24.0
TICK_S = 15


def day_scenario(mean_rps: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": f"servegen-day-{mean_rps:g}",
            "workload": {
                "format": "servegen",
                "path": "package:servegen_m_small_2d",
                "start_h": 0.0,
                "duration_h": HOURS,
                "scale_mean_rps": mean_rps,
            },
            "pool": {
                "kind": "gpu-node-pool",
                "instance_type": "g5.xlarge",
                "min_replicas": 2,
                "max_replicas": 64,
                "initial_replicas": 8,
            },
            "slo": {"latency_s": 25.0, "target_attainment": 0.95},
            "decision_interval_s": TICK_S,
            "seed": 0,
            "base_dir": str(BUNDLED_DIR),
        }
    )


def solve_long(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> tuple[planner.oracle.OracleSummary, list[tuple[OracleResult, float, float]]]:
    """The oracle with the refinement budget at half a search of the cap, and every
    plan it replayed: (plan, replay bill, replay attainment), in order."""
    ticks = round(HOURS * 3600 / TICK_S)
    monkeypatch.setattr(planner.oracle_replays, "REFINE_TICKS", ticks * RATE_REPLAYS // 2)
    replayed: list[tuple[OracleResult, float, float]] = []
    replay_plan = planner.oracle_replays.Verifier.replay_plan

    def recording(self: planner.oracle_replays.Verifier, plan: OracleResult):  # type: ignore[no-untyped-def]
        run, shares = replay_plan(self, plan)
        replayed.append((plan, float(run.cost_usd), float(run.slo_attainment)))
        return run, shares

    monkeypatch.setattr(planner.oracle_replays.Verifier, "replay_plan", recording)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
    engine = make_engine("fluid")
    oracle = solve_reference(scenario, workload, engine=engine, seed=scenario.seed)
    # what the oracle bills is what replaying its requests bills, and it meets the SLO
    run = engine.run(
        scenario, workload, SchedulePolicy(oracle.requested, name="oracle"), seed=scenario.seed
    )
    assert run.cost_usd == pytest.approx(oracle.cost_usd, rel=1e-12)
    assert oracle.attainment >= scenario.slo.target_attainment
    return oracle, replayed


@pytest.mark.parametrize("mean_rps", [30.0])
def test_the_family_first_then_only_model_plans_that_could_win(
    mean_rps: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = day_scenario(mean_rps)
    oracle, replayed = solve_long(scenario, monkeypatch)
    kinds = [plan.chosen for plan, _, _ in replayed]
    first_model = next(i for i, kind in enumerate(kinds) if kind != "rate")
    assert first_model > 0 and set(kinds[:first_model]) == {"rate"}
    assert "rate" not in kinds[first_model:]  # the family was searched once, first
    assert not any("trim" in kind or "shift" in kind for kind in kinds)  # no descent
    target = scenario.slo.target_attainment
    met = [bill for plan, bill, share in replayed if plan.chosen == "rate" and share >= target]
    assert met, "the family's search met the SLO"
    for plan, _, _ in replayed[first_model:]:
        if plan.chosen == "lagrangian":
            # replayed: the model expected it to bill close enough to the family's best
            assert plan.cost_usd < min(met) * (1.0 + MODEL_BILL_MARGIN)
    assert oracle.cost_usd <= min(met)


def test_a_model_plan_the_family_beats_is_not_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the same day with a margin that puts the model's expected bill out of reach (on
    # 14 days of ServeGen the family beats it by 19 %: benchmarks/oracle_alone.py)
    monkeypatch.setattr(planner.oracle, "MODEL_BILL_MARGIN", -0.5)
    oracle, replayed = solve_long(day_scenario(30.0), monkeypatch)
    assert {plan.chosen for plan, _, _ in replayed} <= {"rate", "constant"}
    assert oracle.chosen == "rate"
    target = day_scenario(30.0).slo.target_attainment
    assert oracle.cost_usd == min(bill for _, bill, share in replayed if share >= target)


def test_the_target_search_replays_no_plan_priced_out_of_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # beside a verified plan at `beat_usd`, a model plan the model prices 5 % or more
    # above it cannot win (a replay bills more than the model expects): not replayed
    from sim.oracle import build_problem, solve_oracle

    scenario = day_scenario(30.0)
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
    check = planner.oracle_replays.Verifier(scenario, workload, make_engine("fluid"), scenario.seed)
    problem = build_problem(
        scenario, workload, planner.oracle_bounds.provisioning_quantile_s(scenario, 0.5)
    )

    def solve(variant: object, goal: float) -> OracleResult:
        return solve_oracle(scenario, workload, target=goal, problem=variant)  # type: ignore[arg-type]

    assert planner.oracle._verified_model_plan(check, solve, problem, beat_usd=1.0) is None
    assert check.replays == 0
    replayed: list[float] = []
    replay_plan = planner.oracle_replays.Verifier.replay_plan

    def recording(self: planner.oracle_replays.Verifier, plan: OracleResult):  # type: ignore[no-untyped-def]
        replayed.append(plan.cost_usd)
        return replay_plan(self, plan)

    monkeypatch.setattr(planner.oracle_replays.Verifier, "replay_plan", recording)
    first = solve(problem, scenario.slo.target_attainment).cost_usd
    planner.oracle._verified_model_plan(check, solve, problem, beat_usd=first)
    assert replayed and max(replayed) < first * (1.0 + MODEL_BILL_MARGIN)


def test_a_family_that_met_nothing_is_not_searched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # caps far above what the queue takes: no rate-sized plan meets the SLO; the model's
    # plans then answer, and the family's search (the horizon's budget) is not repeated
    import planner.oracle_search

    monkeypatch.setattr(planner.oracle_search, "RATE_FIRST_UTILISATION", 1.5)
    monkeypatch.setattr(planner.oracle_search, "RATE_UTILISATION", (1.45, 1.5))
    searches: list[object] = []
    rate_sized_plan = planner.oracle.rate_sized_plan

    def counting(*args: object, **kwargs: object) -> object:
        found = rate_sized_plan(*args, **kwargs)  # type: ignore[arg-type]
        searches.append(found)
        return found

    monkeypatch.setattr(planner.oracle, "rate_sized_plan", counting)
    oracle, replayed = solve_long(day_scenario(30.0), monkeypatch)
    assert searches == [None]
    assert oracle.chosen != "rate"
    assert any(plan.chosen == "lagrangian" for plan, _, _ in replayed)
