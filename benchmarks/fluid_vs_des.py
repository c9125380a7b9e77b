"""Fluid engine vs SimPy engine: agreement and speed on the same runs, every preset.

Runs every policy preset (`policies.registry.PRESETS`, plus a fixed fleet and the
oracle's replay) in both engines on the Azure LLM conv and code hours (scaled to
12 req/s) and one ServeGen m-small day (scaled to 2 req/s so the DES finishes in
seconds), with fixed provisioning delays (boot 125 s + pull 90 s + load 60 s, so
ready times agree) and with the pool's own random delays, over several seeds.
Both engines replay the same arrivals for a seed (the hours are fixed traces: the
seed moves only the delays and the policies' randomness).

Prints one line per run (fluid minus DES: attainment in points, cost in %), then
per (workload, delays, policy) the mean and the worst run over the seeds, the
pairs outside the project tolerance (1 point, 3 %), and one JSON object with every
figure, the CPU count and package versions.

    .venv/bin/python benchmarks/fluid_vs_des.py [--seeds 0-4] [--delays fixed,random]
        [--workloads conv-hour,code-hour,servegen-day] [--policies hpa,step] [--workers 2]

Defaults: seeds 0-4, both delay kinds, the three workloads, every preset.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Any

from machine_info import machine

from policies.registry import list_presets, resolve
from sim.contract import Policy
from sim.des.engine import DesEngine
from sim.fluid import FluidEngine
from sim.oracle import solve_oracle
from sim.replay import FixedPolicy
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload
from sim.workload.model import Workload

FIXED_DELAYS = {"node_boot_s": 125, "image_pull_s": 90, "model_load_s": 60}
WORKLOADS = ("conv-hour", "code-hour", "servegen-day")
TOLERANCE_PP, TOLERANCE_PCT = 1.0, 3.0
RUN_HEADER = (
    f"{'workload':13s} {'delays':6s} {'policy':20s} {'seed':>4s} {'att fluid':>9s} "
    f"{'att des':>8s} {'d pp':>6s} {'cost fluid':>10s} {'cost des':>9s} {'d %':>6s}"
)
SUMMARY_HEADER = (
    f"{'workload':13s} {'delays':6s} {'policy':20s} {'n':>2s} {'mean d pp':>9s} "
    f"{'worst d pp':>10s} {'mean d %':>8s} {'worst d %':>9s} {'outside':>7s}"
)


def scenario(name: str, delays: str, spillover: bool = False) -> Scenario:
    """The benchmark's scenario: `name` in WORKLOADS, `delays` "fixed" or "random"."""
    pool: dict[str, Any] = {"kind": "gpu-node-pool", "instance_type": "g5.xlarge"}
    if delays == "fixed":
        pool.update(FIXED_DELAYS)
    if name in ("conv-hour", "code-hour"):
        path = "package:azure_conv.csv" if name == "conv-hour" else "package:azure_code.csv"
        workload: dict[str, Any] = {"format": "azure-llm", "path": path, "scale_mean_rps": 12.0}
        pool.update(min_replicas=4, max_replicas=32, initial_replicas=8)
    else:
        workload = {
            "format": "servegen",
            "path": "package:servegen_m_small_2d",
            "start_h": 24,
            "duration_h": 24,
            "scale_mean_rps": 2.0,
        }
        pool.update(min_replicas=1, max_replicas=48, initial_replicas=4)
    data: dict[str, Any] = {
        "name": f"{name}-{delays}",
        "workload": workload,
        "pool": pool,
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "base_dir": str(BUNDLED_DIR),
    }
    if spillover:  # the spillover preset sizes a serverless endpoint beside the pool
        data["spillover"] = {"kind": "serverless", "name": "spill", "max_replicas": 200}
    return Scenario.model_validate(data)


@cache
def _loaded(name: str, delays: str, spillover: bool) -> tuple[Scenario, Workload]:
    sc = scenario(name, delays, spillover)
    return sc, build_workload(sc.workload, sc.resolve_path, seed=0)


def _policy(name: str, sc: Scenario, workload: Workload) -> Policy:
    if name == "fixed":  # a fleet that carries the peak without scaling
        return FixedPolicy(4 if sc.name.startswith("servegen") else 12)
    if name == "oracle":
        return solve_oracle(sc, workload).replay_policy()
    return resolve(name).build()


def run_pair(task: tuple[str, str, str, int]) -> dict[str, Any]:
    """Both engines on one (workload, delays, policy, seed)."""
    name, delays, policy, seed = task
    sc, workload = _loaded(name, delays, policy == "spillover")
    began = time.perf_counter()
    fluid = FluidEngine().run(sc, workload, _policy(policy, sc, workload), seed=seed)
    fluid_s = time.perf_counter() - began
    began = time.perf_counter()
    des = DesEngine().run(sc, workload, _policy(policy, sc, workload), seed=seed)
    des_s = time.perf_counter() - began
    return {
        "workload": name,
        "delays": delays,
        "policy": policy,
        "seed": seed,
        "fluid_s": round(fluid_s, 3),
        "des_s": round(des_s, 3),
        "attainment_fluid": round(fluid.slo_attainment, 4),
        "attainment_des": round(des.slo_attainment, 4),
        "attainment_diff_pp": round(100 * (fluid.slo_attainment - des.slo_attainment), 2),
        "cost_fluid_usd": round(fluid.cost_usd, 3),
        "cost_des_usd": round(des.cost_usd, 3),
        "cost_diff_pct": round(100 * (fluid.cost_usd / des.cost_usd - 1), 2),
        "p99_fluid_s": round(fluid.p99_latency_s, 2),
        "p99_des_s": round(des.p99_latency_s, 2),
    }


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--delays", default="fixed,random")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--policies", default=",".join([*list_presets(), "oracle"]))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    policies = list(dict.fromkeys(p for p in args.policies.split(",") if p))
    tasks = [
        (name, delays, policy, seed)
        for name in args.workloads.split(",")
        for delays in args.delays.split(",")
        for policy in policies
        for seed in _seeds(args.seeds)
        if not (policy == "fixed" and seed > 0 and delays == "fixed")  # identical runs
    ]
    FluidEngine().run(*_loaded("conv-hour", "fixed", False), FixedPolicy(4), seed=0)  # compile
    began = time.perf_counter()
    print(RUN_HEADER)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(args.workers) if args.workers > 1 else _Serial() as pool:
        for row in pool.map(run_pair, tasks):
            rows.append(row)
            print(
                f"{row['workload']:13s} {row['delays']:6s} {row['policy']:20s} {row['seed']:4d} "
                f"{row['attainment_fluid']:9.4f} {row['attainment_des']:8.4f} "
                f"{row['attainment_diff_pp']:6.2f} {row['cost_fluid_usd']:10.2f} "
                f"{row['cost_des_usd']:9.2f} {row['cost_diff_pct']:6.1f}",
                flush=True,
            )
    summary = _summarise(rows)
    print()
    print(SUMMARY_HEADER)
    for s in summary:
        print(
            f"{s['workload']:13s} {s['delays']:6s} {s['policy']:20s} {s['runs']:2d} "
            f"{s['mean_pp']:9.2f} {s['worst_pp']:10.2f} {s['mean_pct']:8.1f} "
            f"{s['worst_pct']:9.1f} {s['outside']:7d}"
        )
    outside = sum(s["outside"] for s in summary)
    elapsed_s = time.perf_counter() - began
    print(f"\n{outside} of {len(rows)} pairs outside {TOLERANCE_PP} pp / {TOLERANCE_PCT} %")
    print(f"{elapsed_s:.0f} s on {os.cpu_count()} CPUs")
    print(
        json.dumps(
            {
                "benchmark": "fluid_vs_des",
                "runs": rows,
                "summary": summary,
                "outside_tolerance": outside,
                **machine(("numpy", "numba", "simpy", "scipy")),
            }
        )
    )


def _summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and worst (largest magnitude) fluid-minus-DES per (workload, delays, policy)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["workload"], row["delays"], row["policy"])].append(row)
    out = []
    for (name, delays, policy), runs in groups.items():
        pp = [r["attainment_diff_pp"] for r in runs]
        pct = [r["cost_diff_pct"] for r in runs]
        out.append(
            {
                "workload": name,
                "delays": delays,
                "policy": policy,
                "runs": len(runs),
                "mean_pp": round(sum(pp) / len(pp), 2),
                "worst_pp": max(pp, key=abs),
                "mean_pct": round(sum(pct) / len(pct), 2),
                "worst_pct": max(pct, key=abs),
                "outside": sum(
                    abs(a) > TOLERANCE_PP or abs(c) > TOLERANCE_PCT
                    for a, c in zip(pp, pct, strict=True)
                ),
            }
        )
    return out


class _Serial:
    """`ProcessPoolExecutor`'s `map` in this process (one worker)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Any, items: list[Any]) -> Any:
        return map(fn, items)


if __name__ == "__main__":
    main()
