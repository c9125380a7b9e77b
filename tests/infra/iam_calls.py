"""AWS calls as IAM sees them, and a small evaluator of an Allow-only policy document.

Shared by the retraining job's tests: a call is its IAM action, the resource ARN it
names and the condition keys it sets (`s3:prefix` of a listing); `allows` checks
resource patterns and `StringLike` / `StringEquals` conditions, and fails loudly
on any other condition operator rather than guess.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

#: botocore service id -> IAM service prefix.
IAM_PREFIX = {"S3": "s3", "CloudWatch": "cloudwatch"}
#: Operations whose IAM action has another name (Service Authorization Reference).
IAM_ACTION = {"s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}
#: What S3 asks KMS for on the caller's behalf with an SSE-KMS bucket key: a data key
#: to write, a decrypt to read.
SSE_KMS_ACTIONS = {"kms:GenerateDataKey", "kms:Decrypt"}


@dataclass(frozen=True)
class Call:
    """One AWS call as IAM evaluates it."""

    action: str
    resource: str
    #: Condition keys the request sets (`s3:prefix` of a listing).
    context: tuple[tuple[str, str], ...] = ()
    #: A conditional put's precondition (`IfNoneMatch`, `IfMatch`), for the record.
    precondition: str | None = None


def as_call(service_id: str, operation: str, params: dict[str, Any]) -> Call:
    """The IAM view of one operation with its API parameters."""
    action = f"{IAM_PREFIX[service_id]}:{operation}"
    action = IAM_ACTION.get(action, action)
    if service_id != "S3":
        return Call(action, "*")  # CloudWatch's GetMetricData takes no resource
    bucket = params["Bucket"]
    if "Key" not in params:
        return Call(action, f"arn:aws:s3:::{bucket}", (("s3:prefix", params.get("Prefix", "")),))
    precondition = next((k for k in ("IfNoneMatch", "IfMatch") if k in params), None)
    return Call(action, f"arn:aws:s3:::{bucket}/{params['Key']}", precondition=precondition)


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """StringLike / StringEquals on the keys a call sets; any other operator fails loudly."""
    for operator, keys in condition.items():
        if operator not in ("StringLike", "StringEquals"):
            raise AssertionError(f"condition operator {operator} is not evaluated here")
        for key, patterns in keys.items():
            if key not in context:
                return False
            value = context[key]
            match = fnmatch.fnmatchcase if operator == "StringLike" else str.__eq__
            if not any(match(value, p) for p in listed(patterns)):
                return False
    return True


def allows(policy: dict[str, Any], call: Call) -> bool:
    """Whether an Allow statement grants `call` (no Deny statements exist here)."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        if call.action not in listed(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(call.resource, r) for r in listed(statement["Resource"])):
            continue
        if _conditions_hold(statement.get("Condition", {}), dict(call.context)):
            return True
    return False
