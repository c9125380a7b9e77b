"""A broken stack config fails before any resource exists, with a message that says what to fix."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra import __main__ as program
from sim.errors import StackConfigError
from tests.infra.conftest import RunStack, install, stack_config


def _prod_pools(**changes: Any) -> list[dict[str, Any]]:
    import json

    pools: list[dict[str, Any]] = json.loads(stack_config("prod")["scaleplan:gpuNodePools"])
    pools[0].update(changes)
    return pools


def test_missing_required_key_names_the_key_and_the_command(run_stack: RunStack) -> None:
    with pytest.raises(pulumi.config.ConfigMissingError) as err:
        run_stack("dev", {"scaleplan:owner": None})
    assert "scaleplan:owner" in str(err.value)
    assert "pulumi config set" in str(err.value)


def test_missing_secret_is_reported(run_stack: RunStack) -> None:
    with pytest.raises(pulumi.config.ConfigMissingError, match="scaleplan:modelToken"):
        run_stack("dev", {"scaleplan:modelToken": None})


def test_min_above_max_names_the_file_and_field(run_stack: RunStack) -> None:
    pools = _prod_pools(min_size=9, max_size=3, desired_size=3)
    with pytest.raises(StackConfigError) as err:
        run_stack("prod", {"scaleplan:gpuNodePools": pools})
    message = str(err.value)
    assert "Pulumi.prod.yaml" in message
    assert "scaleplan:gpuNodePools.0" in message
    assert "min_size (9) <= desired_size (3) <= max_size (3)" in message


def test_unknown_instance_type_lists_known_types(run_stack: RunStack) -> None:
    pools = _prod_pools(instance_types=["g9.huge"])
    with pytest.raises(StackConfigError) as err:
        run_stack("prod", {"scaleplan:gpuNodePools": pools})
    assert "unknown instance type 'g9.huge'" in str(err.value)
    assert "g5.xlarge" in str(err.value)


def test_emitted_policy_with_min_above_max_is_rejected(run_stack: RunStack) -> None:
    import json

    scaling = json.loads(stack_config("staging")["scaleplan:scaling"])
    scaling["asg"]["bounds"] = {"min": 5, "max": 2}
    with pytest.raises(
        StackConfigError, match=r"scaleplan:scaling\.asg\.bounds.*min \(5\) is above max \(2\)"
    ):
        run_stack("staging", {"scaleplan:scaling": scaling})


def test_guardrail_breach_stops_the_program_before_any_resource(run_stack: RunStack) -> None:
    # prod with only spot capacity: every pool SPOT and no ASG on-demand base.
    import json

    pools = json.loads(stack_config("prod")["scaleplan:gpuNodePools"])
    for pool in pools:
        pool["capacity_type"] = "SPOT"
    asg = json.loads(stack_config("prod")["scaleplan:asg"])
    asg["on_demand_base_capacity"] = 0
    config = stack_config("prod", {"scaleplan:gpuNodePools": pools, "scaleplan:asg": asg})
    mocks = install("prod", "prod", config)

    @pulumi.runtime.test
    def body() -> None:
        program.main()

    with pytest.raises(StackConfigError, match="spot-not-only-capacity"):
        body()
    assert mocks.resources == []


def test_too_many_gpu_nodes_for_dev_is_refused(run_stack: RunStack) -> None:
    import json

    pools = json.loads(stack_config("dev")["scaleplan:gpuNodePools"])
    pools[0]["max_size"] = 40
    with pytest.raises(StackConfigError, match=r"max-gpu-nodes.*dev limit 4"):
        run_stack("dev", {"scaleplan:gpuNodePools": pools})
