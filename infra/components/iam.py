"""Small IAM helpers shared by the components: trust policies and managed attachments."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def service_trust(service: str) -> str:
    """An assume-role policy letting one AWS service (e.g. `eks.amazonaws.com`) use the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def irsa_trust(provider_arn: str, issuer: str, namespace: str, account: str) -> str:
    """Trust policy: only this service account's web identity tokens may assume the role."""
    host = issuer.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{host}:sub": f"system:serviceaccount:{namespace}:{account}",
                            f"{host}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )


def service_role(
    name: str,
    service: str,
    managed_policies: tuple[str, ...],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role for `service` with AWS managed policies (`arn:aws:iam::aws:policy/<name>`)."""
    role = aws.iam.Role(
        name,
        assume_role_policy=service_trust(service),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for policy in managed_policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=pulumi.ResourceOptions(parent=role),
        )
    return role
