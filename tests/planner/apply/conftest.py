"""A moto server on 127.0.0.1 (real HTTP), fake credentials from the environment, a stack.

Every test talks to AWS APIs over HTTP through boto3, exactly as `planner apply`
does in production, with `--endpoint-url` pointing at the server this fixture
starts. Credentials are fake and set only through the environment.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: Fake credentials; tests check none of these strings reaches a file scaleplan writes.
FAKE_KEY_ID = "AKIAFAKEFAKEFAKEFAKE"
FAKE_SECRET = "fakeSecretKeyForMotoOnly0123456789abcdef"
#: The apply time the tests inject (the stack's schedule starts after it).
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GROUP = "scaleplan-prod-asg"
ENDPOINT = "scaleplan-prod-serverless"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fake_aws(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> str:
    """Fake credentials in the environment (no profile, no config file), a clean moto
    backend; returns the endpoint URL. For fixtures of any scope."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    import requests

    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    return moto_server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> str:
    """Fake credentials in the environment, a clean moto backend; returns the endpoint URL."""
    return fake_aws(monkeypatch, moto_server)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


@dataclass(frozen=True)
class LiveStack:
    endpoint: str
    project_dir: Path
    audit: Path


def create_resources(endpoint: str, *, desired: int = 3) -> None:
    """The resources `pulumi up` would have created: an ASG tagged for prod, a variant target."""
    ec2 = client(endpoint, "ec2")
    ec2.create_launch_template(
        LaunchTemplateName="scaleplan-prod-lt",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.xlarge"},
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    client(endpoint, "autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateName": "scaleplan-prod-lt", "Version": "$Latest"},
        MinSize=1,
        MaxSize=10,
        DesiredCapacity=desired,
        VPCZoneIdentifier=subnet,
        Tags=[
            {
                "Key": "scaleplan:stack",
                "Value": "prod",
                "PropagateAtLaunch": True,
                "ResourceId": GROUP,
                "ResourceType": "auto-scaling-group",
            }
        ],
    )


def scaling_block(*, serverless: bool = False, **asg_overrides: Any) -> dict[str, Any]:
    """A prod policy using every ASG construct apply handles (and serverless on request).

    moto 5.2 has no `sagemaker:variant:DesiredProvisionedConcurrency` dimension, so
    the serverless part is tested with botocore's Stubber (test_apply_serverless.py).
    """
    asg: dict[str, Any] = {
        "bounds": {"min": 2, "max": 12},
        "target_tracking": {"metric": "gpu_utilisation", "target": 60, "warmup_s": 480},
        "predictive": {
            "mode": "ForecastOnly",
            "metric": "ASGCPUUtilization",
            "target": 40,
            "scheduling_buffer_s": 600,
        },
        "step": {
            "metric": "queue_length_per_replica",
            "high": 10,
            "low": 2,
            "scale_out": [{"lower": 0, "upper": 5, "adjustment": 1}, {"lower": 5, "adjustment": 3}],
            "scale_in": [{"upper": 0, "adjustment": -1}],
        },
        "scheduled": [
            {
                "name": "business-hours",
                "cron": "0 8 * * 1-5",
                "timezone": "America/New_York",
                "min": 4,
            },
        ],
        "schedule": {
            "start": "2026-12-02T11:00:00Z",
            "step_s": 3600,
            "desired": [2, 2, 5, 7, 5, 2],
        },
    }
    asg.update(asg_overrides)
    block: dict[str, Any] = {
        "schema_version": 1,
        "source": {"bundle_id": "prod-predictive", "version": "7", "policy_kind": "predictive"},
        "asg": asg,
    }
    if serverless:
        block["serverless"] = {
            "bounds": {"min": 5, "max": 40},
            "target_tracking": {
                "metric": "provisioned_concurrency_utilisation",
                "target": 0.7,
                "warmup_s": 300,
            },
            "scheduled": [
                {"name": "weekday-peak", "cron": "0 13 * * 1-5", "timezone": "UTC", "min": 10}
            ],
        }
    return block


REPO = Path(__file__).resolve().parents[3]


def write_stack(project_dir: Path, scaling: dict[str, Any] | None, stack: str = "prod") -> Path:
    """`Pulumi.<stack>.yaml`: the repository's prod settings with `scaling` as its policy."""
    doc = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    if scaling is None:
        doc["config"].pop("scaleplan:scaling", None)
    else:
        doc["config"]["scaleplan:scaling"] = scaling
    path = project_dir / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def live_stack(aws_env: str, tmp_path: Path) -> LiveStack:
    create_resources(aws_env)
    project = tmp_path / "project"
    project.mkdir()
    write_stack(project, scaling_block())
    return LiveStack(endpoint=aws_env, project_dir=project, audit=tmp_path / "audit.jsonl")


def put_demand(endpoint: str, requests_per_min: float, age_s: float, points: int = 3) -> None:
    """`points` one-minute RequestCount and GPUUtilization datapoints, the newest `age_s` old."""
    now = datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": GROUP}],
            "Timestamp": now - timedelta(seconds=age_s + 60 * i),
            "Value": value,
        }
        for i in range(points)
        for name, value in (("RequestCount", requests_per_min), ("GPUUtilization", 55.0))
    ]
    client(endpoint, "cloudwatch").put_metric_data(Namespace="scaleplan", MetricData=data)


def overtake_while_acting(
    monkeypatch: pytest.MonkeyPatch, store: Path, bundle: Path, stack: str = "prod"
) -> str:
    """Make another operator promote `bundle` in the local `store` right after the next
    apply or rollback has changed the live stack (its `_run` returns): a real race at
    the one moment that matters. Returns the version the operator promoted."""
    from planner.apply import commands
    from planner.store.local import LocalStore

    theirs = LocalStore(store).put_bundle(bundle)
    acting = commands._run

    def overtaken(request: Any) -> Any:
        outcome = acting(request)
        LocalStore(store).set_champion(stack, theirs, who="operator", reason="meanwhile")
        return outcome

    monkeypatch.setattr(commands, "_run", overtaken)
    return theirs
