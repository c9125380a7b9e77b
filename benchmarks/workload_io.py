"""Benchmark: trace loading and envelope-to-request sampling on the real traces.

Loads every trace in `../shared/traces` (the full 14-day ServeGen directories
included), then samples request-level arrivals from ServeGen m-small at realistic
scales and reports throughput and burstiness (per-second count dispersion,
variance / mean, averaged over 600 s windows; Poisson is 1). Each timing is the
best of `--repeat` runs. Prints a table, then as its last line one JSON object with
the figures, `cpu_count` and package versions.

Usage:
    .venv/bin/python benchmarks/workload_io.py [--traces DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from rich.console import Console
from rich.table import Table

from sim.workload import (
    RateEnvelope,
    RequestTrace,
    load_trace,
    mean_rps,
    scale_to_mean,
    slice_window,
    to_requests,
)

PACKAGES = ("scaleplan", "numpy", "scipy", "pandas")
T = TypeVar("T")


def best_of(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """Best wall-clock seconds of `repeat` runs, and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def sample(envelope: RateEnvelope) -> RequestTrace:
    """Requests from `envelope` with a fresh seed-0 generator (same trace every repeat)."""
    return to_requests(envelope, np.random.default_rng(0))


def dispersion(trace: RequestTrace, start_s: float, hours: int) -> float:
    edges = start_s + np.arange(hours * 3600 + 1, dtype=float)
    counts = np.histogram(trace.arrival_s, bins=edges)[0].reshape(-1, 600)
    return float(np.mean(counts.var(axis=1) / counts.mean(axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--traces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "traces"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root: Path = args.traces
    figures: dict[str, Any] = {}
    table = Table(title="workload loading and sampling")
    for column in ("step", "seconds", "size", "mean rps"):
        table.add_column(column)

    loads = [
        ("azure-llm conv", root / "azure_llm_2023/conv.csv", "azure-llm"),
        ("azure-llm code", root / "azure_llm_2023/code.csv", "azure-llm"),
        ("servegen m-small 14d", root / "servegen/m-small", "servegen"),
        ("servegen m-mid 14d", root / "servegen/m-mid", "servegen"),
        ("nab nyc_taxi", root / "nab/nyc_taxi.csv", "nab"),
    ]
    loaded: dict[str, Any] = {}
    for name, path, fmt in loads:
        seconds, workload = best_of(args.repeat, partial(load_trace, path, fmt))
        loaded[name] = workload
        size = (
            f"{workload.n_requests} requests"
            if isinstance(workload, RequestTrace)
            else f"{len(workload.rate_rps)} bins, {int(workload.missing.sum())} missing"
            + (
                ""
                if workload.clients is None
                else f", {workload.clients.rate_rps.shape[0]} clients"
            )
        )
        table.add_row(f"load {name}", f"{seconds:.3f}", size, f"{mean_rps(workload):.1f}")
        figures[f"load_s.{name}"] = round(seconds, 4)

    small = loaded["servegen m-small 14d"]
    assert isinstance(small, RateEnvelope)
    evening = slice_window(small, 20 * 3600.0, 21 * 3600.0)  # day 1, 20:00-21:00
    for target in (30.0, 300.0, mean_rps(evening)):
        hour = scale_to_mean(evening, target)
        assert isinstance(hour, RateEnvelope)
        seconds, trace = best_of(args.repeat, partial(sample, hour))
        rate = trace.n_requests / seconds
        key = f"{target:.0f}rps"
        table.add_row(
            f"to_requests m-small 1 h @ {key}",
            f"{seconds:.3f}",
            f"{trace.n_requests} requests ({rate / 1e6:.2f} M/s)",
            f"{mean_rps(trace):.1f}",
        )
        figures[f"to_requests_s.{key}"] = round(seconds, 4)
        figures[f"to_requests_per_s.{key}"] = round(rate)
        figures[f"dispersion.{key}"] = round(dispersion(trace, 0.0, 1), 3)
        flat = RateEnvelope(bin_s=hour.bin_s, rate_rps=hour.rate_rps, missing=hour.missing)
        figures[f"dispersion_poisson.{key}"] = round(dispersion(sample(flat), 0.0, 1), 3)

    day = scale_to_mean(slice_window(small, 0.0, 86400.0), 100.0)
    assert isinstance(day, RateEnvelope)
    seconds, trace = best_of(1, partial(sample, day))
    table.add_row(
        "to_requests m-small 24 h @ 100rps",
        f"{seconds:.3f}",
        f"{trace.n_requests} requests",
        f"{mean_rps(trace):.1f}",
    )
    figures["to_requests_s.day_100rps"] = round(seconds, 4)

    conv = loaded["azure-llm conv"]
    seconds, scaled = best_of(
        args.repeat, lambda: scale_to_mean(conv, 100.0, np.random.default_rng(0))
    )
    assert isinstance(scaled, RequestTrace)
    table.add_row("scale_to_mean conv -> 100 rps", f"{seconds:.3f}", f"{scaled.n_requests}", "100")
    figures["scale_to_mean_s.conv_100rps"] = round(seconds, 4)

    Console().print(table)
    figures.update(
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        versions={name: version(name) for name in PACKAGES},
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
