"""The des engine's serverless mode against SimFaaS on SimFaaS's standard scenario.

Scenario (SimFaaS, Mahmoudi and Khazaei): Poisson arrivals at 0.9 req/s,
exponential warm service with mean 1.991 s, cold service 2.244 s (ours: the same
exponential service after an exponential cold start of 0.253 s, the same mean),
instances expire 600 s after they last went idle. Both simulate 10^6 seconds
(about 900,000 requests) with independent randomness.

Prints a table of simulated requests per wall-clock second (and per CPU second,
which is steadier on a shared machine), the ratio, and both simulators'
cold-start probabilities and average instance counts; the last line is one JSON
object with the figures, `cpu_count` and package versions.

Usage: .venv/bin/python benchmarks/des_vs_simfaas.py [--horizon-s 1e6] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from importlib.metadata import version
from typing import Any

import numpy as np

ARRIVAL_RPS = 0.9
WARM_S = 1.991
COLD_S = 2.244
KEEP_ALIVE_S = 600.0


def _timed(run: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def run_simfaas(horizon_s: float, seed: int) -> dict[str, float]:
    """SimFaaS's own simulator on its standard scenario (numpy global RNG, seeded)."""
    from simfaas.ServerlessSimulator import ServerlessSimulator

    def simulate() -> dict[str, float]:
        np.random.seed(seed)
        sim = ServerlessSimulator(
            arrival_rate=ARRIVAL_RPS,
            warm_service_rate=1.0 / WARM_S,
            cold_service_rate=1.0 / COLD_S,
            expiration_threshold=KEEP_ALIVE_S,
            max_time=horizon_s,
        )
        sim.generate_trace()
        result: dict[str, float] = sim.get_result_dict()
        return result

    result, wall_s, cpu_s = _timed(simulate)
    requests = float(result["reqs_total"])
    return {
        "requests": requests,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "p_cold": float(result["prob_cold"]),
        "cold_starts": float(result["reqs_cold"]),
        "mean_instances": float(result["inst_count_avg"]),
    }


def run_des(horizon_s: float, seed: int) -> dict[str, float]:
    """Our engine, serverless mode, timed end to end (arrivals drawn inside the timing)."""
    from sim.capacity.distributions import Delay
    from sim.capacity.pools import ServerlessEndpoint
    from sim.capacity.service import ExponentialService
    from sim.des import DesEngine
    from sim.replay import FixedPolicy
    from sim.scenario import Scenario
    from sim.workload.model import RequestTrace

    pool = ServerlessEndpoint(
        service=ExponentialService(mean_s=WARM_S),
        cold_start_s=Delay(kind="exponential", mean_s=COLD_S - WARM_S),
        keep_alive_s=KEEP_ALIVE_S,
    )
    scenario = Scenario.model_validate(
        {
            "name": "simfaas-standard",
            "workload": {
                "format": "synthetic",
                "synthetic": {"kind": "diurnal", "duration_h": horizon_s / 3600, "base_rps": 0.9},
            },
            "pool": pool,
            "slo": {"latency_s": 5.0},
            "decision_interval_s": 60.0,
        }
    )

    def simulate() -> Any:
        rng = np.random.default_rng(seed)
        count = int(ARRIVAL_RPS * horizon_s + 10 * math.sqrt(ARRIVAL_RPS * horizon_s) + 100)
        arrival_s = np.cumsum(rng.exponential(1.0 / ARRIVAL_RPS, count))
        arrival_s = arrival_s[arrival_s < horizon_s]
        ones = np.ones(arrival_s.size, dtype=np.int64)
        trace = RequestTrace(
            arrival_s=arrival_s, duration_s=horizon_s, input_tokens=ones, output_tokens=ones
        )
        return DesEngine().simulate(scenario, trace, FixedPolicy(0), seed=seed)

    run, wall_s, cpu_s = _timed(simulate)
    result = run.result
    return {
        "requests": float(result.arrivals),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "p_cold": result.cold_starts / result.arrivals,
        "cold_starts": float(result.cold_starts),
        "mean_instances": run.pools[pool.name].mean_instances,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon-s", type=float, default=1e6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    des = run_des(args.horizon_s, args.seed)
    simfaas = run_simfaas(args.horizon_s, args.seed)
    rows = {"des": des, "simfaas": simfaas}
    for row in rows.values():
        row["req_per_wall_s"] = row["requests"] / row["wall_s"]
        row["req_per_cpu_s"] = row["requests"] / row["cpu_s"]
        # Cold starts are rare and nearly independent: Poisson standard error.
        row["p_cold_se"] = math.sqrt(row["cold_starts"]) / row["requests"]

    print(f"SimFaaS standard scenario, {args.horizon_s:.0f} simulated seconds, seed {args.seed}")
    header = (
        f"{'simulator':<10}{'requests':>10}{'wall s':>9}{'req/wall s':>12}"
        f"{'req/cpu s':>11}{'P(cold)':>10}{'+-se':>9}{'instances':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<10}{row['requests']:>10.0f}{row['wall_s']:>9.2f}"
            f"{row['req_per_wall_s']:>12.0f}{row['req_per_cpu_s']:>11.0f}"
            f"{row['p_cold']:>10.5f}{row['p_cold_se']:>9.5f}{row['mean_instances']:>11.3f}"
        )
    speedup_wall = des["req_per_wall_s"] / simfaas["req_per_wall_s"]
    speedup_cpu = des["req_per_cpu_s"] / simfaas["req_per_cpu_s"]
    p_cold_diff = des["p_cold"] / simfaas["p_cold"] - 1.0
    instances_diff = des["mean_instances"] / simfaas["mean_instances"] - 1.0
    print(f"speed-up (wall): {speedup_wall:.2f}x   speed-up (cpu): {speedup_cpu:.2f}x")
    print(f"P(cold) des vs SimFaaS: {p_cold_diff:+.2%}   instances: {instances_diff:+.2%}")
    figures = {
        "benchmark": "des_vs_simfaas",
        "horizon_s": args.horizon_s,
        "seed": args.seed,
        "des": des,
        "simfaas": simfaas,
        "speedup_wall": speedup_wall,
        "speedup_cpu": speedup_cpu,
        "p_cold_rel_diff": p_cold_diff,
        "mean_instances_rel_diff": instances_diff,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("simpy", "simfaas", "numpy", "scaleplan")},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
