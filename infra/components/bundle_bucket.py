"""The S3 bucket for policy bundles: versioned, KMS-encrypted, private, TLS only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class BundleBucketArgs:
    """Inputs of `BundleBucket`.

    Attributes:
        tags: Tags on every resource.
        force_destroy: Let `pulumi destroy` delete a non-empty bucket (dev only).
        noncurrent_days: Days an overwritten bundle version is kept before expiry.
    """

    tags: dict[str, str] = field(default_factory=dict)
    force_destroy: bool = False
    noncurrent_days: int = 90


class BundleBucket(pulumi.ComponentResource):
    """Where the retraining job writes policy bundles and emit reads them (issues 13, 11).

    Versioning keeps every bundle ever promoted (bundles are never overwritten in
    place, and a rollback is a version away); SSE-KMS with a bucket key keeps KMS
    request costs low; all four public-access blocks are on; a bucket policy
    denies any request not made over TLS.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: BundleBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("scaleplan:infra:BundleBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-key",
            description="scaleplan policy bundles",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=args.tags,
            opts=child,
        )
        bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, tags=args.tags, opts=child)
        bucket_child = pulumi.ResourceOptions(parent=bucket)
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.bucket,
            versioning_configuration={"status": "Enabled"},
            opts=bucket_child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=bucket.bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=bucket_child,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-block",
            bucket=bucket.bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=bucket_child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=bucket_child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.bucket,
            rules=[
                {
                    "id": "expire-old-bundle-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
                }
            ],
            opts=bucket_child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.bucket,
            policy=bucket.arn.apply(_tls_only_policy),
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[block]),
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs(
            {"bucket_name": bucket.bucket, "bucket_arn": bucket.arn, "kms_key_arn": key.arn}
        )


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
