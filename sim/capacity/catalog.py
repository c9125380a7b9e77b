"""Default prices and shapes of common GPU instances.

Prices are US East (N. Virginia), Linux, on-demand, USD per hour, as listed on
the AWS EC2 On-Demand pricing page (aws.amazon.com/ec2/pricing/on-demand) and the
Amazon SageMaker pricing page (aws.amazon.com/sagemaker/pricing, real-time
inference). Spot prices move; `spot_usd_per_h` is a typical discount taken from
the EC2 Spot Instance Advisor range for these families (about 60-70% off) and
should be overridden per scenario where it matters. GPU counts and memory are
from the EC2 accelerated-computing instance type pages.
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
    on_demand_usd_per_h: float
    spot_usd_per_h: float


_CATALOG: tuple[InstanceType, ...] = (
    # EC2 G5 (NVIDIA A10G 24 GB): aws.amazon.com/ec2/instance-types/g5
    InstanceType("g5.xlarge", 1, "A10G", 24, 4, 1.006, 0.40),
    InstanceType("g5.2xlarge", 1, "A10G", 24, 8, 1.212, 0.48),
    InstanceType("g5.4xlarge", 1, "A10G", 24, 16, 1.624, 0.65),
    InstanceType("g5.12xlarge", 4, "A10G", 96, 48, 5.672, 2.27),
    InstanceType("g5.48xlarge", 8, "A10G", 192, 192, 16.288, 6.52),
    # EC2 G6 (NVIDIA L4 24 GB): aws.amazon.com/ec2/instance-types/g6
    InstanceType("g6.xlarge", 1, "L4", 24, 4, 0.8048, 0.32),
    InstanceType("g6.2xlarge", 1, "L4", 24, 8, 0.9776, 0.39),
    InstanceType("g6.12xlarge", 4, "L4", 96, 48, 4.6016, 1.84),
    InstanceType("g6.48xlarge", 8, "L4", 192, 192, 13.3504, 5.34),
    # EC2 P4d (NVIDIA A100 40 GB): aws.amazon.com/ec2/instance-types/p4
    InstanceType("p4d.24xlarge", 8, "A100", 320, 96, 32.7726, 13.11),
    # EC2 P5 (NVIDIA H100 80 GB): aws.amazon.com/ec2/instance-types/p5
    InstanceType("p5.48xlarge", 8, "H100", 640, 192, 98.32, 39.33),
    # SageMaker real-time inference equivalents (ml.*): no spot for endpoints,
    # so the spot column repeats the on-demand price.
    InstanceType("ml.g5.xlarge", 1, "A10G", 24, 4, 1.408, 1.408),
    InstanceType("ml.g5.2xlarge", 1, "A10G", 24, 8, 1.515, 1.515),
    InstanceType("ml.g5.12xlarge", 4, "A10G", 96, 48, 7.09, 7.09),
    InstanceType("ml.g6.xlarge", 1, "L4", 24, 4, 1.1267, 1.1267),
    InstanceType("ml.p4d.24xlarge", 8, "A100", 320, 96, 37.688, 37.688),
    InstanceType("ml.p5.48xlarge", 8, "H100", 640, 192, 113.068, 113.068),
    # CPU instances for ASGs serving small models directly (c7i, m7i pages).
    InstanceType("c7i.2xlarge", 0, "none", 0, 8, 0.357, 0.14),
    InstanceType("m7i.2xlarge", 0, "none", 0, 8, 0.4032, 0.16),
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
