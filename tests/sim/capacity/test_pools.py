"""Capacity model validation and derived quantities."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sim.capacity.cpu_models import (
    CONTAINER_START_S,
    DEFAULT_SERVERLESS_MODEL,
    cpu_model,
    vcpus_at,
)
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


def test_a_serverless_pool_serves_the_stacks_cpu_model_by_default() -> None:
    """No GPU on SageMaker serverless: the default is Qwen2.5-0.5B-Instruct on CPU."""
    pool = ServerlessEndpoint()
    entry = cpu_model(DEFAULT_SERVERLESS_MODEL)
    assert pool.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert pool.served_by == "Qwen2.5-0.5B-Instruct on CPU (6 GB serverless)"
    assert isinstance(pool.service, TokenService)
    assert pool.service.max_batch == 1
    assert pool.service == entry.service(6)
    # Not the GPU model: a CPU decode step is slower than the 28 ms of a 7-8B on an A10G.
    assert pool.service.decode_s_per_token > TokenService().decode_s_per_token
    # The cold start loads about 1 GB of weights: above the bare container start.
    assert pool.cold_start_s.mean_s == pytest.approx(entry.cold_start_mean_s())
    assert pool.cold_start_s.mean_s > CONTAINER_START_S + 10.0


def test_less_memory_is_fewer_vcpus_and_a_slower_request() -> None:
    six, four = ServerlessEndpoint(memory_gb=6), ServerlessEndpoint(memory_gb=4)
    tokens = TokenProfile()
    assert vcpus_at(6) == pytest.approx(6144 / 1769)
    ratio = four.service.mean_service_s(tokens, 1) / six.service.mean_service_s(tokens, 1)
    assert ratio == pytest.approx(6 / 4)


def test_a_model_that_does_not_fit_the_memory_is_refused() -> None:
    with pytest.raises(ValidationError, match="do not fit in memory_gb 3; use 4 GB or more"):
        ServerlessEndpoint(memory_gb=3)


def test_an_unknown_model_needs_its_own_service_and_cold_start() -> None:
    with pytest.raises(ValidationError, match="no CPU service model for it"):
        ServerlessEndpoint(model="meta-llama/Llama-3.2-1B-Instruct")
    named = ServerlessEndpoint(
        model="meta-llama/Llama-3.2-1B-Instruct",
        service=TokenService(decode_s_per_token=0.2, max_batch=1),
        cold_start_s=Delay(kind="fixed", mean_s=40.0),
    )
    assert named.served_by.startswith("Llama-3.2-1B-Instruct on CPU")


def test_a_scenario_that_sets_its_own_service_keeps_it() -> None:
    """Old scenario files: their service, and the container-only cold start default."""
    own = ServerlessEndpoint.model_validate(
        {"kind": "serverless", "service": {"kind": "exponential", "mean_s": 1.0}}
    )
    assert own.service == ExponentialService(mean_s=1.0)
    assert own.model is None
    assert own.cold_start_s.mean_s == CONTAINER_START_S
    assert own.served_by == "the scenario's own service model"
    with pytest.raises(ValidationError, match="model: null needs its own `service`"):
        ServerlessEndpoint(model=None)


def test_a_serverless_pool_round_trips_through_its_dump() -> None:
    for pool in (ServerlessEndpoint(memory_gb=4), ServerlessEndpoint(service=TokenService())):
        assert ServerlessEndpoint.model_validate(pool.model_dump()) == pool
