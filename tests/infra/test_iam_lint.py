"""Every IAM policy document the stacks create, linted by parliament (issue 12).

parliament (duo-labs) checks actions and resource ARNs against the IAM
reference: unknown actions, malformed ARNs, conditions an action does not
support, and `Resource: "*"` on actions that accept narrower resources. Each
document must come back with no finding at all.
"""

from __future__ import annotations

import importlib.resources
import json
import sys
import types
from typing import Any

import pytest

from tests.infra.conftest import EVERY_BUILD, RecordingMocks

STACKS = ("dev", "staging", "prod")


def _parliament() -> Any:
    """parliament 1.6.3, which still looks its data files up through pkg_resources.

    setuptools 81+ no longer ships pkg_resources; the one function parliament calls
    is served by importlib.resources, as setuptools' own deprecation note advises.
    """
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ModuleNotFoundError:
            shim = types.ModuleType("pkg_resources")
            shim.resource_filename = lambda package, name: str(  # type: ignore[attr-defined]
                importlib.resources.files(package) / name
            )
            sys.modules["pkg_resources"] = shim
    import parliament

    return parliament


@pytest.fixture(scope="module")
def built(every_build: dict[str, RecordingMocks]) -> dict[str, RecordingMocks]:
    """Every stack with the fixed policy and as committed (conftest.every_build)."""
    return every_build


def findings(document: str) -> list[str]:
    parliament = _parliament()
    policy = parliament.analyze_policy_string(document)
    return [f"{f.issue}: {f.detail}" for f in policy.findings]


@pytest.mark.parametrize("stack", EVERY_BUILD)
def test_every_permission_policy_lints_clean(built: dict[str, RecordingMocks], stack: str) -> None:
    documents = {
        r.name: str(r.props["policy"])
        for r in built[stack].resources
        if r.type in ("aws:iam/rolePolicy:RolePolicy", "aws:s3/bucketPolicy:BucketPolicy")
    }
    assert len(documents) >= 3  # retraining, node autoscaler, bundle bucket (+ serverless)
    for name, document in documents.items():
        assert findings(document) == [], name


@pytest.mark.parametrize("stack", EVERY_BUILD)
def test_every_web_identity_trust_names_one_service_account(
    built: dict[str, RecordingMocks], stack: str
) -> None:
    """Trust policies have no Resource, so parliament does not read them; check them here."""
    for r in built[stack].of_type("aws:iam/role:Role"):
        for statement in json.loads(str(r.props["assumeRolePolicy"]))["Statement"]:
            if statement["Action"] != "sts:AssumeRoleWithWebIdentity":
                assert set(statement["Principal"]) == {"Service"}, r.name
                continue
            equals = statement["Condition"]["StringEquals"]
            keys = {k.rsplit(":", 1)[-1] for k in equals}
            assert keys == {"sub", "aud"}, r.name
            assert next(v for k, v in equals.items() if k.endswith(":sub")).count(":") == 3


def test_the_linter_sees_a_wildcard_a_narrower_resource_would_serve() -> None:
    """The lint has teeth: the serverless role's old ECR statement is flagged."""
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": "*",
            }
        ],
    }
    assert any(f.startswith("RESOURCE_STAR") for f in findings(json.dumps(old)))


def _cli_calls(script: str) -> set[str]:
    """IAM actions of the `aws <service> <command>` calls in a shell script."""
    import re

    service_prefix = {"autoscaling": "autoscaling", "ssm": "ssm", "cloudwatch": "cloudwatch"}
    calls = set()
    for service, command in re.findall(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)", script):
        action = "".join(part.capitalize() for part in command.split("-"))
        calls.add(f"{service_prefix[service]}:{action}")
    return calls


def test_the_instance_role_allows_exactly_what_the_boot_script_calls(
    built: dict[str, RecordingMocks],
) -> None:
    """Least privilege against the calls made: the ASG boot script is the one caller.

    `cloudwatch:PutMetricData` comes from the attached CloudWatchAgentServerPolicy
    (the agent needs it too); every other call needs a statement of the inline
    policy, and every action there is called.
    """
    import base64

    prod = built["prod"]
    script = base64.b64decode(
        prod.one("aws:ec2/launchTemplate:LaunchTemplate", "-asg").props["userData"]
    ).decode()
    calls = _cli_calls(script)
    assert calls == {
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:CompleteLifecycleAction",
        "ssm:GetParameter",
        "cloudwatch:PutMetricData",
    }
    inline = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "asg-boot").props["policy"])
    granted = {a for s in inline["Statement"] for a in s["Action"]}
    assert granted == calls - {"cloudwatch:PutMetricData"}
    attached = {
        r.props["policyArn"].rsplit("/", 1)[-1]
        for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if "asg-instance" in r.name
    }
    assert "CloudWatchAgentServerPolicy" in attached
