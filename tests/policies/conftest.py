"""Shared fixtures for policy tests: an Observation factory and a policy context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.contract import Observation, PolicyContext


def observation(**overrides: Any) -> Observation:
    """An Observation with plain defaults (15 s interval, 4 ready of [1, 100])."""
    values: dict[str, Any] = {
        "time_s": 0.0,
        "interval_s": 15.0,
        "demand_rps": 10.0,
        "utilisation": 0.5,
        "queue_len": 0,
        "ready": 4,
        "pending": 0,
        "desired": 4,
        "min_replicas": 1,
        "max_replicas": 100,
        "replica_capacity_rps": 5.0,
    }
    values.update(overrides)
    return Observation(**values)


@pytest.fixture
def make_obs() -> Callable[..., Observation]:
    return observation


@pytest.fixture
def context() -> PolicyContext:
    return PolicyContext(
        interval_s=15.0,
        min_replicas=1,
        max_replicas=100,
        replica_capacity_rps=5.0,
        provisioning_s=120.0,
        slo_latency_s=2.0,
        slo_target=0.99,
        mean_service_s=0.5,
        max_batch=8,
    )
