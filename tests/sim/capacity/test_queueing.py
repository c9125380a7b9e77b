"""Closed-form queueing helpers checked against the textbook sum formula and exact arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.capacity import queueing


def erlang_c_by_sum(servers: int, offered: float) -> float:
    """Erlang C from its defining sum (fine for small c), independent of the recursion."""
    head = sum(offered**k / math.factorial(k) for k in range(servers))
    tail = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return tail / (head + tail)


@pytest.mark.parametrize(
    ("servers", "offered"),
    [(1, 0.5), (2, 1.0), (4, 3.2), (10, 8.0), (16, 14.4), (30, 20.0)],
    ids=["mm1", "c2", "c4-rho0.8", "c10-rho0.8", "c16-rho0.9", "c30"],
)
def test_erlang_c_matches_sum_formula(servers: int, offered: float) -> None:
    assert queueing.erlang_c(servers, offered) == pytest.approx(
        erlang_c_by_sum(servers, offered), rel=1e-9
    )


def test_mm1_wait_probability_is_utilisation() -> None:
    assert queueing.erlang_c(1, 0.7) == pytest.approx(0.7)
    # M/M/1 mean wait: rho / (mu - lambda) with mu = 1.
    assert queueing.mean_wait_s(1, 0.7, 1.0) == pytest.approx(0.7 / 0.3)


def test_unstable_system_always_waits() -> None:
    assert queueing.erlang_c(4, 4.0) == 1.0
    assert math.isinf(queueing.mean_wait_s(4, 5.0, 1.0))
    assert queueing.attainment(4, 5.0, 1.0, slo_s=10.0) == 0.0


def test_large_server_counts_are_stable() -> None:
    value = queueing.erlang_c(3000, 2900.0)
    assert 0.0 < value < 1.0


def test_attainment_counts_slow_requests_as_misses() -> None:
    # Half the requests take longer than the SLO on their own.
    samples = __import__("numpy").array([0.5, 5.0])
    assert queueing.attainment(100, 1.0, 2.75, slo_s=2.0, service_samples_s=samples) <= 0.5


@pytest.mark.parametrize("target", [0.9, 0.99, 0.999])
def test_servers_for_attainment_is_the_smallest_feasible(target: float) -> None:
    rate, service, slo = 40.0, 1.0, 1.2
    servers = queueing.servers_for_attainment(rate, service, slo, target)
    assert queueing.attainment(servers, rate, service, slo) >= target
    assert queueing.attainment(servers - 1, rate, service, slo) < target


def test_servers_grow_with_rate() -> None:
    counts = [queueing.servers_for_attainment(r, 1.0, 1.5, 0.99) for r in (1, 10, 100, 1000)]
    assert counts == sorted(counts)
    assert queueing.servers_for_attainment(0.0, 1.0, 1.5, 0.99) == 0


# --- Against the exact forms at thousands of servers -----------------------------------

#: Server counts up to 5,000 and loads from light to near saturation (and overload for B).
EXACT_SERVERS = [1, 2, 7, 50, 121, 400, 1000, 2500, 5000]
EXACT_RHO = [0.05, 0.5, 0.8, 0.95, 0.99, 1.3]


def exact_erlang_b(servers: int, offered: float) -> Decimal:
    """B(c, a) = (a^c / c!) / sum_{k<=c} a^k / k!, summed in 60-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 60
        a = Decimal(offered)  # the float's exact value
        term = total = Decimal(1)
        for k in range(1, servers + 1):
            term = term * a / k
            total += term
        return term / total


def exact_erlang_c(servers: int, offered: float) -> Decimal:
    """C(c, a) = c B / (c - a (1 - B)), from the exact B."""
    with localcontext() as ctx:
        ctx.prec = 60
        blocking = exact_erlang_b(servers, offered)
        c, a = Decimal(servers), Decimal(offered)
        return c * blocking / (c - a * (1 - blocking))


def full_recursion_erlang_b(servers: int, offered: float) -> float:
    """The recursion from B(0) = 1 with no term skipped (the definition erlang_b shortens)."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    return blocking


@pytest.mark.parametrize("rho", EXACT_RHO, ids=[f"rho{r:g}" for r in EXACT_RHO])
@pytest.mark.parametrize("servers", EXACT_SERVERS, ids=[f"c{c}" for c in EXACT_SERVERS])
def test_erlang_b_and_c_match_exact_arithmetic(servers: int, rho: float) -> None:
    offered = rho * servers
    assert queueing.erlang_b(servers, offered) == pytest.approx(
        float(exact_erlang_b(servers, offered)), rel=1e-12
    )
    if rho < 1.0:
        assert queueing.erlang_c(servers, offered) == pytest.approx(
            float(exact_erlang_c(servers, offered)), rel=1e-12
        )


@pytest.mark.parametrize(
    ("servers", "offered"),
    [(130, 125.0), (1000, 990.0), (5000, 4800.0), (5000, 4999.5), (3000, 6000.0), (64016, 13400.0)],
    ids=["just-past-skip", "c1000", "c5000", "c5000-critical", "overload", "nab-peak"],
)
def test_skipped_recursion_terms_do_not_change_erlang_b(servers: int, offered: float) -> None:
    assert queueing.erlang_b(servers, offered) == pytest.approx(
        full_recursion_erlang_b(servers, offered), rel=1e-14
    )


@settings(max_examples=200, deadline=None)
@given(
    arrival_rps=st.floats(0.01, 3000.0),
    service_s=st.sampled_from([0.5, 1.0, 2.0, 9.57]),
    slo_factor=st.floats(1.0, 5.0),
    target=st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]),
    samples=st.none() | st.lists(st.floats(0.1, 30.0), min_size=1, max_size=6),
)
def test_servers_for_attainment_is_the_smallest_count_meeting_the_target(
    arrival_rps: float,
    service_s: float,
    slo_factor: float,
    target: float,
    samples: list[float] | None,
) -> None:
    slo = service_s * slo_factor
    service_samples = None if samples is None else np.sort(np.asarray(samples))
    max_servers = 100_000
    servers = queueing.servers_for_attainment(
        arrival_rps, service_s, slo, target, service_samples, max_servers=max_servers
    )
    met = queueing.attainment(servers, arrival_rps, service_s, slo, service_samples)
    if servers == max_servers and met < target:
        # Only when no count can reach it: the share of samples within the SLO caps it.
        assert service_samples is not None
        assert np.mean(service_samples <= slo) < target
        return
    assert met >= target
    stable_bound = math.floor(arrival_rps * service_s) + 1
    if servers > stable_bound:
        below = queueing.attainment(servers - 1, arrival_rps, service_s, slo, service_samples)
        assert below < target


@pytest.mark.parametrize("arrival_rps", [8.05e94, math.inf, 1e7], ids=["diverged", "inf", "huge"])
def test_an_unservable_load_returns_max_servers_at_once(arrival_rps: float) -> None:
    """A diverged forecast must not run the Erlang B recursion to 10^95 servers."""
    assert queueing.servers_for_attainment(arrival_rps, 9.6, 25.0, 0.95, max_servers=64_016) == (
        64_016
    )
