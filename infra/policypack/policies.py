"""CrossGuard policies that call `infra.guardrails`: one rule family per policy.

Resource policies see each resource's inputs; the stack policy sees every
resource's outputs, for the rules that span resources (GPU budget, spot-only
prod, buckets without encryption or public-access block). The environment
comes from the pack config (`environment`), else from the resource's
`scaleplan:environment` tag, else the strictest (`prod`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import guardrails
from infra.guardrails import ResourceView, Violation

PACK_NAME = "scaleplan-guardrails"

_Rule = Callable[[ResourceView, str], list[Violation]]

#: Resource rule families: (policy name, description, rule).
RESOURCE_RULES: tuple[tuple[str, str, _Rule], ...] = (
    (
        "required-tags",
        "AWS resources carry scaleplan:stack, owner, cost-center",
        lambda v, env: guardrails.check_tags(v),
    ),
    (
        "bounds",
        "min <= desired <= max on node groups, ASGs, targets, HPAs",
        lambda v, env: guardrails.check_bounds(v),
    ),
    (
        "max-gpu-nodes",
        "no pool exceeds the environment's GPU node budget",
        guardrails.check_gpu_budget,
    ),
    (
        "no-public-endpoint",
        "no API endpoint, instance, subnet or bucket open to the internet",
        lambda v, env: guardrails.check_public(v),
    ),
    (
        "encryption",
        "encryption at rest on buckets, volumes and cluster secrets",
        lambda v, env: guardrails.check_encryption(v),
    ),
    (
        "imds",
        "IMDSv2 with a hop limit of 1 on node launch templates",
        lambda v, env: guardrails.check_metadata(v),
    ),
)


def tagged_environment(props: Mapping[str, Any]) -> str | None:
    """The `scaleplan:environment` tag of a resource, if it has one."""
    tags = props.get("tags")
    if isinstance(tags, Mapping) and isinstance(tags.get("scaleplan:environment"), str):
        return str(tags["scaleplan:environment"])
    if isinstance(tags, list):  # ASG tags are a list of {key, value}
        for tag in tags:
            if isinstance(tag, Mapping) and tag.get("key") == "scaleplan:environment":
                return str(tag.get("value"))
    return None


def environment_of(config: Mapping[str, Any], props: Mapping[str, Any]) -> str:
    """The environment a resource belongs to (see the module docstring)."""
    configured = config.get("environment")
    if isinstance(configured, str):
        return configured
    return tagged_environment(props) or "prod"


def _resource_validator(
    rule: _Rule,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        view = ResourceView(args.resource_type, args.name, args.props)
        for violation in rule(view, environment_of(args.get_config(), args.props)):
            report(violation.message, args.urn)

    return validate


def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
    """The whole-stack rules of `infra.guardrails.check_stack`."""
    views = [ResourceView(r.resource_type, r.name, r.props) for r in args.resources]
    tagged = (tagged_environment(r.props) for r in args.resources)
    found = next((env for env in tagged if env is not None), None)
    configured = args.get_config().get("environment")
    environment = configured if isinstance(configured, str) else (found or "prod")
    for violation in guardrails.check_stack(views, environment):
        report(f"{violation.resource}: {violation.message}", None)


def build_policies() -> list[Policy]:
    """Every policy of the pack, built fresh (no state kept between runs)."""
    policies: list[Policy] = [
        ResourceValidationPolicy(
            name=name, description=description, validate=_resource_validator(rule)
        )
        for name, description, rule in RESOURCE_RULES
    ]
    policies.append(
        StackValidationPolicy(
            name="stack-rules",
            description="GPU budget over all pools, on-demand capacity in prod, protected buckets",
            validate=validate_stack,
        )
    )
    return policies
