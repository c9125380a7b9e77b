"""Stack settings: the committed stack files validate; bad values name file, key and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.stack_file import load_stack_file, read_stack_file, settings_from_config
from sim.errors import StackConfigError, UserInputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stack_files_validate(stack: str) -> None:
    settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    assert settings.environment == stack
    assert settings.tags["scaleplan:stack"] == stack
    assert settings.scaling is not None


def test_environments_differ_in_size_and_capacity_type() -> None:
    dev, prod = (load_stack_file(ROOT / f"Pulumi.{s}.yaml") for s in ("dev", "prod"))
    assert all(p.capacity_type == "SPOT" for p in dev.gpu_node_pools)
    assert any(p.capacity_type == "ON_DEMAND" and p.min_size >= 1 for p in prod.gpu_node_pools)
    assert len(prod.network.azs) == 3 and prod.network.nat_per_az
    assert sum(p.max_size for p in prod.gpu_node_pools) > 10 * sum(
        p.max_size for p in dev.gpu_node_pools
    )


def _values(**changes: Any) -> dict[str, Any]:
    raw = read_stack_file(ROOT / "Pulumi.staging.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values.update(changes)
    return values


def _error(**changes: Any) -> str:
    with pytest.raises(StackConfigError) as err:
        settings_from_config(
            _values(**changes), stack="staging", region="us-east-1", source="Pulumi.staging.yaml"
        )
    assert isinstance(err.value, UserInputError)  # the CLI exits 2, no traceback
    return str(err.value)


def test_unknown_key_is_named() -> None:
    assert "unknown config key(s) scaleplan:gpuPools" in _error(gpuPools=[])


def test_warm_pool_with_spot_explains_the_aws_limit() -> None:
    asg = {**_values()["asg"], "on_demand_pct_above_base": 50}
    message = _error(asg=asg)
    assert "scaleplan:asg" in message and "warm pool" in message and "Spot" in message


def test_non_gpu_instance_in_a_gpu_pool() -> None:
    pools = _values()["gpuNodePools"]
    pools = [{**pools[0], "instance_types": ["c7i.2xlarge"]}, *pools[1:]]
    assert "has no GPU" in _error(gpuNodePools=pools)


def test_serverless_limits_are_the_sagemaker_ones() -> None:
    serverless = {**_values()["serverless"], "memory_mb": 8192, "max_concurrency": 500}
    message = _error(serverless=serverless)
    assert "scaleplan:serverless.memory_mb" in message
    assert "scaleplan:serverless.max_concurrency" in message


def test_az_outside_region() -> None:
    network = {**_values()["network"], "azs": ["us-west-2a", "us-west-2b"]}
    assert "us-west-2a is not in region us-east-1" in _error(network=network)


def test_policy_for_a_target_the_stack_lacks() -> None:
    from tests.infra.conftest import fixture_scaling

    # The fixed staging policy scales serverless provisioned concurrency.
    values = _values(scaling=fixture_scaling("staging"))
    values.pop("serverless")
    with pytest.raises(
        StackConfigError, match=r"scaling\.serverless is set but the stack has no serverless"
    ):
        settings_from_config(
            values, stack="staging", region="us-east-1", source="Pulumi.staging.yaml"
        )


def test_missing_stack_file(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match="no such stack file"):
        load_stack_file(tmp_path / "Pulumi.nope.yaml")


def test_missing_region(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  scaleplan:environment: dev\n")
    with pytest.raises(StackConfigError, match="missing aws:region"):
        load_stack_file(path)


def test_with_scaling_revalidates_against_the_stack() -> None:
    from policies.stack_config import StackScaling

    dev = load_stack_file(ROOT / "Pulumi.dev.yaml")
    serverless_policy = StackScaling.model_validate(
        {
            "source": {"bundle_id": "b", "version": "1"},
            "serverless": {"bounds": {"min": 1, "max": 2}},
        }
    )
    with pytest.raises(StackConfigError, match="does not fit stack dev"):
        dev.with_scaling(serverless_policy)
    assert dev.scaling is not None
    assert dev.with_scaling(dev.scaling) == dev
