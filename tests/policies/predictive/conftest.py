"""Factories for predictive-policy tests: synthetic hourly demand, contexts, observations.

Hourly bins (24 per day) keep every statsmodels fit well under a second.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sim.contract import Observation, PolicyContext
from sim.workload.model import FloatArray, RateEnvelope

HOUR_S = 3600.0
DAY_S = 86_400.0
#: Mean service 2 s, batch 4, SLO 6 s at 0.95: small pools, fast Erlang C searches.
SERVICE_S = 2.0
BATCH = 4


def daily_shape(hours: FloatArray) -> FloatArray:
    """A smooth daily cycle between 0.4 and 1.6 of its mean, peaking at 18:00."""
    return 1.0 + 0.6 * np.sin(2 * np.pi * (hours - 12.0) / 24.0)


def envelope(rates: FloatArray, bin_s: float = HOUR_S, epoch_s: float | None = 0.0) -> RateEnvelope:
    rates = np.asarray(rates, dtype=float)
    return RateEnvelope(
        bin_s=bin_s, rate_rps=rates, missing=np.isnan(rates), epoch_s=epoch_s, source="test"
    )


def seasonal_series(
    days: int, level_rps: float = 40.0, noise: float = 0.03, seed: int = 1
) -> FloatArray:
    hours = np.arange(days * 24, dtype=float)
    noise_rng = np.random.default_rng(seed)
    return (
        level_rps * daily_shape(hours % 24) * (1.0 + noise * noise_rng.standard_normal(len(hours)))
    )


@pytest.fixture
def make_context() -> Callable[..., PolicyContext]:
    def make(
        history: RateEnvelope | None,
        provisioning_s: float = 600.0,
        epoch_s: float | None = None,
        max_replicas: int = 500,
    ) -> PolicyContext:
        if epoch_s is None and history is not None and history.epoch_s is not None:
            epoch_s = history.epoch_s + history.duration_s
        return PolicyContext(
            interval_s=60.0,
            min_replicas=1,
            max_replicas=max_replicas,
            replica_capacity_rps=BATCH / SERVICE_S,
            provisioning_s=provisioning_s,
            slo_latency_s=6.0,
            slo_target=0.95,
            mean_service_s=SERVICE_S,
            max_batch=BATCH,
            epoch_s=epoch_s,
            history=history,
        )

    return make


@pytest.fixture
def make_obs() -> Callable[..., Observation]:
    def make(
        time_s: float,
        demand_rps: float | None,
        desired: int = 10,
        utilisation: float | None = 0.5,
        interval_s: float = 60.0,
        max_replicas: int = 500,
    ) -> Observation:
        return Observation(
            time_s=time_s,
            interval_s=interval_s,
            demand_rps=demand_rps,
            utilisation=utilisation,
            queue_len=0,
            ready=desired,
            pending=0,
            desired=desired,
            min_replicas=1,
            max_replicas=max_replicas,
            replica_capacity_rps=BATCH / SERVICE_S,
        )

    return make


@pytest.fixture
def make_envelope() -> Callable[..., RateEnvelope]:
    return envelope


@pytest.fixture
def make_series() -> Callable[..., FloatArray]:
    return seasonal_series
