"""The instance catalog: prices and shapes, memory included (one description for sim and infra)."""

from __future__ import annotations

import pytest

from sim.capacity.catalog import CATALOG, lookup
from sim.errors import ScenarioError

#: GPU memory per GPU by model (NVIDIA data sheets: A10G 24 GB, L4 24 GB, A100 40 GB, H100 80 GB).
GPU_MEMORY_GB = {"A10G": 24, "L4": 24, "A100": 40, "H100": 80}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_type_has_a_consistent_shape(name: str) -> None:
    entry = lookup(name)
    # Every family here has 2 (C7i) to 12 (P4d) GiB per vCPU.
    assert 2 * entry.vcpus <= entry.memory_gib <= 12 * entry.vcpus
    if entry.gpus:
        assert entry.gpu_memory_gb == entry.gpus * GPU_MEMORY_GB[entry.gpu_model]
    else:
        assert (entry.gpu_model, entry.gpu_memory_gb) == ("none", 0)
    assert 0 < entry.spot_usd_per_h <= entry.on_demand_usd_per_h


def test_a_sagemaker_type_has_the_shape_of_its_ec2_type() -> None:
    for name, entry in CATALOG.items():
        if name.startswith("ml."):
            ec2 = CATALOG[name.removeprefix("ml.")]
            assert (entry.gpus, entry.vcpus, entry.memory_gib) == (
                ec2.gpus,
                ec2.vcpus,
                ec2.memory_gib,
            )


def test_the_type_prod_packs_is_the_one_that_needed_memory() -> None:
    """160 GiB replicas on a 192 GiB g5.12xlarge: memory, not GPUs, limits the packing."""
    g5 = lookup("g5.12xlarge")
    assert (g5.gpus, g5.memory_gib) == (4, 192)
    assert g5.memory_gib // 160 < g5.gpus


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"unknown instance type 'x1\.huge'; known types: c7i"):
        lookup("x1.huge")
