"""The CrossGuard pack calls the same validators as the mocks and the planner."""

from __future__ import annotations

from typing import Any

import pytest

pulumi_policy = pytest.importorskip("pulumi_policy")

from infra import guardrails  # noqa: E402
from infra.policypack.policies import PACK_NAME, build_policies, environment_of  # noqa: E402

TAGS = {
    "scaleplan:stack": "dev",
    "owner": "ml",
    "cost-center": "cc",
    "scaleplan:environment": "dev",
}


def _validate(
    typ: str, props: dict[str, Any], config: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    reported: list[tuple[str, str]] = []
    for policy in build_policies():
        if not isinstance(policy, pulumi_policy.ResourceValidationPolicy):
            continue
        args = pulumi_policy.ResourceValidationArgs(
            resource_type=typ,
            props=props,
            urn=f"urn:pulumi:dev::scaleplan::{typ}::r",
            name="r",
            opts=None,  # type: ignore[arg-type]
            provider=None,
            config=config or {},
        )
        policy.validate(
            args, lambda message, urn=None, p=policy.name: reported.append((p, message))
        )
    return reported


def test_pack_reports_exactly_what_the_guardrails_find() -> None:
    props = {
        "tags": TAGS,
        "instanceTypes": ["g5.xlarge"],
        "scalingConfig": {"minSize": 0, "desiredSize": 0, "maxSize": 9},
    }
    reported = _validate("aws:eks/nodeGroup:NodeGroup", props)
    expected = guardrails.check_resource(
        guardrails.ResourceView("aws:eks/nodeGroup:NodeGroup", "r", props), "dev"
    )
    assert [(v.rule, v.message) for v in expected] == reported
    assert reported == [("max-gpu-nodes", "max size 9 exceeds the dev limit of 4 GPU nodes")]


def test_environment_comes_from_config_then_tags_then_prod() -> None:
    assert environment_of({"environment": "staging"}, {"tags": TAGS}) == "staging"
    assert environment_of({}, {"tags": TAGS}) == "dev"
    assert environment_of({}, {"tags": [{"key": "scaleplan:environment", "value": "dev"}]}) == "dev"
    assert environment_of({}, {}) == "prod"


def test_stack_policy_checks_cross_resource_rules() -> None:
    [stack_policy] = [
        p for p in build_policies() if isinstance(p, pulumi_policy.StackValidationPolicy)
    ]
    spot = pulumi_policy.PolicyResource(
        resource_type="aws:eks/nodeGroup:NodeGroup",
        props={
            "tags": {**TAGS, "scaleplan:environment": "prod"},
            "instanceTypes": ["g5.xlarge"],
            "capacityType": "SPOT",
            "scalingConfig": {"minSize": 0, "maxSize": 4},
        },
        urn="urn:x",
        name="spot",
        opts=None,  # type: ignore[arg-type]
        provider=None,
        parent=None,
        dependencies=[],
        property_dependencies={},
    )
    reported: list[str] = []
    stack_policy.validate(
        pulumi_policy.StackValidationArgs(resources=[spot], config={}),
        lambda m, urn=None: reported.append(m),
    )  # type: ignore[attr-defined]
    assert reported == [
        "stack: "
        + guardrails.check_stack(
            [guardrails.ResourceView(spot.resource_type, "spot", spot.props)], "prod"
        )[0].message
    ]


def test_pack_name_and_policy_names() -> None:
    names = [p.name for p in build_policies()]
    assert PACK_NAME == "scaleplan-guardrails"
    assert names == [
        "required-tags",
        "bounds",
        "max-gpu-nodes",
        "no-public-endpoint",
        "encryption",
        "stack-rules",
    ]
