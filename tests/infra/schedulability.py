"""Would the scheduler place each pod the stack runs on some node group it declares?

A small model of kube-scheduler's filters that decide it here: taints against
tolerations (NoSchedule, NoExecute), nodeSelector and required node affinity
against labels, and requests (CPU, memory, `nvidia.com/gpu`) against what an
empty node of the group's smallest allowed type leaves after the kubelet's
reservations and the DaemonSets (`infra.node_shapes`). A group that can grow
(max size >= 1) counts: the cluster autoscaler adds its nodes on demand.

Pods come from what the program registers: Deployments and CronJobs as written,
Helm releases from the values the program passes (their resources and node
selectors are set there on purpose), and CoreDNS, which EKS installs itself,
from the EKS CoreDNS add-on's Deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.node_shapes import (
    DAEMONSET_CPU_M,
    DAEMONSET_MEMORY_MIB,
    cpu_millicores,
    memory_mib,
    node_shape,
)
from tests.infra.conftest import RecordingMocks


@dataclass(frozen=True)
class NodeGroup:
    """One node group as the scheduler sees its nodes."""

    name: str
    instance_types: tuple[str, ...]
    labels: dict[str, str]
    taints: tuple[tuple[str, str, str], ...]  # key, value, effect
    max_size: int


@dataclass(frozen=True)
class Pod:
    """One pod template: where it may go and what it asks for."""

    name: str
    node_selector: dict[str, str] = field(default_factory=dict)
    match_expressions: tuple[dict[str, Any], ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    cpu_m: float = 0.0
    memory_mib: float = 0.0
    gpus: int = 0


#: EKS's CoreDNS add-on Deployment (v1.11/1.12 on EKS 1.33): tolerations and requests.
COREDNS = Pod(
    name="kube-system/coredns",
    tolerations=(
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
    ),
    cpu_m=100,
    memory_mib=70,
)

_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": ""}


def node_groups(mocks: RecordingMocks) -> list[NodeGroup]:
    """The EKS managed node groups the stack declares."""
    out = []
    for r in mocks.of_type("aws:eks/nodeGroup:NodeGroup"):
        p = r.props
        taints = tuple(
            (t["key"], str(t.get("value", "")), _EFFECTS[t["effect"]])
            for t in p.get("taints") or []
        )
        out.append(
            NodeGroup(
                r.name,
                tuple(p["instanceTypes"]),
                dict(p.get("labels") or {}),
                tuple(t for t in taints if t[2]),
                int(p["scalingConfig"]["maxSize"]),
            )
        )
    return out


def _requests(containers: list[dict[str, Any]]) -> tuple[float, float, int]:
    cpu = mem = 0.0
    gpus = 0
    for c in containers:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += cpu_millicores(req.get("cpu", "0"))
        mem += memory_mib(req.get("memory", "0"))
        gpus += int(req.get("nvidia.com/gpu", 0))
    return cpu, mem, gpus


def _from_spec(name: str, spec: dict[str, Any]) -> Pod:
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    expressions = tuple(
        e for term in required.get("nodeSelectorTerms") or [] for e in term["matchExpressions"]
    )
    cpu, mem, gpus = _requests(spec["containers"])
    return Pod(
        name,
        dict(spec.get("nodeSelector") or {}),
        expressions,
        tuple(spec.get("tolerations") or ()),
        cpu,
        mem,
        gpus,
    )


def _from_values(name: str, values: dict[str, Any], resources: dict[str, Any]) -> Pod:
    req = resources.get("requests") or {}
    return Pod(
        name,
        dict(values.get("nodeSelector") or {}),
        (),
        tuple(values.get("tolerations") or ()),
        cpu_millicores(req.get("cpu", "0")),
        memory_mib(req.get("memory", "0")),
    )


def pods(mocks: RecordingMocks) -> list[Pod]:
    """Every pod template of the stack (see the module docstring)."""
    out = [COREDNS]
    for r in mocks.of_type("kubernetes:apps/v1:Deployment"):
        out.append(_from_spec(f"deployment/{r.name}", r.props["spec"]["template"]["spec"]))
    for r in mocks.of_type("kubernetes:batch/v1:CronJob"):
        spec = r.props["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        out.append(_from_spec(f"cronjob/{r.name}", spec))
    for r in mocks.of_type("kubernetes:helm.sh/v3:Release"):
        values = r.props.get("values") or {}
        release = r.props["name"]
        if release == "keda":
            for part in ("operator", "metricServer", "webhooks"):
                out.append(_from_values(f"keda/{part}", values, values["resources"][part]))
        elif release == "cluster-autoscaler":
            out.append(_from_values(release, values, values.get("resources") or {}))
        elif release == "nvidia-device-plugin":
            out.append(_from_values(release, values, {}))
        elif release == "prometheus":
            server = values["server"]
            out.append(_from_values("prometheus/server", server, server["resources"]))
        elif release in ("prometheus-adapter", "dcgm-exporter"):
            out.append(_from_values(release, values, values["resources"]))
        else:
            raise AssertionError(f"no pod model for Helm release {release}")
    return out


def _tolerated(taint: tuple[str, str, str], tolerations: tuple[dict[str, Any], ...]) -> bool:
    key, value, effect = taint
    for t in tolerations:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", key):
            return True
        if (
            t.get("key") == key
            and t.get("operator", "Equal") == "Equal"
            and t.get("value") == value
        ):
            return True
    return False


def _matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise AssertionError(f"operator {op} not modelled")


def why_not(pod: Pod, group: NodeGroup) -> list[str]:
    """Why `pod` cannot run on a node of `group` (empty: it can)."""
    reasons = []
    if group.max_size < 1:
        reasons.append("the group never has a node")
    for taint in group.taints:
        if not _tolerated(taint, pod.tolerations):
            reasons.append(f"untolerated taint {taint[0]}={taint[1]}:{taint[2]}")
    for key, value in pod.node_selector.items():
        if group.labels.get(key) != value:
            reasons.append(f"nodeSelector {key}={value}")
    for expr in pod.match_expressions:
        if not _matches(expr, group.labels):
            reasons.append(f"node affinity {expr}")
    for name in group.instance_types:
        shape = node_shape(name)
        if pod.gpus > shape.gpus:
            reasons.append(f"{name}: {pod.gpus} GPUs requested, {shape.gpus} on the node")
        if pod.cpu_m > shape.allocatable_cpu_m - DAEMONSET_CPU_M:
            reasons.append(f"{name}: {pod.cpu_m:g}m CPU requested")
        if pod.memory_mib > shape.allocatable_memory_mib - DAEMONSET_MEMORY_MIB:
            reasons.append(f"{name}: {pod.memory_mib:g} MiB requested")
    return reasons


def unschedulable(mocks: RecordingMocks) -> dict[str, dict[str, list[str]]]:
    """Pods no node group admits, with each group's reasons (empty: all schedulable)."""
    groups = node_groups(mocks)
    out: dict[str, dict[str, list[str]]] = {}
    for pod in pods(mocks):
        reasons = {g.name: why_not(pod, g) for g in groups}
        if all(reasons.values()):
            out[pod.name] = reasons
    return out
