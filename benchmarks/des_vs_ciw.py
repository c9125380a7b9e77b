"""The des engine against Ciw on M/M/16 at utilisation 0.8, checked against Erlang C.

Scenario: Poisson arrivals at 12.8 req/s, exponential service with mean 1 s, 16
servers, one FIFO queue, no timeouts (rho = 0.8). Our engine runs it as a GPU node
pool of 16 replicas with `max_batch` 1 under a fixed policy; Ciw (Palmer et al.,
"Ciw: An open-source discrete event simulation library", J. Simulation 2019) as
one node with 16 servers. Each simulates 10^6 customers with its own randomness,
timed from building the model to holding the per-customer records (our arrivals
are drawn inside the timing, as Ciw draws its own; putting Ciw's records in
arrival order for the statistics is not timed).

Prints a table of customers per wall-clock second and per CPU second (steadier on
a shared machine), the ratio, and both simulators' mean wait and P(wait) after a
warm-up against the exact Erlang C values, with a batch-means standard error;
the last line is one JSON object with the figures, `cpu_count` and package versions.

Usage: .venv/bin/python benchmarks/des_vs_ciw.py [--customers 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np

SERVERS = 16
RHO = 0.8
SERVICE_S = 1.0
ARRIVAL_RPS = RHO * SERVERS / SERVICE_S
WARMUP = 10_000
BATCHES = 20


def _timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def _wait_figures(waits: np.ndarray) -> dict[str, float]:
    """Mean wait and P(wait) after the warm-up, with batch-means standard errors."""
    kept = waits[WARMUP:]
    waited = (kept > 1e-12).astype(np.float64)
    figures: dict[str, float] = {}
    for name, samples in (("mean_wait_s", kept), ("p_wait", waited)):
        means = np.array([batch.mean() for batch in np.array_split(samples, BATCHES)])
        figures[name] = float(samples.mean())
        figures[f"{name}_se"] = float(means.std(ddof=1) / math.sqrt(BATCHES))
    return figures


def run_ciw(customers: int, seed: int) -> dict[str, float]:
    """Ciw's M/M/16, run until `customers` customers have finished service."""
    import ciw

    def simulate() -> list[Any]:
        ciw.seed(seed)
        network = ciw.create_network(
            arrival_distributions=[ciw.dists.Exponential(rate=ARRIVAL_RPS)],
            service_distributions=[ciw.dists.Exponential(rate=1.0 / SERVICE_S)],
            number_of_servers=[SERVERS],
        )
        simulation = ciw.Simulation(network)
        simulation.simulate_until_max_customers(customers, method="Finish")
        records: list[Any] = simulation.get_all_records()
        return records

    records, wall_s, cpu_s = _timed(simulate)
    # In arrival order, as our engine's records are (outside the timing).
    records.sort(key=lambda record: record.arrival_date)
    waits = np.array([record.waiting_time for record in records], dtype=np.float64)
    return {
        "customers": float(waits.size),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        **_wait_figures(waits),
    }


def run_des(customers: int, seed: int) -> dict[str, float]:
    """Our engine on the same queue, until `customers` arrivals have been replayed."""
    from sim.capacity.pools import GpuNodePool
    from sim.capacity.service import ExponentialService
    from sim.des import DesEngine
    from sim.replay import FixedPolicy
    from sim.scenario import Scenario
    from sim.workload.model import RequestTrace

    # Long enough that the last arrivals finish, so every customer is served.
    horizon_s = customers / ARRIVAL_RPS + 60.0 * SERVICE_S
    pool = GpuNodePool(
        instance_type="g5.xlarge",
        min_replicas=SERVERS,
        max_replicas=SERVERS,
        service=ExponentialService(mean_s=SERVICE_S),
        queue_timeout_s=1e12,
    )
    scenario = Scenario.model_validate(
        {
            "name": "mm16",
            "workload": {
                "format": "synthetic",
                "synthetic": {"kind": "diurnal", "duration_h": 1, "base_rps": 1},
            },
            "pool": pool,
            "slo": {"latency_s": 5.0},
            "decision_interval_s": horizon_s / 4,
        }
    )

    def simulate() -> Any:
        rng = np.random.default_rng(seed)
        arrival_s = np.cumsum(rng.exponential(1.0 / ARRIVAL_RPS, customers))
        ones = np.ones(customers, dtype=np.int64)
        trace = RequestTrace(
            arrival_s=arrival_s, duration_s=horizon_s, input_tokens=ones, output_tokens=ones
        )
        return DesEngine().simulate(scenario, trace, FixedPolicy(SERVERS), seed=seed)

    run, wall_s, cpu_s = _timed(simulate)
    records = run.requests
    if run.result.served != customers:
        raise RuntimeError(f"des served {run.result.served} of {customers} customers")
    waits = records.start_s - records.arrival_s
    return {
        "customers": float(waits.size),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        **_wait_figures(waits),
    }


def main() -> None:
    from sim.capacity import queueing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    exact = {
        "mean_wait_s": queueing.mean_wait_s(SERVERS, ARRIVAL_RPS, SERVICE_S),
        "p_wait": queueing.erlang_c(SERVERS, ARRIVAL_RPS * SERVICE_S),
    }
    rows = {"des": run_des(args.customers, args.seed), "ciw": run_ciw(args.customers, args.seed)}
    for row in rows.values():
        row["per_wall_s"] = row["customers"] / row["wall_s"]
        row["per_cpu_s"] = row["customers"] / row["cpu_s"]
        for name in exact:
            row[f"{name}_rel_err"] = row[name] / exact[name] - 1.0

    print(
        f"M/M/{SERVERS} at rho {RHO}, {args.customers} customers, seed {args.seed}; "
        f"Erlang C: mean wait {exact['mean_wait_s']:.5f} s, P(wait) {exact['p_wait']:.5f}"
    )
    header = (
        f"{'simulator':<10}{'customers':>10}{'wall s':>9}{'cust/wall s':>13}{'cust/cpu s':>12}"
        f"{'mean wait':>11}{'+-se':>9}{'vs exact':>10}{'P(wait)':>9}{'+-se':>9}{'vs exact':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<10}{row['customers']:>10.0f}{row['wall_s']:>9.2f}{row['per_wall_s']:>13.0f}"
            f"{row['per_cpu_s']:>12.0f}{row['mean_wait_s']:>11.5f}{row['mean_wait_s_se']:>9.5f}"
            f"{row['mean_wait_s_rel_err']:>+10.2%}{row['p_wait']:>9.5f}{row['p_wait_se']:>9.5f}"
            f"{row['p_wait_rel_err']:>+10.2%}"
        )
    des, ciw = rows["des"], rows["ciw"]
    speedup_wall = des["per_wall_s"] / ciw["per_wall_s"]
    speedup_cpu = des["per_cpu_s"] / ciw["per_cpu_s"]
    print(f"speed-up (wall): {speedup_wall:.2f}x   speed-up (cpu): {speedup_cpu:.2f}x")
    figures = {
        "benchmark": "des_vs_ciw",
        "servers": SERVERS,
        "rho": RHO,
        "customers": args.customers,
        "seed": args.seed,
        "exact": exact,
        "des": des,
        "ciw": ciw,
        "speedup_wall": speedup_wall,
        "speedup_cpu": speedup_cpu,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("simpy", "ciw", "numpy", "scaleplan")},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
