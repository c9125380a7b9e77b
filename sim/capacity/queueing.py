"""Queueing approximations of the capacity model (M/M/c, Erlang C).

A replica with `max_batch` slots is approximated as `max_batch` parallel servers,
each completing requests at 1 / mean_service_s. These closed forms size capacity
for an SLO (predictive policies, the oracle) and estimate latency in the fluid
engine; the SimPy engine is the reference they are checked against.

Cost. Erlang B comes from the stable recursion 1/B(k) = 1 + (k / a) / B(k - 1),
which forgets its starting value geometrically: a relative error in 1/B(k - 1)
reaches 1/B(k) multiplied by 1 - B(k) <= min(1, k / a), since the carried load
a (1 - B) never exceeds the k servers. Starting from B = 1 at a server count k0
instead of 0 therefore errs by at most prod_{k0 < k <= min(c, a)} (k / a), and
`_recursion_start` picks the largest k0 that keeps this bound under e^-60 (1e-26,
far below double rounding). For c >= a that skips all but the last
sqrt(2 * 60 * a) (about 11 sqrt(a)) terms: erlang_b(c, a) costs O(sqrt(a) + c - a)
steps instead of O(c), and below about 70 erlangs the recursion still starts at 0.
`servers_for_attainment` runs that recursion once upwards from the stability
bound and stops at the first server count that meets the target, so sizing for
a = 13,400 erlangs (the NAB Twitter FB peak on g5.xlarge) takes about 1,300 steps
where the search it replaced ran the whole recursion at each of 15 probes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

#: -ln of the largest relative error `_recursion_start` lets the skipped terms cause.
_SKIP_LOG_BOUND = 60.0


def _recursion_start(servers: int, offered_erlangs: float) -> int:
    """Largest k0 whose skipped terms change B(servers) by under e^-60 relative.

    The bound is S(k0) = sum_{k0 < k <= m} ln(a / k) with m = min(servers, floor(a))
    (see the module docstring); S falls from S(0) to S(m) = 0, so bisect on it.
    """
    top = min(servers, math.floor(offered_erlangs))
    if top <= 0:
        return 0
    log_a = math.log(offered_erlangs)
    log_fact_top = math.lgamma(top + 1)

    def skipped(k0: int) -> float:  # S(k0), by log-gamma
        return (top - k0) * log_a - (log_fact_top - math.lgamma(k0 + 1))

    if skipped(0) < _SKIP_LOG_BOUND:
        return 0
    low, high = 0, top  # invariant: skipped(low) >= bound > skipped(high)
    while high - low > 1:
        mid = (low + high) // 2
        if skipped(mid) >= _SKIP_LOG_BOUND:
            low = mid
        else:
            high = mid
    return low


def erlang_b(servers: int, offered_erlangs: float) -> float:
    """Blocking probability of M/M/c/c, by the numerically stable recursion.

    Exact to rounding; O(sqrt(a) + c - a) steps when c >= a (see the module docstring).
    """
    if servers < 0:
        raise ValueError("servers must be >= 0")
    start = _recursion_start(servers, offered_erlangs) if offered_erlangs > 0.0 else 0
    blocking = 1.0
    for k in range(start + 1, servers + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    return blocking


def _erlang_c_from_b(servers: int, offered_erlangs: float, blocking: float) -> float:
    """Erlang C from Erlang B at the same (c, a): B / (1 - rho (1 - B))."""
    rho = offered_erlangs / servers
    return blocking / (1.0 - rho * (1.0 - blocking))


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in M/M/c (1.0 when the system is unstable)."""
    if servers <= 0 or offered_erlangs >= servers:
        return 1.0
    if offered_erlangs <= 0.0:
        return 0.0
    return _erlang_c_from_b(servers, offered_erlangs, erlang_b(servers, offered_erlangs))


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


class _WaitBudgets:
    """Wait budgets (slo - service) of the service-time samples, for `attainment`.

    One sample (a deterministic service time) takes the scalar path; several are
    averaged, a sample longer than the SLO counting as a miss.
    """

    def __init__(
        self, service_s: float, slo_s: float, service_samples_s: NDArray[np.float64] | None
    ) -> None:
        self.scalar: float | None = None
        if service_samples_s is None:
            self.scalar = slo_s - service_s
            self.best = 1.0 if self.scalar >= 0.0 else 0.0
            return
        budget = slo_s - np.asarray(service_samples_s, dtype=float)
        self.ok = budget >= 0.0
        self.clipped = np.clip(budget, 0.0, None)
        self.best = float(self.ok.mean()) if self.ok.size else 0.0

    def met(self, waiting: float, rate: float) -> float:
        """Share within the SLO when a request waits w.p. `waiting`, tail decay `rate`."""
        if self.scalar is not None:
            return 1.0 - waiting * math.exp(-rate * self.scalar)
        met = np.where(self.ok, 1.0 - waiting * np.exp(-rate * self.clipped), 0.0)
        return float(met.mean())


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
    budgets = _WaitBudgets(service_s, slo_s, service_samples_s)
    if budgets.best == 0.0:
        return 0.0
    offered = arrival_rps * service_s
    if servers <= 0 or offered >= servers:
        return 0.0
    return budgets.met(erlang_c(servers, offered), servers / service_s - arrival_rps)


def servers_for_attainment(
    arrival_rps: float,
    service_s: float,
    slo_s: float,
    target: float,
    service_samples_s: NDArray[np.float64] | None = None,
    max_servers: int = 1_000_000,
) -> int:
    """Fewest servers whose M/M/c attainment reaches `target` (max_servers if none does).

    One pass of the Erlang B recursion: it runs up to the stability bound
    floor(a) + 1, then one server at a time, evaluating `attainment` at each count
    from the blocking probability it already holds (bit for bit what `attainment`
    computes), so the answer is the first count that meets the target, for the
    cost of one `erlang_b` at that count. An offered load at or above
    `max_servers` (or not finite) returns `max_servers` at once.
    """
    if arrival_rps <= 0.0:
        return 0
    offered = arrival_rps * service_s
    if not math.isfinite(offered) or offered >= max_servers:
        # Past the stability bound of every allowed count: no need to run the
        # recursion (a diverged forecast once asked for 8e94 req/s here).
        return max_servers
    low = max(1, math.floor(offered) + 1)
    budgets = _WaitBudgets(service_s, slo_s, service_samples_s)
    if budgets.best < target:
        return max_servers  # even a queue with no wait misses: no server count reaches it
    blocking = erlang_b(low - 1, offered)  # starts where erlang_b(low, ...) would
    servers = low - 1
    while True:
        servers += 1
        blocking = offered * blocking / (servers + offered * blocking)
        waiting = _erlang_c_from_b(servers, offered, blocking)
        if budgets.met(waiting, servers / service_s - arrival_rps) >= target:
            return servers
        if servers >= max_servers:
            return max_servers
