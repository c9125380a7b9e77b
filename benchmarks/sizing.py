"""Benchmark: Erlang C sizing at thousands of servers, against the linear recursion.

`servers_for_attainment` (one pass of the Erlang B recursion that skips the terms
it provably forgets, stopping at the first count meeting the target) against the
reference it replaced: the full O(c) recursion evaluated at each probe of a
doubling-then-bisection search. Offered loads run from 10 erlangs to 60,000 (near the
NAB Twitter FB scenario's 4,000-replica pool at 16 slots); the reference is only
timed where it finishes in seconds. Then one `Sizer` as the predictive policy uses
it on that scenario (9.57 s per request at a full batch of 16, SLO 25 s at 0.95,
up to 4,000 replicas): every 1 % rate-grid step from 0.1 to 3,000 req/s, and the
inverse `max_rate` for every replica count in 1..4,000 by 7.

Figures are CPU seconds per call (`time.process_time`, best of `--repeat`). Prints
a table, then as its last line one JSON object with the figures, the CPU count and
package versions.

Usage:
    .venv/bin/python benchmarks/sizing.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any

from rich.console import Console
from rich.table import Table

from policies.predictive.sizing import Sizer
from sim.capacity.queueing import attainment, servers_for_attainment

PACKAGES = ("scaleplan", "numpy")
SERVICE_S, SLO_S, TARGET = 9.57, 25.0, 0.95
MAX_BATCH, MAX_REPLICAS = 16, 4000
MAX_SERVERS = (MAX_REPLICAS + 1) * MAX_BATCH
#: (offered erlangs, SLO s) of the microbenchmark: the scenario's SLO, and a tight one
#: (0.43 s of wait budget) whose answer lies further above the stability bound.
CASES = tuple((a, slo) for slo in (SLO_S, 10.0) for a in (10.0, 100.0, 1e3, 5e3, 13_400.0, 60e3))
#: The reference is only timed up to this load (about 15 ms a call there, O(c log c)).
REFERENCE_UP_TO = 13_400.0


def reference_erlang_b(servers: int, offered: float) -> float:
    """The recursion from B(0) = 1 over every server count (the previous implementation)."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    return blocking


def reference_servers(arrival_rps: float, slo_s: float, max_servers: int) -> int:
    """The previous search: double from the stability bound, then bisect, O(c) per probe."""

    def meets(servers: int) -> bool:
        offered = arrival_rps * SERVICE_S
        blocking = reference_erlang_b(servers, offered)
        rho = offered / servers
        waiting = blocking / (1.0 - rho * (1.0 - blocking))
        decay = (servers / SERVICE_S - arrival_rps) * (slo_s - SERVICE_S)
        return 1.0 - waiting * math.exp(-decay) >= TARGET

    low = max(1, math.floor(arrival_rps * SERVICE_S) + 1)
    if meets(low):
        return low
    high = low
    while not meets(high):
        if high >= max_servers:
            return max_servers
        high = min(max_servers, high * 2)
    while high - low > 1:
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid
    return high


def cpu_best_of(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Best CPU seconds of `repeat` runs, and the last result."""
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.process_time()
        result = work()
        best = min(best, time.process_time() - start)
    return best, result


def new_sizer() -> Sizer:
    return Sizer(SERVICE_S, SLO_S, TARGET, MAX_BATCH, MAX_REPLICAS)


def sweep_replicas() -> int:
    """replicas() at every 1 % grid step from 0.1 to 3,000 req/s, on a fresh memo."""
    sizer, rate, calls = new_sizer(), 0.1, 0
    while rate < 3000.0:
        sizer.replicas(rate)
        rate *= 1.01
        calls += 1
    return calls


def sweep_max_rate() -> int:
    sizer = new_sizer()
    counts = range(1, MAX_REPLICAS + 1, 7)
    for replicas in counts:
        sizer.max_rate(replicas)
    return len(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    table = Table(title="Erlang C sizing (CPU seconds per call)")
    for column in ("case", "servers", "now (s)", "linear recursion (s)", "speed-up"):
        table.add_column(column, justify="right")

    for offered, slo_s in CASES:
        rate = offered / SERVICE_S
        now_s, servers = cpu_best_of(
            args.repeat,
            partial(servers_for_attainment, rate, SERVICE_S, slo_s, TARGET, None, MAX_SERVERS),
        )
        assert attainment(servers, rate, SERVICE_S, slo_s) >= TARGET
        key = f"a{offered:g}_slo{slo_s:g}"
        figures[f"servers_for_attainment_s.{key}"] = now_s
        figures[f"servers.{key}"] = servers
        ref_cell = speedup = "-"
        if offered <= REFERENCE_UP_TO:
            ref_s, ref_servers = cpu_best_of(
                1, partial(reference_servers, rate, slo_s, MAX_SERVERS)
            )
            if ref_servers != servers:
                raise SystemExit(f"{key}: reference sized {ref_servers}, now {servers}")
            figures[f"reference_s.{key}"] = ref_s
            ref_cell, speedup = f"{ref_s:.2e}", f"{ref_s / max(now_s, 1e-9):.0f}x"
        case = f"a = {offered:g}, SLO {slo_s:g} s"
        table.add_row(case, str(servers), f"{now_s:.2e}", ref_cell, speedup)

    sweep_s, calls = cpu_best_of(args.repeat, sweep_replicas)
    figures["sizer_replicas_sweep_s"] = sweep_s
    figures["sizer_replicas_sweep_calls"] = calls
    table.add_row(f"Sizer.replicas x{calls}", "-", f"{sweep_s:.2e}", "-", "-")
    inverse_s, counts = cpu_best_of(args.repeat, sweep_max_rate)
    figures["sizer_max_rate_sweep_s"] = inverse_s
    figures["sizer_max_rate_sweep_counts"] = counts
    table.add_row(f"Sizer.max_rate x{counts}", "-", f"{inverse_s:.2e}", "-", "-")

    Console().print(table)
    figures.update(
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        versions={name: version(name) for name in PACKAGES},
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
