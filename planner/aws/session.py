"""One AWS connection: region, optional endpoint URL, retries, credential checks.

botocore's own retry handler ("standard" mode: exponential backoff with jitter on
throttling and transient errors) is configured here for every client; the
ordered apply plan adds its own retry around each step (`planner.aws.retry`).
Credentials are never read into scaleplan's own objects: boto3's provider chain
finds them, and only the caller's ARN is kept (for the audit trail).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.errors import UserInputError

#: botocore retry attempts (first call included) per API call, standard mode.
BOTOCORE_MAX_ATTEMPTS = 6


class AwsCredentialsError(UserInputError):
    """Credentials are missing, invalid or refused."""


@dataclass
class AwsConnection:
    """boto3 clients for one region (and, in tests, one endpoint).

    Args:
        region: AWS region, e.g. `us-east-1`.
        endpoint_url: Send every call here instead of AWS (a moto server, LocalStack).
        max_attempts: botocore attempts per call.
    """

    region: str
    endpoint_url: str | None = None
    max_attempts: int = BOTOCORE_MAX_ATTEMPTS
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session(region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        """A cached boto3 client for `service` with the retry configuration."""
        if service not in self._clients:
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": self.max_attempts},
                connect_timeout=10,
                read_timeout=30,
            )
            self._clients[service] = self.session().client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        return self._clients[service]

    def caller(self) -> str:
        """The caller's ARN, after checking that credentials exist and are accepted.

        Raises:
            AwsCredentialsError: No credentials in the provider chain, or AWS refused them.
        """
        from botocore.exceptions import ClientError, NoCredentialsError

        if self.session().get_credentials() is None:
            raise AwsCredentialsError(
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run on a role (instance profile, IRSA); "
                "nothing was changed"
            )
        try:
            identity = self.client("sts").get_caller_identity()
        except NoCredentialsError:
            raise AwsCredentialsError(
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY; nothing was changed"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise AwsCredentialsError(
                f"AWS refused the credentials ({code}): check AWS_PROFILE or the access key "
                "pair, and that the key is active; nothing was changed"
            ) from None
        arn: str = identity["Arn"]
        return arn


def check_region(stack_region: str, given: str | None, stack_file: str) -> str:
    """The region to act in: the stack's `aws:region`, which `--region` must match.

    Raises:
        UserInputError: `--region` names another region than the stack file.
    """
    if given is not None and given != stack_region:
        raise UserInputError(
            f"--region {given} does not match aws:region {stack_region} in {stack_file}; "
            "drop --region or fix the stack file (applying a stack's policy to another "
            "region would change the wrong resources); nothing was changed"
        )
    return stack_region


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
