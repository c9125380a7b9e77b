"""Components built one at a time under mocks, outputs resolved with `.apply`."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.components.asg import step_adjustments
from infra.components.eks_cluster import kubeconfig_json
from infra.components.gpu_service import hpa_behavior, hpa_metric
from infra.components.serverless import aws_cron
from infra.settings import NodePoolSettings
from policies.stack_config import HpaBehavior, HpaRules, StepScaling
from tests.infra.conftest import install


@pytest.fixture
def mocks() -> Any:
    yield install("unit", "dev", {})
    pulumi.runtime.set_all_config({})


@pulumi.runtime.test
def _existing_network() -> pulumi.Output[Any]:
    from infra.components.network import Network, NetworkArgs

    net = Network(
        "net",
        NetworkArgs(
            cidr="10.0.0.0/16",
            azs=("us-east-1a", "us-east-1b"),
            vpc_id="vpc-0abc",
            private_subnet_ids=("subnet-1", "subnet-2"),
        ),
    )
    return pulumi.Output.all(net.vpc_id, net.private_subnet_ids).apply(
        lambda v: _check_existing(v[0], v[1])
    )


def _check_existing(vpc_id: str, subnets: list[str]) -> None:
    assert vpc_id == "vpc-0abc"
    assert subnets == ["subnet-1", "subnet-2"]


def test_existing_network_creates_no_vpc(mocks: Any) -> None:
    _existing_network()
    assert [r.type for r in mocks.resources] == ["scaleplan:infra:Network"]


def test_new_network_splits_the_cidr_into_private_and_public_subnets(mocks: Any) -> None:
    from infra.components.network import Network, NetworkArgs

    @pulumi.runtime.test
    def build() -> pulumi.Output[Any]:
        net = Network(
            "net",
            NetworkArgs(cidr="10.1.0.0/16", azs=("us-east-1a", "us-east-1b"), tags={"owner": "t"}),
        )
        return net.private_subnet_ids.apply(lambda ids: _check_ids(ids))

    def _check_ids(ids: list[str]) -> None:
        assert ids == ["net-private-us-east-1a-id", "net-private-us-east-1b-id"]

    build()
    cidrs = {r.name: r.props["cidrBlock"] for r in mocks.of_type("aws:ec2/subnet:Subnet")}
    assert cidrs == {
        "net-private-us-east-1a": "10.1.0.0/20",
        "net-private-us-east-1b": "10.1.16.0/20",
        "net-public-us-east-1a": "10.1.32.0/20",
        "net-public-us-east-1b": "10.1.48.0/20",
    }
    assert all(
        r.props["mapPublicIpOnLaunch"] is False for r in mocks.of_type("aws:ec2/subnet:Subnet")
    )


def test_eks_cluster_kubeconfig_output_uses_exec_auth(mocks: Any) -> None:
    from infra.components.eks_cluster import EksCluster, EksClusterArgs

    pool = NodePoolSettings(
        name="gpu", instance_types=("g6.xlarge",), min_size=0, max_size=2, desired_size=0
    )

    @pulumi.runtime.test
    def build() -> pulumi.Output[Any]:
        cluster = EksCluster(
            "c",
            EksClusterArgs(version="1.33", subnet_ids=["s-1", "s-2"], node_pools=(pool,)),
        )
        return pulumi.Output.all(cluster.kubeconfig, cluster.oidc_issuer).apply(check)

    def check(v: list[Any]) -> None:
        config = json.loads(v[0])
        assert (
            config["clusters"][0]["cluster"]["server"]
            == "https://c.gr7.us-east-1.eks.amazonaws.com"
        )
        assert config["users"][0]["user"]["exec"]["args"] == [
            "eks",
            "get-token",
            "--cluster-name",
            "c",
        ]
        assert v[1] == "https://oidc.eks.us-east-1.amazonaws.com/id/C"

    build()
    oidc = mocks.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").props
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    for name in ("c-gpu", "c-system"):
        lt = mocks.one("aws:ec2/launchTemplate:LaunchTemplate", name).props
        assert lt["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
        assert lt["metadataOptions"]["httpTokens"] == "required"
        # Pods cannot reach IMDS (one hop) and so cannot take the node role (item 12).
        assert lt["metadataOptions"]["httpPutResponseHopLimit"] == 1


def test_hpa_behavior_maps_every_field() -> None:
    behavior = HpaBehavior(
        scale_up=HpaRules(
            stabilization_window_s=15,
            select_policy="Max",
            policies=({"type": "Percent", "value": 100, "period_s": 15},),  # type: ignore[arg-type]
            tolerance=0.02,
        ),
        scale_down=HpaRules(stabilization_window_s=300, select_policy="Disabled"),
    )
    assert hpa_behavior(behavior) == {
        "scaleUp": {
            "stabilizationWindowSeconds": 15,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Disabled"},
    }


@pytest.mark.parametrize(
    ("metric", "target", "expected"),
    [
        (
            "cpu_utilisation",
            65.0,
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 65},
                },
            },
        ),
        (
            "gpu_utilisation",
            70.0,
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                    "target": {"type": "AverageValue", "averageValue": "70"},
                },
            },
        ),
    ],
    ids=["cpu-resource", "gpu-pods"],
)
def test_hpa_metric(metric: str, target: float, expected: dict[str, Any]) -> None:
    assert hpa_metric(metric, target) == expected


@pytest.mark.parametrize(
    ("unix", "aws"),
    [
        ("0 8 * * 1-5", "cron(0 8 ? * 2-6 *)"),
        ("30 6 1 * *", "cron(30 6 1 * ? *)"),
        ("0 0 * * 0,6", "cron(0 0 ? * 1,7 *)"),
        ("*/15 * * * *", "cron(*/15 * * * ? *)"),
    ],
    ids=["weekdays", "monthly", "weekend", "every-15-min"],
)
def test_aws_cron_conversion(unix: str, aws: str) -> None:
    assert aws_cron(unix) == aws


def test_aws_cron_rejects_both_day_fields() -> None:
    with pytest.raises(ValueError, match="both day-of-month and day-of-week"):
        aws_cron("0 0 1 * 1")


def test_step_adjustments_are_relative_string_bounds() -> None:
    step = StepScaling.model_validate(
        {
            "metric": "gpu_utilisation",
            "high": 80,
            "low": 30,
            "scale_out": [
                {"lower": 0, "upper": 10, "adjustment": 1},
                {"lower": 10, "adjustment": 3},
            ],
            "scale_in": [
                {"upper": 0, "lower": -20, "adjustment": -1},
                {"upper": -20, "adjustment": -2},
            ],
        }
    )
    assert step_adjustments(step, out=True) == [
        {
            "scaling_adjustment": 1,
            "metric_interval_lower_bound": "0",
            "metric_interval_upper_bound": "10",
        },
        {"scaling_adjustment": 3, "metric_interval_lower_bound": "10"},
    ]
    assert step_adjustments(step, out=False)[1] == {
        "scaling_adjustment": -2,
        "metric_interval_upper_bound": "-20",
    }


def test_kubeconfig_has_no_static_credentials() -> None:
    config = json.loads(kubeconfig_json("c", "https://x", "Y2E="))
    user = config["users"][0]["user"]
    assert set(user) == {"exec"}
