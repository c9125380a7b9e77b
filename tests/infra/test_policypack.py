"""The CrossGuard pack calls the same validators as the mocks and the planner."""

from __future__ import annotations

from typing import Any

import pulumi_policy

from infra import guardrails
from infra.policypack.policies import PACK_NAME, build_policies, environment_of

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
        "imds",
        "stack-rules",
    ]


def test_the_pack_as_the_cli_calls_it_over_grpc() -> None:
    """Drive the analyzer `PolicyPack` serves (its gRPC servicer) with a protobuf request.

    This is the path `pulumi preview --policy-pack` takes: properties arrive as
    a protobuf Struct, are deserialised by the SDK and wrapped so that values
    unknown during preview raise; the pack must report violations and turn
    unknowns into advisory diagnostics, not crash.
    """
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime import proto
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer(
        PACK_NAME, "0.0.1", build_policies(), pulumi_policy.EnforcementLevel.MANDATORY
    )

    def analyze(props: dict[str, Any]) -> list[tuple[str, str, int]]:
        struct = struct_pb2.Struct()
        json_format.ParseDict(props, struct)
        request = proto.AnalyzeRequest(
            type="aws:eks/nodeGroup:NodeGroup", properties=struct, urn="urn:ng", name="ng"
        )
        response = servicer.Analyze(request, None)
        # A diagnostic's message is the policy description, a newline, then ours.
        return [
            (d.policyName, d.message.splitlines()[-1], d.enforcementLevel)
            for d in response.diagnostics
        ]

    tags = {"owner": "ml", "scaleplan:environment": "dev"}
    found = analyze(
        {
            "tags": tags,
            "instanceTypes": ["g5.xlarge"],
            "scalingConfig": {"minSize": 0, "maxSize": 9},
        }
    )
    mandatory = 1  # proto EnforcementLevel.MANDATORY
    assert found == [
        ("required-tags", "missing tag(s) scaleplan:stack, cost-center", mandatory),
        ("max-gpu-nodes", "max size 9 exceeds the dev limit of 4 GPU nodes", mandatory),
    ]
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's "unknown during preview" sentinel
    full_tags = {**tags, "scaleplan:stack": "dev", "cost-center": "cc"}
    preview = analyze(
        {
            "tags": full_tags,
            "instanceTypes": ["g5.xlarge"],
            "scalingConfig": {"minSize": 0, "maxSize": unknown},
        }
    )
    assert {name for name, _, _ in preview} == {"bounds", "max-gpu-nodes"}
    assert all("can't be known during preview" in m and level == 0 for _, m, level in preview)
