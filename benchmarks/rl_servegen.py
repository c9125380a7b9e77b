"""Benchmark: a learned policy on ServeGen m-small, trained on days 1-10, evaluated on 11-14.

ServeGen m-small (14 days of 600 s windows) scaled so its 14-day mean is 60 req/s,
on g5.xlarge replicas (2-160, initial 40), SLO 95 % within 25 s, 15 s decisions
(as benchmarks/scoreboard_servegen.py). `planner train`'s pipeline: the threshold
policy is calibrated on days 1-8 (optuna), the model trains on 6-hour episodes cut
from days 1-8 at random offsets and levels, the best training seed is picked on
days 9-10, and everything is scored on days 11-14 over the evaluation seeds
against the calibrated threshold, predictive, HPA defaults, the untouched base
policy and the oracle. Goal (issue 10): training within 20 minutes of wall clock
on a 2-core machine; cheaper than the calibrated threshold at equal or better
attainment, meeting the SLO.

Prints env steps/s (single and SyncVectorEnv), the held-back table, and as its
last line one JSON object with the figures.

Usage:
    .venv/bin/python benchmarks/rl_servegen.py [--algo ppo] [--timesteps 200000]
        [--max-train-min 20] [--seeds 1] [--eval-seeds 5] [--tune-trials 20] [--base threshold]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rl_common import env_steps_per_s, print_json, summary, train_and_report

from planner.train.config import TrainConfig
from sim.scenario import Scenario, scenario_from_dict

TRACE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "servegen" / "m-small"
DAY_H = 24.0


def scenario(trace: Path, mean_rps: float) -> Scenario:
    data: dict[str, Any] = {
        "name": "servegen-m-small-14d",
        "workload": {"format": "servegen", "path": str(trace), "scale_mean_rps": mean_rps},
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 2, "max_replicas": 160, "initial_replicas": 40,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "rl_servegen scenario", Path.cwd())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--mean-rps", type=float, default=60.0)
    parser.add_argument("--algo", default="ppo", choices=["ppo", "dqn"])
    parser.add_argument("--base", default="threshold", choices=["threshold", "predictive", "hpa"])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--max-train-min", type=float, default=20.0)
    parser.add_argument("--checkpoints", type=int, default=4, help="validation scores per seed")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--eval-seeds", type=int, default=5)
    parser.add_argument("--tune-trials", type=int, default=20)
    parser.add_argument("--throughput-steps", type=int, default=4000)
    args = parser.parse_args()
    console = Console(width=150)
    cluster = scenario(args.trace, args.mean_rps)
    train_h, eval_h = (0.0, 10 * DAY_H), (10 * DAY_H, 4 * DAY_H)
    rates = env_steps_per_s(cluster, (0.0, 8 * DAY_H), args.base, args.throughput_steps)
    console.print(f"env steps/s: {rates}")
    config = TrainConfig(
        algo=args.algo,
        timesteps=args.timesteps,
        base=args.base,
        history_h=7 * DAY_H if args.base == "predictive" else 0.0,
        max_train_s=args.max_train_min * 60.0,
        checkpoints=args.checkpoints,
    )
    outcome, wall_s = train_and_report(
        cluster,
        config,
        train_h=train_h,
        eval_h=eval_h,
        seeds=list(range(args.seeds)),
        eval_seeds=list(range(args.eval_seeds)),
        tune_trials=args.tune_trials,
        console=console,
    )
    print_json(
        {
            "benchmark": "rl_servegen",
            "args": vars(args) | {"trace": str(args.trace)},
            "env_steps_per_s": rates,
            "trained_timesteps": {m.seed: m.trained_timesteps for m in outcome.trained},
            "kept_timesteps": {m.seed: m.timesteps for m in outcome.trained},
            "checkpoints": {
                m.seed: [(c.timesteps, c.cost_usd, c.attainment) for c in m.checkpoints]
                for m in outcome.trained
            },
            "pipeline_wall_s": wall_s,
            "held_back": summary(outcome.evaluation),
            "oracle_cost_usd": outcome.evaluation.oracle_cost_usd,
        }
    )


if __name__ == "__main__":
    main()
