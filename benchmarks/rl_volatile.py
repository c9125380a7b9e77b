"""Benchmark: a learned policy on volatile traffic, then on shifted traffic it never saw.

NAB Twitter volume FB (8 weeks of 5-minute counts, peak/mean 71) scaled so its mean
is 20 req/s, on g5.xlarge replicas (1-4,000, initial 8: large enough for the
peak), SLO 95 % within 25 s, 15 s decisions (as benchmarks/volatile_8w.py).
`planner train`'s pipeline: the threshold policy is calibrated on weeks 1-4, the
model trains on 6-hour episodes cut from weeks 1-4 at random offsets and levels,
the best training seed is picked on week 5, and everything is scored on weeks 6-8
over the evaluation seeds. Then the same bundle, untouched (`rl:PATH`), and the
same calibrated threshold run on NAB Twitter volume KO (peak/mean 197), scaled
the same way, weeks 6-8. Goal (issue 10): cheaper than the calibrated threshold
at equal or better attainment, meeting the SLO, on each.

Prints env steps/s, both held-back tables, and as its last line one JSON object.

`--action-mode residual` trains in the level mode of the bundles written before
residual-change (issue 10: its factors compound while the base holds), for a
before/after comparison; `--skip-shifted` leaves out the KO half (its oracle and
runs) for a short measurement.

Usage:
    .venv/bin/python benchmarks/rl_volatile.py [--algo ppo] [--timesteps 200000]
        [--max-train-min 20] [--seeds 1] [--eval-seeds 5] [--tune-trials 20]
        [--action-mode residual-change|residual|absolute] [--skip-shifted]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rl_common import env_steps_per_s, print_json, summary, train_and_report

from planner.train.config import TrainConfig
from planner.train.evaluate import evaluate
from planner.train.pipeline import write_rl_bundle
from planner.train.report import train_table
from planner.train.windows import cut
from policies.registry import resolve
from sim.contract import Observation
from sim.gym.actions import ACTION_MODES, DEFAULT_ACTION_MODE, DEFAULT_FLOOR_MODE, FLOOR_MODES
from sim.gym.agent import ChooseAction
from sim.gym.env import RewardWeights
from sim.scenario import Scenario, scenario_from_dict

NAB = Path(__file__).resolve().parents[2] / "shared" / "traces" / "nab"
WEEK_H = 7 * 24.0


def scenario(trace: Path) -> Scenario:
    data: dict[str, Any] = {
        "name": f"nab-{trace.stem}",
        "workload": {"format": "nab", "path": str(trace), "scale_mean_rps": 20.0},
        "pool": {
            "kind": "gpu-node-pool", "instance_type": "g5.xlarge",
            "min_replicas": 1, "max_replicas": 4000, "initial_replicas": 8,
        },
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "seed": 0,
    }  # fmt: skip
    return scenario_from_dict(data, "rl_volatile scenario", Path.cwd())


def _hours(trace: Path) -> float:
    from sim.workload import load_trace

    return load_trace(trace, "nab").duration_s / 3600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-trace", type=Path, default=NAB / "Twitter_volume_FB.csv")
    parser.add_argument("--shifted-trace", type=Path, default=NAB / "Twitter_volume_KO.csv")
    parser.add_argument("--algo", default="ppo", choices=["ppo", "dqn"])
    parser.add_argument("--base", default="threshold", choices=["threshold", "predictive", "hpa"])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--max-train-min", type=float, default=20.0)
    parser.add_argument("--checkpoints", type=int, default=4, help="validation scores per seed")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--eval-seeds", type=int, default=5)
    parser.add_argument("--tune-trials", type=int, default=20)
    parser.add_argument("--throughput-steps", type=int, default=4000)
    parser.add_argument("--action-mode", default=DEFAULT_ACTION_MODE, choices=ACTION_MODES)
    parser.add_argument("--floor-mode", default=DEFAULT_FLOOR_MODE, choices=FLOOR_MODES)
    parser.add_argument(
        "--slo-miss-weight",
        type=float,
        default=RewardWeights().slo_miss,
        help="reward weight of a request over the SLO (sim.gym.env.RewardWeights)",
    )
    parser.add_argument(
        "--tune-base",
        action="store_true",
        help="tune the base family on weeks 1-4 first, train on it (planner train --tune-base)",
    )
    parser.add_argument("--skip-shifted", action="store_true", help="score FB only, not KO")
    parser.add_argument(
        "--constant-actions",
        action="store_true",
        help="no training: every action of --action-mode taken every interval on FB weeks 6-8",
    )
    args = parser.parse_args()
    console = Console(width=150)
    train_cluster = scenario(args.train_trace)
    # NAB's realTweets span 2015-02-26 to 2015-04-23 (1,319 h, not quite 8 weeks):
    # "weeks 6-8" is hour 840 to the end of the shorter of the two traces
    end_h = min(_hours(args.train_trace), _hours(args.shifted_trace))
    train_h, eval_h = (0.0, 5 * WEEK_H), (5 * WEEK_H, end_h - 5 * WEEK_H)
    if args.constant_actions:
        constant_actions(train_cluster, eval_h, args, console)
        return
    rates = env_steps_per_s(
        train_cluster,
        (0.0, 4 * WEEK_H),
        args.base,
        args.throughput_steps,
        action_mode=args.action_mode,
    )
    console.print(f"env steps/s: {rates}")
    config = TrainConfig(
        algo=args.algo,
        timesteps=args.timesteps,
        base=args.base,
        action_mode=args.action_mode,
        floor_mode=args.floor_mode,
        weights=RewardWeights(slo_miss=args.slo_miss_weight),
        history_h=WEEK_H if args.base == "predictive" else 0.0,
        max_train_s=args.max_train_min * 60.0,
        checkpoints=args.checkpoints,
        tune_base=args.tune_base,
    )
    outcome, wall_s = train_and_report(
        train_cluster,
        config,
        train_h=train_h,
        eval_h=eval_h,
        seeds=list(range(args.seeds)),
        eval_seeds=list(range(args.eval_seeds)),
        tune_trials=args.tune_trials,
        console=console,
    )
    figures = {
        "benchmark": "rl_volatile",
        "args": {k: str(v) for k, v in vars(args).items()},
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
    if args.skip_shifted:
        print_json(figures)
        return
    with tempfile.TemporaryDirectory() as root:
        bundle = write_rl_bundle(outcome, Path(root), created_at=datetime.now(UTC))
        shifted = cut(scenario(args.shifted_trace), {"held_back": eval_h})["held_back"]
        baselines = {
            "rl (FB bundle)": resolve(f"rl:{bundle}"),
            "threshold-tuned (FB)": outcome.tuned_threshold,
            args.base: resolve(args.base),
            "predictive": resolve("predictive"),
            "hpa": resolve("hpa"),
        }
        on_shifted = evaluate(
            shifted,
            eval_h,
            learned={},
            baselines=baselines,
            seeds=list(range(args.eval_seeds)),
        )
    console.print(f"shifted traffic: {args.shifted_trace.name}, weeks 6-8, untouched bundle")
    console.print(train_table(replace(outcome, evaluation=on_shifted)))
    print_json(
        {
            **figures,
            "shifted": summary(on_shifted),
            "shifted_oracle_cost_usd": on_shifted.oracle_cost_usd,
        }
    )


def constant_actions(
    cluster: Scenario, eval_h: tuple[float, float], args: argparse.Namespace, console: Console
) -> None:
    """Each action of the mode, every interval, behind the floor, on the held-back weeks.

    What an agent that settled on one action would cost (issue 10: in the level mode
    a factor above 1 compounds while the base holds). One fluid run per action, seed 0.
    """
    import time

    from rich.table import Table

    from planner.runs import engine_named, scenario_inputs
    from sim.gym.actions import DEFAULT_FLOOR_UTILISATION, ActionMap
    from sim.gym.agent import AgentPolicy

    held_back = cut(cluster, {"held_back": eval_h})["held_back"]
    workload, history = scenario_inputs(held_back)
    actions = ActionMap.default(args.action_mode)
    table = Table(
        title=f"{args.action_mode}, floor {args.floor_mode}: one action every interval, "
        "FB weeks 6-8, seed 0"
    )
    for name in ("action", "cost USD", "SLO att.", "peak desired", "CPU s"):
        table.add_column(name, justify="left" if name == "action" else "right")
    rows: dict[str, Any] = {}
    for action in range(actions.n):
        policy = AgentPolicy(
            resolve(args.base).build(),
            actions,
            floor_utilisation=DEFAULT_FLOOR_UTILISATION,
            choose=always(action),
            name=actions.describe(action),
            floor_mode=args.floor_mode,
        )
        started = time.process_time()
        result = engine_named("fluid").run(held_back, workload, policy, seed=0, history=history)
        cpu_s = time.process_time() - started
        peak = max((r.desired for r in result.decisions), default=0)
        rows[actions.describe(action)] = {
            "cost_usd": round(result.cost_usd, 2),
            "slo_attainment": round(result.slo_attainment, 4),
            "peak_desired": peak,
        }
        table.add_row(
            actions.describe(action),
            f"{result.cost_usd:,.0f}",
            f"{result.slo_attainment:.2%}",
            str(peak),
            f"{cpu_s:.1f}",
        )
    console.print(table)
    print_json(
        {
            "benchmark": "rl_volatile --constant-actions",
            "args": {k: str(v) for k, v in vars(args).items()},
            "constant_actions": rows,
        }
    )


def always(action: int) -> ChooseAction:
    def choose(observation: Observation, base_desired: int) -> int:
        del observation, base_desired
        return action

    return choose


if __name__ == "__main__":
    main()
