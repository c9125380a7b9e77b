"""Queueing approximations of the capacity model (M/M/c, Erlang C).

A replica with `max_batch` slots is approximated as `max_batch` parallel servers,
each completing requests at 1 / mean_service_s. These closed forms size capacity
for an SLO (predictive policies, the oracle) and estimate latency in the fluid
engine; the SimPy engine is the reference they are checked against.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def erlang_b(servers: int, offered_erlangs: float) -> float:
    """Blocking probability of M/M/c/c, by the numerically stable recursion."""
    if servers < 0:
        raise ValueError("servers must be >= 0")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    return blocking


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in M/M/c (1.0 when the system is unstable)."""
    if servers <= 0 or offered_erlangs >= servers:
        return 1.0
    if offered_erlangs <= 0.0:
        return 0.0
    blocking = erlang_b(servers, offered_erlangs)
    rho = offered_erlangs / servers
    return blocking / (1.0 - rho * (1.0 - blocking))


def mean_wait_s(servers: int, arrival_rps: float, service_s: float) -> float:
    """Mean queueing delay of M/M/c (inf when unstable)."""
    offered = arrival_rps * service_s
    if servers <= 0 or offered >= servers:
        return math.inf
    return erlang_c(servers, offered) * service_s / (servers - offered)


def wait_exceeds(servers: int, arrival_rps: float, service_s: float, wait_s: float) -> float:
    """P(W > wait_s) in M/M/c: C(c, a) * exp(-(c*mu - lambda) * t)."""
    offered = arrival_rps * service_s
    if servers <= 0 or offered >= servers:
        return 1.0
    if wait_s < 0.0:
        return 1.0
    decay = (servers / service_s - arrival_rps) * wait_s
    return erlang_c(servers, offered) * math.exp(-decay)


def attainment(
    servers: int,
    arrival_rps: float,
    service_s: float,
    slo_s: float,
    service_samples_s: NDArray[np.float64] | None = None,
) -> float:
    """Share of requests whose wait plus service is within `slo_s`.

    With `service_samples_s` (quantiles of the service-time distribution) the
    result averages P(W <= slo - S) over them; otherwise service takes exactly
    `service_s`.
    """
    if arrival_rps <= 0.0:
        return 1.0
    samples = (
        np.asarray([service_s]) if service_samples_s is None else np.asarray(service_samples_s)
    )
    budget = slo_s - samples
    ok = budget >= 0.0
    if not ok.any():
        return 0.0
    offered = arrival_rps * service_s
    if servers <= 0 or offered >= servers:
        return 0.0
    waiting = erlang_c(servers, offered)
    rate = servers / service_s - arrival_rps
    met = np.where(ok, 1.0 - waiting * np.exp(-rate * np.clip(budget, 0.0, None)), 0.0)
    return float(met.mean())


def servers_for_attainment(
    arrival_rps: float,
    service_s: float,
    slo_s: float,
    target: float,
    service_samples_s: NDArray[np.float64] | None = None,
    max_servers: int = 1_000_000,
) -> int:
    """Fewest servers whose M/M/c attainment reaches `target` (max_servers if none does)."""
    if arrival_rps <= 0.0:
        return 0
    low = max(1, math.floor(arrival_rps * service_s) + 1)
    if attainment(low, arrival_rps, service_s, slo_s, service_samples_s) >= target:
        return low
    high = low
    while attainment(high, arrival_rps, service_s, slo_s, service_samples_s) < target:
        if high >= max_servers:
            return max_servers
        high = min(max_servers, high * 2)
    while high - low > 1:
        mid = (low + high) // 2
        if attainment(mid, arrival_rps, service_s, slo_s, service_samples_s) >= target:
            high = mid
        else:
            low = mid
    return high
