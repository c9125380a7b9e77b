"""What a node offers pods: instance memory, GPU memory and the kubelet's reservations.

`sim.capacity.catalog` holds each type's GPU count, GPU memory, vCPUs, memory
and price (one description for the simulator and the stacks); this module turns
them into what the Kubernetes scheduler sees. Packing needs the memory: prod once
asked for 160 GiB per replica on a 192 GiB g5.12xlarge, so one replica fit per
node and two of its four GPUs sat idle while every GPU count said two fit.

Allocatable resources follow the EKS AL2023 node bootstrap (nodeadm): kube-reserved
memory is 255 MiB + 11 MiB per pod the node may run (max pods capped at 110 below
30 vCPUs and 250 from 30), plus the kubelet's 100 MiB hard eviction threshold;
kube-reserved CPU is 6 % of the first core, 1 % of the second, 0.5 % of the next
two and 0.25 % of every core above four. The cap stands in for the ENI-derived
max pods, which is never above it, so allocatable memory here is a lower bound.
No pulumi import here: the guardrails and the tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.capacity.catalog import CATALOG
from sim.errors import ScenarioError

#: CPU-only types the system node group may use (their shapes and prices are in the
#: catalog with every other type).
SYSTEM_TYPES: tuple[str, ...] = ("m7i.large", "m7i.xlarge", "m7i.2xlarge")

EVICTION_HARD_MIB = 100

#: Requests of the DaemonSets on a node (EKS's aws-node 25m and kube-proxy 100m; on GPU
#: nodes the DCGM exporter's 100m and 128 Mi; the NVIDIA device plugin requests nothing),
#: rounded up: what a pod can never use.
DAEMONSET_CPU_M = 250
DAEMONSET_MEMORY_MIB = 512


@dataclass(frozen=True)
class NodeShape:
    """One instance type as the Kubernetes scheduler sees it."""

    name: str
    vcpus: int
    memory_gib: int
    gpus: int
    gpu_memory_gib_per_gpu: int
    on_demand_usd_per_h: float

    @property
    def max_pods(self) -> int:
        """The node's pod limit as nodeadm caps it (110 below 30 vCPUs, else 250)."""
        return 110 if self.vcpus < 30 else 250

    @property
    def allocatable_cpu_m(self) -> int:
        """CPU left to pods after kube-reserved, in millicores."""
        cores = self.vcpus
        reserved = 60.0 + (10.0 if cores >= 2 else 0.0)
        reserved += 5.0 * min(max(cores - 2, 0), 2) + 2.5 * max(cores - 4, 0)
        return int(cores * 1000 - reserved)

    @property
    def allocatable_memory_mib(self) -> int:
        """Memory left to pods after kube-reserved and the eviction threshold, in MiB."""
        reserved = 255 + 11 * self.max_pods + EVICTION_HARD_MIB
        return self.memory_gib * 1024 - reserved


def node_shape(name: str) -> NodeShape:
    """The shape of an instance type, from the catalog.

    Raises:
        ScenarioError: the type is not in the catalog.
    """
    entry = CATALOG.get(name)
    if entry is None:
        known = ", ".join(sorted(CATALOG))
        raise ScenarioError(f"no shape known for instance type {name!r}; known: {known}")
    per_gpu = entry.gpu_memory_gb // entry.gpus if entry.gpus else 0
    return NodeShape(
        name, entry.vcpus, entry.memory_gib, entry.gpus, per_gpu, entry.on_demand_usd_per_h
    )


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_mib(quantity: str) -> float:
    """A Kubernetes memory quantity (`160Gi`, `512Mi`, `1G`, bytes) in MiB."""
    q = str(quantity)
    for suffix, factor in {**_BINARY, **_DECIMAL}.items():
        if q.endswith(suffix):
            return float(q.removesuffix(suffix)) * factor / 2**20
    return float(q) / 2**20


def cpu_millicores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity (`4`, `500m`, `0.5`) in millicores."""
    q = str(quantity)
    if q.endswith("m"):
        return float(q.removesuffix("m"))
    return float(q) * 1000


def replicas_per_node(shape: NodeShape, cpu: str, memory: str, gpus: int) -> int:
    """How many replicas of one pod shape fit on an empty node of `shape`."""
    if gpus > shape.gpus:
        return 0
    by_gpu = shape.gpus // gpus if gpus else shape.max_pods
    by_cpu = int((shape.allocatable_cpu_m - DAEMONSET_CPU_M) // cpu_millicores(cpu))
    by_memory = int((shape.allocatable_memory_mib - DAEMONSET_MEMORY_MIB) // memory_mib(memory))
    return max(0, min(by_gpu, by_cpu, by_memory))
