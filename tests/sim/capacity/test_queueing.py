"""Closed-form queueing helpers checked against the textbook sum formula."""

from __future__ import annotations

import math

import pytest

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
