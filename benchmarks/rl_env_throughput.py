"""Benchmark: `scaleplan/Cluster-v0` steps per second, by how episodes draw their arrivals.

On the RL benchmarks' two traces (ServeGen m-small at 60 req/s, days 1-8, as
`rl_servegen.py` trains; NAB Twitter FB at 20 req/s on a 1-4,000 pool, weeks 1-4,
as `rl_volatile.py`), random actions over the threshold preset, one env and four in
gymnasium's `SyncVectorEnv`, episode starts included, for 1-hour and 6-hour
(`planner train`'s default) episodes (at least three episodes of each vector env:
episode starts weigh in as in training), with the env's `episode_sampling` per-second
(the default) and exact (request by request, the default before). Prints one JSON
line per setting and a last one with all of them, cpu_count and versions.

Usage:
    .venv/bin/python benchmarks/rl_env_throughput.py [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
from typing import get_args

import rl_servegen  # benchmarks/ is on sys.path as a script
import rl_volatile
from machine_info import machine
from rl_common import PACKAGES, env_steps_per_s

from sim.gym.env import EpisodeSampling

N_ENVS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps per measurement")
    args = parser.parse_args()
    cases = {
        "servegen": (rl_servegen.scenario(rl_servegen.TRACE, 60.0), (0.0, 8 * 24.0)),
        "nab-fb": (
            rl_volatile.scenario(rl_volatile.NAB / "Twitter_volume_FB.csv"),
            (0.0, 4 * rl_volatile.WEEK_H),
        ),
    }
    rows = []
    for case, (scenario, window_h) in cases.items():
        for episode_h in (1.0, 6.0):
            for sampling in get_args(EpisodeSampling):
                # at least three episodes of each of the four vector envs, so that
                # episode starts weigh in both measurements as they do in training
                per_episode = int(episode_h * 3600 / scenario.decision_interval_s)
                steps = max(args.steps, 3 * N_ENVS * per_episode)
                rates = env_steps_per_s(
                    scenario, window_h, "threshold", steps, n_envs=N_ENVS,
                    episode_h=episode_h, episode_sampling=sampling,
                )  # fmt: skip
                row = {
                    "case": case, "episode_h": episode_h, "sampling": sampling, "steps": steps,
                    **rates,
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "rl_env_throughput",
                "rows": rows,
                "load_1m": os.getloadavg()[0],
                **machine(PACKAGES),
            }
        )
    )


if __name__ == "__main__":
    main()
