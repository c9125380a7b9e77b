"""Can a spilled request meet the SLO? The serverless CPU model's latency by memory size.

For each SageMaker serverless memory size the default model fits in, the service
time of `sim.capacity.cpu_models`' entry (one request per instance, no queueing)
over the default token profile (Azure LLM conv trace: input mean 1,155 tokens,
output mean 211), warm and after a mean cold start, against the stacks' SLO
latency (25 s); the GPU pool's default service model (a 7-8B on one A10G) at
batch 1 and at a full batch for comparison. Latency here is service time plus,
for a cold request, the mean cold start: no queueing, so it is a lower bound.

Prints a table; the last line is one JSON object with the figures.

Usage: .venv/bin/python benchmarks/serverless_slo.py [--slo-s 25] [--samples 200000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from sim.capacity.cpu_models import DEFAULT_SERVERLESS_MODEL, cpu_model, vcpus_at
from sim.capacity.service import TokenService
from sim.workload.model import TokenProfile


def _row(name: str, seconds: np.ndarray, slo_s: float) -> dict[str, float | str]:
    return {
        "case": name,
        "mean_s": float(seconds.mean()),
        "p50_s": float(np.quantile(seconds, 0.5)),
        "p95_s": float(np.quantile(seconds, 0.95)),
        "within_slo": float((seconds <= slo_s).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slo-s", type=float, default=25.0)
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()

    inputs, outputs = TokenProfile().sample(np.random.default_rng(0), args.samples)
    x, y = inputs.astype(np.float64), outputs.astype(np.float64)
    rows = []

    def seconds(service: TokenService, batch: int) -> np.ndarray:
        # service_s is affine in the tokens: evaluated on the arrays element-wise.
        return np.asarray(service.service_s(x, y, batch))  # type: ignore[arg-type]

    gpu = TokenService()
    rows.append(_row("GPU 7-8B, A10G, batch 1", seconds(gpu, 1), args.slo_s))
    rows.append(_row("GPU 7-8B, A10G, batch 16", seconds(gpu, 16), args.slo_s))
    entry = cpu_model(DEFAULT_SERVERLESS_MODEL)
    short_name = entry.model_id.rsplit("/", 1)[-1]
    cold_s = entry.cold_start_mean_s()
    for memory_gb in range(entry.smallest_memory_gb(), 7):
        warm = seconds(entry.service(memory_gb), 1)
        label = f"{short_name} CPU {memory_gb} GB ({vcpus_at(memory_gb):.1f} vCPU)"
        rows.append(_row(f"{label}, warm", warm, args.slo_s))
        rows.append(_row(f"{label}, cold", warm + cold_s, args.slo_s))
    print(f"{'case':58} {'mean s':>7} {'p50 s':>7} {'p95 s':>7} {'<= SLO':>7}")
    for r in rows:
        print(
            f"{r['case']:58} {r['mean_s']:7.1f} {r['p50_s']:7.1f} {r['p95_s']:7.1f} "
            f"{r['within_slo']:7.1%}"
        )
    print(json.dumps({"slo_s": args.slo_s, "cold_start_mean_s": cold_s, "rows": rows}))


if __name__ == "__main__":
    main()
