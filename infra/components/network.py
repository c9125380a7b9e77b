"""The network: a VPC with one public and one private subnet per AZ, or existing subnets."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of `Network`.

    Attributes:
        cidr: VPC range; split into /(prefix+4) subnets: private first, public after.
        azs: Availability zones, at least two (EKS requires subnets in two AZs).
        nat_per_az: One NAT gateway per AZ (survives an AZ outage) instead of one
            shared gateway (cheaper, about $0.045/h each in us-east-1).
        tags: Tags on every resource.
        vpc_id: Use this existing VPC instead of creating one.
        private_subnet_ids: Existing private subnets (with `vpc_id`).
    """

    cidr: str
    azs: tuple[str, ...]
    nat_per_az: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()


class Network(pulumi.ComponentResource):
    """Private subnets for nodes and instances; public subnets hold only NAT gateways.

    Nothing gets a public IP: subnets never map public IPs on launch and the
    NAT gateways use Elastic IPs, so no instance is reachable from the internet.
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scaleplan:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.vpc_id is not None:
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(args.private_subnet_ids))
            self.register_outputs(
                {"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids}
            )
            return
        net = ipaddress.ip_network(args.cidr)
        blocks = list(net.subnets(prefixlen_diff=4))
        if 2 * len(args.azs) > len(blocks):
            raise ValueError(f"{args.cidr} is too small for {len(args.azs)} AZs")
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**args.tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        vpc_child = pulumi.ResourceOptions(parent=vpc)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=args.tags, opts=vpc_child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={**args.tags, "Name": f"{name}-public"},
            opts=vpc_child,
        )
        nats: list[aws.ec2.NatGateway] = []
        private: list[aws.ec2.Subnet] = []
        for i, az in enumerate(args.azs):
            public_subnet = aws.ec2.Subnet(
                f"{name}-public-{az}",
                vpc_id=vpc.id,
                availability_zone=az,
                cidr_block=str(blocks[len(args.azs) + i]),
                map_public_ip_on_launch=False,
                tags={**args.tags, "Name": f"{name}-public-{az}", "kubernetes.io/role/elb": "1"},
                opts=vpc_child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}",
                subnet_id=public_subnet.id,
                route_table_id=public_rt.id,
                opts=vpc_child,
            )
            if args.nat_per_az or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc", tags=args.tags, opts=vpc_child)
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{az}",
                        allocation_id=eip.id,
                        subnet_id=public_subnet.id,
                        tags={**args.tags, "Name": f"{name}-nat-{az}"},
                        opts=pulumi.ResourceOptions(parent=vpc, depends_on=[igw]),
                    )
                )
            subnet = aws.ec2.Subnet(
                f"{name}-private-{az}",
                vpc_id=vpc.id,
                availability_zone=az,
                cidr_block=str(blocks[i]),
                map_public_ip_on_launch=False,
                tags={
                    **args.tags,
                    "Name": f"{name}-private-{az}",
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": name,
                },
                opts=vpc_child,
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-{az}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[-1].id}],
                tags={**args.tags, "Name": f"{name}-private-{az}"},
                opts=vpc_child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}", subnet_id=subnet.id, route_table_id=rt.id, opts=vpc_child
            )
            private.append(subnet)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private]).apply(list)
        self.register_outputs(
            {"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids}
        )
