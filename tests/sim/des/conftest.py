"""Small builders for des engine tests: traces and scenarios made in the test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sim.capacity.pools import Pool, ServerlessEndpoint
from sim.scenario import Scenario
from sim.workload.model import RequestTrace


def poisson_trace(rate_rps: float, duration_s: float, seed: int, tokens: int = 1) -> RequestTrace:
    """Poisson arrivals at `rate_rps` over [0, duration_s) with fixed token counts."""
    rng = np.random.default_rng(seed)
    count = int(rate_rps * duration_s * 1.2 + 10 * np.sqrt(rate_rps * duration_s) + 100)
    arrival_s = np.cumsum(rng.exponential(1.0 / rate_rps, count))
    arrival_s = arrival_s[arrival_s < duration_s]
    return fixed_trace(arrival_s.tolist(), duration_s, tokens=tokens)


def fixed_trace(
    arrival_s: list[float],
    duration_s: float,
    tokens: int = 1,
    output_tokens: list[int] | None = None,
) -> RequestTrace:
    """A trace with the given arrival times and token counts."""
    n = len(arrival_s)
    outputs = np.full(n, tokens, dtype=np.int64) if output_tokens is None else output_tokens
    return RequestTrace(
        arrival_s=np.asarray(arrival_s, dtype=np.float64),
        duration_s=duration_s,
        input_tokens=np.full(n, tokens, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        source="test",
    )


def scenario(
    pool: Pool,
    *,
    spillover: ServerlessEndpoint | None = None,
    slo_s: float = 5.0,
    interval_s: float = 15.0,
    **extra: Any,
) -> Scenario:
    """A scenario around `pool`; the workload block is a placeholder (tests pass traces)."""
    return Scenario(
        name="des-test",
        workload={  # type: ignore[arg-type]
            "format": "synthetic",
            "synthetic": {"kind": "diurnal", "duration_h": 1, "base_rps": 1},
        },
        pool=pool,
        spillover=spillover,
        slo={"latency_s": slo_s},  # type: ignore[arg-type]
        decision_interval_s=interval_s,
        **extra,
    )


@pytest.fixture
def make_scenario() -> Callable[..., Scenario]:
    """`scenario(pool, spillover=, slo_s=, interval_s=)`."""
    return scenario


@pytest.fixture
def make_poisson() -> Callable[..., RequestTrace]:
    """`poisson_trace(rate_rps, duration_s, seed, tokens=1)`."""
    return poisson_trace


@pytest.fixture
def make_trace() -> Callable[..., RequestTrace]:
    """`fixed_trace(arrival_s, duration_s, tokens=1, output_tokens=None)`."""
    return fixed_trace
