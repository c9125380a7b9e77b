"""Size a pool from a trace's peak, for `planner simulate --trace F` without a scenario.

A user who brings only a trace should not inherit the bundled scenario's 2-32
replica pool: the trace at its own rate may need one replica or four thousand.
The pool is sized with the Erlang C model the predictive policies and the oracle
use (`sim.capacity.queueing.servers_for_attainment`, a replica being `max_batch`
servers): `max_replicas` carries the busiest minute at the SLO with a margin,
`initial_replicas` the mean rate, `min_replicas` is one. Any bound the user gives
on the command line wins over the sized one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.capacity.pools import ServerlessEndpoint
from sim.capacity.queueing import servers_for_attainment
from sim.engine import token_profile
from sim.scenario import Scenario
from sim.workload import mean_rps, rate_series
from sim.workload.model import Workload

#: Width of the bins whose busiest one the pool must carry: a minute, long enough
#: that a queue within a tens-of-seconds SLO cannot absorb it, short enough to keep
#: the bursts a 15 s decision interval sees.
PEAK_BIN_S = 60.0
#: Head-room above the replicas the busiest minute needs at the SLO: room for
#: traffic above the trace's own peak and for policies that aim below full batch.
PEAK_MARGIN = 1.25
#: Replicas one busy slot stands for when even an idle replica misses the SLO (a
#: single request is slower than the latency objective): size for 80 % utilisation.
FALLBACK_UTILISATION = 0.8


@dataclass(frozen=True)
class PoolSizing:
    """What the pool was sized to, and from which figures (for the note printed)."""

    peak_rps: float
    mean_rps: float
    replicas_at_peak: int
    replicas_at_mean: int
    min_replicas: int
    max_replicas: int
    initial_replicas: int
    slo_reachable: bool

    def note(self) -> str:
        """One line saying how the bounds were chosen (printed by the CLI)."""
        how = "at the SLO" if self.slo_reachable else "at 80 % utilisation (SLO unreachable)"
        return (
            f"pool sized from the trace: busiest minute {self.peak_rps:,.2f} req/s needs "
            f"{self.replicas_at_peak:,} replicas {how}; max_replicas {self.max_replicas:,} "
            f"(+{PEAK_MARGIN - 1:.0%}), initial {self.initial_replicas:,} (the mean "
            f"{self.mean_rps:,.2f} req/s), min {self.min_replicas:,}; "
            "--min-replicas / --max-replicas set them"
        )


def replicas_for(scenario: Scenario, rate_rps: float, mean_service_s: float) -> tuple[int, bool]:
    """Replicas carrying `rate_rps` at the scenario's SLO, and whether the SLO is reachable."""
    if rate_rps <= 0:
        return 0, True
    batch = scenario.pool.service.max_batch
    cap = 10_000_000
    servers = servers_for_attainment(
        rate_rps, mean_service_s, scenario.slo.latency_s, scenario.slo.target_attainment,
        max_servers=cap,
    )  # fmt: skip
    if servers >= cap:
        busy = rate_rps * mean_service_s / FALLBACK_UTILISATION
        return max(1, math.ceil(busy / batch)), False
    return max(1, math.ceil(servers / batch)), True


def size_pool(
    scenario: Scenario,
    workload: Workload,
    *,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    initial_replicas: int | None = None,
) -> PoolSizing:
    """Bounds for `scenario`'s pool from `workload`'s busiest minute and mean.

    Args:
        scenario: The scenario (its pool's service model and SLO size the replicas).
        workload: The traffic the pool must carry (window and scaling applied).
        min_replicas: A bound the user gave (kept as is), or None to size it.
        max_replicas: Likewise.
        initial_replicas: Likewise (default: the replicas the mean rate needs).
    """
    pool = scenario.pool
    if isinstance(pool, ServerlessEndpoint):
        raise ValueError("size_pool sizes instance pools; a serverless endpoint scales itself")
    rates, missing = rate_series(workload, PEAK_BIN_S)
    observed = rates[~missing]
    peak = float(np.max(observed)) if len(observed) else 0.0
    mean = mean_rps(workload)
    service_s = pool.service.mean_service_s(token_profile(workload), pool.service.max_batch)
    at_peak, reachable = replicas_for(scenario, peak, service_s)
    at_mean, _ = replicas_for(scenario, mean, service_s)
    low = 1 if min_replicas is None else min_replicas
    high = max(low, 2, math.ceil(at_peak * PEAK_MARGIN)) if max_replicas is None else max_replicas
    return PoolSizing(
        peak_rps=peak,
        mean_rps=mean,
        replicas_at_peak=at_peak,
        replicas_at_mean=at_mean,
        min_replicas=low,
        max_replicas=high,
        initial_replicas=(
            min(max(at_mean, low), high) if initial_replicas is None else initial_replicas
        ),
        slo_reachable=reachable,
    )
