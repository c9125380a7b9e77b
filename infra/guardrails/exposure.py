"""Guardrails on exposure: nothing reachable from the internet, no node credentials for pods.

Rules over Pulumi resource properties (camelCase inputs), like `resources`: the
cluster API allowlist, public IPs, ingress from the internet in every form AWS
offers (inline rules, rule resources, IPv4 and IPv6, a /0 split in halves),
internet-facing load balancers and Ingresses, bucket public-access blocks, and
the instance metadata service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from infra.guardrails.views import ResourceView, Violation

#: A CIDR shorter than this prefix is treated as the internet: `0.0.0.0/1` plus
#: `128.0.0.0/1` is 0.0.0.0/0 in two rules. /8 still admits a VPC's own 10.0.0.0/8.
OPEN_PREFIX_V4 = 8
OPEN_PREFIX_V6 = 32
#: The cluster API allowlist is held tighter: a block above a /16 is not an allowlist.
API_ALLOWLIST_PREFIX_V4 = 16
API_ALLOWLIST_PREFIX_V6 = 48


def is_open_cidr(
    cidr: str, prefix_v4: int = OPEN_PREFIX_V4, prefix_v6: int = OPEN_PREFIX_V6
) -> bool:
    """True when `cidr` is broader than the given prefix (unparseable counts as open)."""
    try:
        net = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return True
    return net.prefixlen < (prefix_v4 if net.version == 4 else prefix_v6)


def _open(cidrs: Iterable[Any]) -> list[str]:
    return [str(c) for c in cidrs if is_open_cidr(str(c))]


def check_public(view: ResourceView) -> list[Violation]:
    """No endpoint open to the internet: cluster API, instances, subnets, security groups."""
    p, out = view.props, []
    if view.type == "aws:eks/cluster:Cluster":
        vpc = p.get("vpcConfig") or {}
        public = vpc.get("endpointPublicAccess", True)  # AWS default is public
        cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
        broad = [
            c
            for c in cidrs
            if is_open_cidr(str(c), API_ALLOWLIST_PREFIX_V4, API_ALLOWLIST_PREFIX_V6)
        ]
        if public and broad:
            out.append(
                Violation(
                    "no-public-endpoint",
                    view.name,
                    "cluster API open to 0.0.0.0/0; set cluster.public_access_cidrs to your "
                    "office/VPN ranges or leave it empty for a private endpoint",
                )
            )
    if view.type == "aws:ec2/launchTemplate:LaunchTemplate":
        for nic in p.get("networkInterfaces") or []:
            if str(nic.get("associatePublicIpAddress", "false")).lower() == "true":
                out.append(Violation("no-public-endpoint", view.name, "instances get public IPs"))
    if view.type == "aws:ec2/subnet:Subnet" and p.get("mapPublicIpOnLaunch"):
        out.append(Violation("no-public-endpoint", view.name, "subnet maps public IPs on launch"))
    out.extend(_open_ingress(view))
    if view.type == "kubernetes:core/v1:Service":
        spec, meta = p.get("spec") or {}, p.get("metadata") or {}
        if spec.get("type") == "LoadBalancer" and not _internal_service(meta):
            out.append(Violation("no-public-endpoint", view.name, "LoadBalancer is not internal"))
    if view.type in _LOAD_BALANCERS and p.get("internal") is not True:
        out.append(
            Violation(
                "no-public-endpoint", view.name, "load balancer is internet-facing; set internal"
            )
        )
    if view.type == "kubernetes:networking.k8s.io/v1:Ingress":
        annotations = (p.get("metadata") or {}).get("annotations") or {}
        if annotations.get("alb.ingress.kubernetes.io/scheme") != "internal":
            out.append(
                Violation(
                    "no-public-endpoint",
                    view.name,
                    "Ingress may get an internet-facing load balancer; annotate "
                    "alb.ingress.kubernetes.io/scheme: internal",
                )
            )
    if view.type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        off = [k for k in keys if p.get(k) is not True]
        if off:
            out.append(Violation("no-public-endpoint", view.name, f"set {', '.join(off)} true"))
    return out


_LOAD_BALANCERS = frozenset(
    {
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:alb/loadBalancer:LoadBalancer",
        "aws:elb/loadBalancer:LoadBalancer",
    }
)


def _internal_service(meta: Mapping[str, Any]) -> bool:
    annotations = meta.get("annotations") or {}
    if annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme") == "internal":
        return True
    # The in-tree provider's legacy annotation: "true" (or, historically, a CIDR).
    legacy = annotations.get("service.beta.kubernetes.io/aws-load-balancer-internal")
    return legacy is not None and str(legacy).lower() not in ("false", "")


def _open_ingress(view: ResourceView) -> list[Violation]:
    """Ingress from the internet, inline in a security group or as separate rule resources."""
    p = view.props
    blocks: list[Any] = []
    if view.type == "aws:ec2/securityGroup:SecurityGroup":
        for rule in p.get("ingress") or []:
            blocks += [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
    elif view.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and p.get("type") == "ingress":
        blocks += [*(p.get("cidrBlocks") or []), *(p.get("ipv6CidrBlocks") or [])]
    elif view.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        blocks += [b for b in (p.get("cidrIpv4"), p.get("cidrIpv6")) if b]
    opened = _open(blocks)
    if not opened:
        return []
    return [
        Violation(
            "no-public-endpoint",
            view.name,
            f"ingress open to the internet ({', '.join(opened)}); allow the VPC or named ranges",
        )
    ]


def check_metadata(view: ResourceView) -> list[Violation]:
    """IMDSv2 only, and a hop limit of 1 so pods cannot take the node role's credentials."""
    p = view.props
    if view.type == "aws:ec2/launchTemplate:LaunchTemplate":
        meta = p.get("metadataOptions") or {}
        tokens, hops = meta.get("httpTokens"), meta.get("httpPutResponseHopLimit")
    elif view.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass":
        meta = (p.get("spec") or {}).get("metadataOptions") or {}
        tokens = meta.get("httpTokens", "required")  # Karpenter's defaults
        hops = meta.get("httpPutResponseHopLimit", 1)
    else:
        return []
    out: list[Violation] = []
    if tokens != "required":
        out.append(Violation("imds", view.name, "set metadata httpTokens: required (IMDSv2)"))
    if hops is not None and int(hops) > 1:
        out.append(
            Violation(
                "imds",
                view.name,
                f"IMDS hop limit {hops} lets pods reach the node role's credentials; use 1 "
                "(pods use IRSA)",
            )
        )
    return out
