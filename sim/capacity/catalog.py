"""Default prices and shapes of common GPU (and a few CPU) instances.

Prices are US East (N. Virginia), Linux, on-demand, USD per hour, as listed on
the AWS EC2 On-Demand pricing page (aws.amazon.com/ec2/pricing/on-demand) and the
Amazon SageMaker pricing page (aws.amazon.com/sagemaker/pricing, real-time
inference). Spot prices move; `spot_usd_per_h` is a typical discount taken from
the EC2 Spot Instance Advisor range for these families (about 60-70% off) and
should be overridden per scenario where it matters. GPU counts, GPU memory,
vCPUs and instance memory (GiB) are from the EC2 instance type pages
(accelerated computing: G5, G6, P4, P5; general purpose: M7i; compute optimised:
C7i); a SageMaker `ml.*` type has the shape of the EC2 type it is named after.
Packing pods onto nodes needs the memory: prod once asked for 160 GiB per replica
on a 192 GiB g5.12xlarge, so one replica fit per node while every GPU count said
two (`infra.node_shapes` reads it from here).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import ScenarioError


@dataclass(frozen=True)
class InstanceType:
    """One instance type's shape and list price."""

    name: str
    gpus: int
    gpu_model: str
    gpu_memory_gb: int
    vcpus: int
    memory_gib: int
    on_demand_usd_per_h: float
    spot_usd_per_h: float


_CATALOG: tuple[InstanceType, ...] = (
    # EC2 G5 (NVIDIA A10G 24 GB): aws.amazon.com/ec2/instance-types/g5
    InstanceType("g5.xlarge", 1, "A10G", 24, 4, 16, 1.006, 0.40),
    InstanceType("g5.2xlarge", 1, "A10G", 24, 8, 32, 1.212, 0.48),
    InstanceType("g5.4xlarge", 1, "A10G", 24, 16, 64, 1.624, 0.65),
    InstanceType("g5.12xlarge", 4, "A10G", 96, 48, 192, 5.672, 2.27),
    InstanceType("g5.48xlarge", 8, "A10G", 192, 192, 768, 16.288, 6.52),
    # EC2 G6 (NVIDIA L4 24 GB): aws.amazon.com/ec2/instance-types/g6
    InstanceType("g6.xlarge", 1, "L4", 24, 4, 16, 0.8048, 0.32),
    InstanceType("g6.2xlarge", 1, "L4", 24, 8, 32, 0.9776, 0.39),
    InstanceType("g6.12xlarge", 4, "L4", 96, 48, 192, 4.6016, 1.84),
    InstanceType("g6.48xlarge", 8, "L4", 192, 192, 768, 13.3504, 5.34),
    # EC2 P4d (NVIDIA A100 40 GB): aws.amazon.com/ec2/instance-types/p4
    InstanceType("p4d.24xlarge", 8, "A100", 320, 96, 1152, 32.7726, 13.11),
    # EC2 P5 (NVIDIA H100 80 GB): aws.amazon.com/ec2/instance-types/p5
    InstanceType("p5.48xlarge", 8, "H100", 640, 192, 2048, 98.32, 39.33),
    # SageMaker real-time inference equivalents (ml.*): no spot for endpoints,
    # so the spot column repeats the on-demand price.
    InstanceType("ml.g5.xlarge", 1, "A10G", 24, 4, 16, 1.408, 1.408),
    InstanceType("ml.g5.2xlarge", 1, "A10G", 24, 8, 32, 1.515, 1.515),
    InstanceType("ml.g5.12xlarge", 4, "A10G", 96, 48, 192, 7.09, 7.09),
    InstanceType("ml.g6.xlarge", 1, "L4", 24, 4, 16, 1.1267, 1.1267),
    InstanceType("ml.p4d.24xlarge", 8, "A100", 320, 96, 1152, 37.688, 37.688),
    InstanceType("ml.p5.48xlarge", 8, "H100", 640, 192, 2048, 113.068, 113.068),
    # CPU instances for ASGs serving small models directly (c7i, m7i pages).
    InstanceType("c7i.2xlarge", 0, "none", 0, 8, 16, 0.357, 0.14),
    InstanceType("m7i.2xlarge", 0, "none", 0, 8, 32, 0.4032, 0.16),
    # General purpose types for the stacks' system node group (m7i page); spot at
    # the same discount as m7i.2xlarge.
    InstanceType("m7i.large", 0, "none", 0, 2, 8, 0.1008, 0.04),
    InstanceType("m7i.xlarge", 0, "none", 0, 4, 16, 0.2016, 0.08),
)

CATALOG: dict[str, InstanceType] = {it.name: it for it in _CATALOG}


def lookup(name: str) -> InstanceType:
    """The catalog entry for `name`, or a ScenarioError listing the known types."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise ScenarioError(
            f"unknown instance type {name!r}; known types: {known}. "
            "For another type, set price_usd_per_h and gpus_per_node explicitly."
        ) from None
