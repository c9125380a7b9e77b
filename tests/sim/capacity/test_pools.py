"""Capacity model validation and derived quantities."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sim.capacity.distributions import Delay
from sim.capacity.pools import Ec2AutoScalingGroup, GpuNodePool, ServerlessEndpoint
from sim.capacity.service import ExponentialService, TokenService
from sim.workload.model import TokenProfile


def test_catalog_defaults_fill_prices_and_gpus() -> None:
    pool = GpuNodePool(instance_type="g5.12xlarge", replicas_per_gpu=2)
    assert pool.gpus == 4
    assert pool.replicas_per_node == 8
    assert pool.on_demand_usd_per_h == pytest.approx(5.672)
    assert pool.nodes_for(9) == 2


def test_spot_share_blends_prices() -> None:
    pool = GpuNodePool(instance_type="g5.xlarge", spot_share=0.5, spot_price_usd_per_h=0.5)
    assert pool.node_usd_per_h == pytest.approx((1.006 + 0.5) / 2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_replicas": 5, "max_replicas": 2}, "min_replicas (5) is above max_replicas"),
        ({"instance_type": "g9.huge"}, "unknown instance type 'g9.huge'"),
        ({"price_usd_per_h": -1.0}, "greater than or equal to 0"),
        ({"initial_replicas": 100, "max_replicas": 10}, "initial_replicas"),
    ],
    ids=["min-above-max", "unknown-type", "negative-price", "initial-out-of-bounds"],
)
def test_impossible_pools_are_rejected(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        GpuNodePool.model_validate(kwargs)


def test_unknown_type_with_explicit_shape_is_allowed() -> None:
    pool = Ec2AutoScalingGroup(instance_type="custom.gpu", price_usd_per_h=2.0, gpus_per_node=2)
    assert pool.replicas_per_node == 2


def test_serverless_limits_follow_sagemaker() -> None:
    with pytest.raises(ValidationError):
        ServerlessEndpoint(max_replicas=201)
    with pytest.raises(ValidationError):
        ServerlessEndpoint(memory_gb=8)


def test_token_service_slows_down_as_the_batch_fills() -> None:
    service = TokenService(prefill_s_per_1k_tokens=0.1, decode_s_per_token=0.02, max_batch=8)
    alone = service.service_s(1000, 100, batch=1)
    full = service.service_s(1000, 100, batch=8)
    assert alone == pytest.approx(0.1 + 2.0)
    assert full == pytest.approx(0.1 + 0.02 * 1.6 * 100)
    tokens = TokenProfile(input_mean=1000, output_mean=100)
    assert service.throughput_rps(tokens) == pytest.approx(8 / full)


def test_exponential_service_is_seeded() -> None:
    service = ExponentialService(mean_s=2.0)
    first = [service.sample_s(np.random.default_rng(3), 0, 0, 1) for _ in range(3)]
    again = [service.sample_s(np.random.default_rng(3), 0, 0, 1) for _ in range(3)]
    assert first == again


def test_delay_accepts_a_bare_number_and_samples_lognormal_mean() -> None:
    assert Delay.model_validate(90) == Delay(kind="fixed", mean_s=90)
    delay = Delay(kind="lognormal", mean_s=100.0, cv=0.5)
    rng = np.random.default_rng(0)
    draws = np.array([delay.sample(rng) for _ in range(20000)])
    assert draws.mean() == pytest.approx(100.0, rel=0.02)
    assert draws.std() / draws.mean() == pytest.approx(0.5, rel=0.05)
