"""Benchmark: what the retraining pipeline picks on volatile traffic, and at what cost.

The pipeline `planner retrain` and `planner recommend` share (`run_contest`): every
policy family tuned on the older part, scored with the replay-verified oracle on
the newest part over seeds, the cheapest candidate meeting the SLO wins.

Cases (issue 13):
- NAB Twitter volume FB, IBM, KO, CRM (5-minute counts), from hour 96, scaled to a
  20 req/s mean; g5.xlarge node pool min 1 / max 4,000 (initial 8); SLO 25 s at
  0.95; trained on weeks 1-5, scored on weeks 6-8.
- ServeGen m-small, 14 days scaled to a 60 req/s mean; g5.xlarge min 2 / max 160;
  SLO 25 s at 0.95; trained on days 1-10, scored on days 11-14.

Prints per case the winner, its attainment and cost over seeds, its ratio to the
oracle, the runners-up and (when nothing meets the SLO) what would; as its last
line one JSON object with every figure.

Usage:
    .venv/bin/python benchmarks/retrain_volatile.py [--cases FB,IBM,KO,CRM,servegen]
        [--trials 8] [--seeds 2] [--workers 2] [--tuning-headroom 0.0]
        [--validation-share 0.2] [--rl-budget-min 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from machine_info import machine

from planner.executor import LocalExecutor
from planner.retrain.pipeline import ContestOutcome, ContestSettings, run_contest
from sim.scenario import Scenario, scenario_from_dict

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
WEEK_H = 7 * 24.0
NAB_START_H = 96.0
PACKAGES = ("scaleplan", "numpy", "numba", "optuna", "statsmodels")


def nab_case(symbol: str) -> tuple[Scenario, tuple[float, float]]:
    data: dict[str, Any] = {
        "name": f"nab-twitter-{symbol.lower()}",
        "workload": {
            "format": "nab", "path": str(TRACES / "nab" / f"Twitter_volume_{symbol}.csv"),
            "scale_mean_rps": 20.0, "start_h": NAB_START_H,
        },
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 1, "max_replicas": 4000, "initial_replicas": 8,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "benchmark", Path.cwd()), (NAB_START_H, 5 * WEEK_H)


def servegen_case() -> tuple[Scenario, tuple[float, float]]:
    data: dict[str, Any] = {
        "name": "servegen-m-small",
        "workload": {
            "format": "servegen", "path": str(TRACES / "servegen" / "m-small"),
            "duration_h": 14 * 24.0, "scale_mean_rps": 60.0,
        },
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 2, "max_replicas": 160, "initial_replicas": 40,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "benchmark", Path.cwd()), (0.0, 10 * 24.0)


def figures(outcome: ContestOutcome, wall_s: float) -> dict[str, Any]:
    ranked = outcome.board.ranked()
    best = outcome.decision.best_challenger
    return {
        "wall_s": wall_s,
        "timings_s": outcome.timings_s,
        "windows": outcome.windows.to_json(),
        "winner": None if best is None else best.candidate.label,
        "winner_meets_slo": bool(best and best.meets_slo),
        "oracle_usd": [o.cost_usd for o in outcome.board.oracles],
        "oracle_feasible": [o.feasible for o in outcome.board.oracles],
        "candidates": [s.to_json() for s in ranked],
        "tuning": [
            {
                "family": t.family,
                "chosen": t.chosen,
                "params": t.params,
                "wall_s": t.wall_s,
                "fit_attainment": t.fit_attainment,
                "validation_attainment": t.validation_attainment,
                "chosen_rank": t.chosen_rank,
            }
            for t in outcome.tuned
        ],
        "remedies": [r.to_json() for r in outcome.remedies],
    }


def show(name: str, outcome: ContestOutcome, wall_s: float) -> None:
    print(f"\n== {name}: {wall_s:.0f} s ({outcome.timings_s})")
    oracle = ", ".join(f"{o.cost_usd:,.0f} ({o.attainment:.2%})" for o in outcome.board.oracles)
    print(f"   oracle per seed: USD {oracle}")
    for t in outcome.tuned:
        validation = "-" if t.validation_attainment is None else f"{t.validation_attainment:.2%}"
        print(
            f"   tuned {t.family:<20} {t.chosen:<8} rank {t.chosen_rank}  fitting "
            f"{t.fit_attainment:.2%}  validation {validation}"
        )
    for score in outcome.board.ranked():
        ratio = score.cost_vs_oracle
        print(
            f"   {score.candidate.label:<28} {'meets ' if score.meets_slo else 'misses'} "
            f"{score.slo_attainment.mean:7.2%} [{score.slo_attainment.low:.2%}, "
            f"{score.slo_attainment.high:.2%}]  USD {score.cost_usd.mean:10,.0f}  "
            f"{'n/a' if ratio is None else f'{ratio.mean:.2f}x'}"
        )
    for remedy in outcome.remedies:
        print(
            f"   would help: {remedy.change}: {remedy.policy} {remedy.slo_attainment:.2%} "
            f"USD {remedy.cost_usd:,.0f}"
        )
    print(f"   decision: {outcome.decision.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="FB,IBM,KO,CRM,servegen")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tuning-headroom", type=float, default=0.0)
    parser.add_argument("--validation-share", type=float, default=0.2)
    parser.add_argument("--rl-budget-min", type=float, default=0.0)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with LocalExecutor(max_workers=args.workers) as executor:
        for case in args.cases.split(","):
            scenario, train_h = servegen_case() if case == "servegen" else nab_case(case)
            settings = ContestSettings(
                trials=args.trials,
                seeds=args.seeds,
                train_window_h=train_h,
                tuning_headroom=args.tuning_headroom,
                validation_share=args.validation_share,
                rl_budget_s=args.rl_budget_min * 60.0,
            )
            started = time.perf_counter()
            outcome = run_contest(
                scenario, settings, executor, workdir=Path(tempfile.mkdtemp()),
                progress=lambda text: print(f"   {text}", flush=True),
            )  # fmt: skip
            wall_s = time.perf_counter() - started
            show(scenario.name, outcome, wall_s)
            results[case] = figures(outcome, wall_s)
    print(
        json.dumps(
            {
                "benchmark": "retrain_volatile",
                "trials": args.trials,
                "seeds": args.seeds,
                "tuning_headroom": args.tuning_headroom,
                "validation_share": args.validation_share,
                "rl_budget_min": args.rl_budget_min,
                "cases": results,
                **machine(PACKAGES),
            }
        )
    )


if __name__ == "__main__":
    main()
