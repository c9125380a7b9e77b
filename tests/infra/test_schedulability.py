"""Every pod the stack runs fits some node group it declares (issue 12, items 4 and 7).

Before this issue every node group carried the GPU taint, so CoreDNS, KEDA and the
retraining job had nowhere to go, and prod's 160 GiB replicas packed one per
four-GPU node. See `tests/infra/schedulability.py` for the model.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import EVERY_BUILD, RecordingMocks
from tests.infra.schedulability import COREDNS, NodeGroup, Pod, node_groups, unschedulable, why_not

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def built(every_build: dict[str, RecordingMocks]) -> dict[str, RecordingMocks]:
    """Every stack with the fixed policy and as committed (conftest.every_build)."""
    return every_build


@pytest.mark.parametrize("stack", EVERY_BUILD)
def test_every_pod_template_fits_some_node_group(
    built: dict[str, RecordingMocks], stack: str
) -> None:
    assert unschedulable(built[stack]) == {}


def test_the_model_refuses_what_the_scheduler_refuses(built: dict[str, RecordingMocks]) -> None:
    """The checker itself: GPU taint, missing labels and oversize requests are refusals."""
    groups = {g.name.rsplit("-", 1)[-1]: g for g in node_groups(built["prod"])}
    gpu, system = groups["od"], groups["system"]
    assert why_not(COREDNS, system) == []
    assert why_not(COREDNS, gpu) == ["untolerated taint nvidia.com/gpu=true:NoSchedule"]
    only_gpu = NodeGroup(gpu.name, gpu.instance_types, gpu.labels, gpu.taints, gpu.max_size)
    big = Pod("big", tolerations=({"key": "nvidia.com/gpu", "operator": "Exists"},), gpus=8)
    assert any("8 GPUs requested" in r for r in why_not(big, only_gpu))
    hungry = Pod("hungry", memory_mib=200 * 1024)
    assert any("MiB requested" in r for r in why_not(hungry, system))


def test_prod_replicas_use_every_gpu_of_their_node(built: dict[str, RecordingMocks]) -> None:
    """Item 7: memory and CPU per replica let the node's GPUs all work."""
    from infra.node_shapes import node_shape, replicas_per_node

    dep: Any = built["prod"].one("kubernetes:apps/v1:Deployment").props
    requests = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    gpus = int(requests["nvidia.com/gpu"])
    for group in node_groups(built["prod"]):
        for name in group.instance_types:
            shape = node_shape(name)
            if shape.gpus == 0:
                continue
            fit = replicas_per_node(shape, requests["cpu"], requests["memory"], gpus)
            assert fit * gpus == shape.gpus, (name, fit)


def test_node_shapes_read_the_simulators_catalog() -> None:
    """One description of an instance: infra's node shapes are the catalog's entries."""
    from infra.node_shapes import SYSTEM_TYPES, node_shape
    from sim.capacity.catalog import CATALOG

    for name, entry in CATALOG.items():
        shape = node_shape(name)
        assert (shape.vcpus, shape.memory_gib, shape.gpus) == (
            entry.vcpus,
            entry.memory_gib,
            entry.gpus,
        )
        assert shape.on_demand_usd_per_h == entry.on_demand_usd_per_h
    assert set(SYSTEM_TYPES) <= set(CATALOG)
