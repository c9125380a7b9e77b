"""Fluid engine vs SimPy engine: speed ratio and accuracy on the same runs.

Runs the Azure LLM conv hour (12 req/s) and one ServeGen m-small day (scaled to
2 req/s so the DES finishes in seconds) under several policies in both engines,
with the same seed, and prints a table of wall time, SLO attainment, cost and p99
latency per engine. The last line is one JSON object with every figure, the CPU
count and package versions.

    .venv/bin/python benchmarks/fluid_vs_des.py [--quick]

`--quick` runs only the conv hour; `--seed N` picks the run seed (default 0: on
the ServeGen day it samples the arrivals, the conv hour is a fixed trace).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from policies.aws_target_tracking import AwsTargetTrackingSpec
from policies.hpa import HpaSpec
from policies.step import StepSpec
from policies.threshold import ThresholdSpec
from sim.contract import Policy
from sim.des.engine import DesEngine
from sim.fluid import FluidEngine
from sim.oracle import solve_oracle
from sim.replay import FixedPolicy
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload

FIXED_DELAYS = {"node_boot_s": 125, "image_pull_s": 90, "model_load_s": 60}


def scenario(name: str) -> Scenario:
    pool: dict[str, Any] = {"kind": "gpu-node-pool", "instance_type": "g5.xlarge", **FIXED_DELAYS}
    if name == "conv-hour":
        workload = {"format": "azure-llm", "path": "package:azure_conv.csv", "scale_mean_rps": 12.0}
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
    return Scenario.model_validate(
        {
            "name": name,
            "workload": workload,
            "pool": pool,
            "slo": {"latency_s": 25.0, "target_attainment": 0.95},
            "decision_interval_s": 15,
            "base_dir": str(BUNDLED_DIR),
        }
    )


POLICIES: dict[str, Callable[[str], Policy]] = {
    "fixed": lambda sc: FixedPolicy(12 if sc == "conv-hour" else 4),
    "hpa": lambda sc: HpaSpec().build(),
    "threshold": lambda sc: ThresholdSpec().build(),
    "step": lambda sc: StepSpec().build(),
    "aws-target-tracking": lambda sc: AwsTargetTrackingSpec().build(),
}


def main() -> None:
    names = ["conv-hour"] if "--quick" in sys.argv else ["conv-hour", "servegen-day"]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    rows: list[dict[str, Any]] = []
    header = (
        f"{'scenario':13s} {'policy':20s} {'fluid s':>8s} {'des s':>7s} {'speedup':>8s} "
        f"{'att fluid':>9s} {'att des':>8s} {'d pp':>6s} {'cost fluid':>10s} {'cost des':>9s} "
        f"{'d %':>6s} {'p99 fluid':>9s} {'p99 des':>8s}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        sc = scenario(name)
        workload = build_workload(sc.workload, sc.resolve_path, seed=0)
        FluidEngine().run(sc, workload, FixedPolicy(4), seed=0)  # compile / load the kernels
        # the oracle as the planner runs it: solved offline, its schedule replayed
        replay = solve_oracle(sc, workload).replay_policy
        cases = {"oracle": lambda _sc, replay=replay: replay(), **POLICIES}
        for policy, make in cases.items():
            began = time.perf_counter()
            fluid = FluidEngine().run(sc, workload, make(name), seed=seed)
            fluid_s = time.perf_counter() - began
            began = time.perf_counter()
            des = DesEngine().run(sc, workload, make(name), seed=seed)
            des_s = time.perf_counter() - began
            row = {
                "scenario": name,
                "policy": policy,
                "fluid_s": round(fluid_s, 3),
                "des_s": round(des_s, 3),
                "speedup": round(des_s / fluid_s, 1),
                "attainment_fluid": round(fluid.slo_attainment, 4),
                "attainment_des": round(des.slo_attainment, 4),
                "attainment_diff_pp": round(100 * (fluid.slo_attainment - des.slo_attainment), 2),
                "cost_fluid_usd": round(fluid.cost_usd, 3),
                "cost_des_usd": round(des.cost_usd, 3),
                "cost_diff_pct": round(100 * (fluid.cost_usd / des.cost_usd - 1), 2),
                "p99_fluid_s": round(fluid.p99_latency_s, 2),
                "p99_des_s": round(des.p99_latency_s, 2),
            }
            rows.append(row)
            print(
                f"{name:13s} {policy:20s} {fluid_s:8.2f} {des_s:7.2f} {row['speedup']:8.1f} "
                f"{fluid.slo_attainment:9.4f} {des.slo_attainment:8.4f} "
                f"{row['attainment_diff_pp']:6.2f} {fluid.cost_usd:10.2f} {des.cost_usd:9.2f} "
                f"{row['cost_diff_pct']:6.1f} {fluid.p99_latency_s:9.1f} {des.p99_latency_s:8.1f}",
                flush=True,
            )
    summary = {
        "benchmark": "fluid_vs_des",
        "seed": seed,
        "runs": rows,
        "max_abs_attainment_diff_pp": max(abs(r["attainment_diff_pp"]) for r in rows),
        "max_abs_cost_diff_pct": max(abs(r["cost_diff_pct"]) for r in rows),
        "median_speedup": sorted(r["speedup"] for r in rows)[len(rows) // 2],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("numpy", "numba", "simpy", "scipy")},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
