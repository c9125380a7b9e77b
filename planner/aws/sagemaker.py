"""A SageMaker serverless variant's provisioned concurrency behind `sim.contract.Actuator`.

A spillover policy (`policies.spillover`) sizes two targets: the GPU pool and the
provisioned concurrency of the serverless spillover endpoint (`SPILLOVER`). The
live controller drives this actuator for the second one, through the same control
loop and guardrails as the Auto Scaling group.

Which API sets it. Three could, and the controller calls the first:

- `UpdateEndpointWeightsAndCapacities` with
  `DesiredWeightsAndCapacities[].ServerlessUpdateConfig.ProvisionedConcurrency`
  changes that one value of a running variant in place, the analogue of the ASG's
  `SetDesiredCapacity`. SageMaker sets the endpoint `Updating` and back to
  `InService` when done; meanwhile `DescribeEndpoint` shows the requested value in
  `ProductionVariants[].DesiredServerlessConfig` and the one in force in
  `CurrentServerlessConfig`, and refuses another update. Only
  `ProvisionedConcurrency` is sent: `MaxConcurrency` stays what the stack deployed,
  and the value is checked against it first (the API: 1-200 and at most
  MaxConcurrency).
- Application Auto Scaling (dimension
  `sagemaker:variant:DesiredProvisionedConcurrency`) has no "set desired" call: a
  controller would re-register the scalable target with MinCapacity = MaxCapacity =
  the decision every interval (overwriting the bounds `planner apply` set) or write
  a one-shot scheduled action per change (minute resolution, applied later). It is
  the native construct for target tracking and schedules, and it calls
  `UpdateEndpointWeightsAndCapacities` itself. So a policy or scheduled action of
  its own on the same variant would fight the controller: `competing_scaling`
  lists them and active mode refuses to start while any exists.
- `UpdateEndpoint` with a new endpoint config re-deploys the variant (the developer
  guide warns of cold starts while SageMaker re-initialises the container): a
  configuration change, not a capacity step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner.aws.appscaling import DIMENSION, NAMESPACE, VARIANT, resource_id
from planner.aws.retry import with_backoff
from planner.aws.session import error_code
from sim.control import ActuationRecord

#: SageMaker's range for ProvisionedConcurrency (ProductionVariantServerlessUpdateConfig):
#: 1-200 and at most MaxConcurrency; an endpoint without any is changed by UpdateEndpoint.
MIN_PROVISIONED_CONCURRENCY = 1
IN_SERVICE = "InService"


class EndpointNotFound(LookupError):
    """The endpoint or its variant does not exist, or the variant is not serverless."""


@dataclass
class ServerlessVariantActuator:
    """Provisioned concurrency of one serverless variant (`AllTraffic`, as the stack deploys).

    `current` is the value last requested (`DesiredServerlessConfig`, equal to the one
    in force once the endpoint is `InService`), as an ASG's `DesiredCapacity` is;
    `refresh` reads the endpoint once per decision point. While the endpoint is not
    `InService`, `set_desired` calls nothing and says why in `held`.
    """

    client: Any
    endpoint: str
    variant: str = VARIANT
    on_change: Callable[[ActuationRecord], None] | None = None
    log: list[ActuationRecord] = field(default_factory=list)
    held: str | None = None
    _endpoint: dict[str, Any] | None = field(default=None, repr=False)
    _variant: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        """How the audit trail names this target."""
        return f"{self.endpoint}/{self.variant}"

    def refresh(self) -> dict[str, Any]:
        """Read the endpoint now; the variant's summary.

        Raises:
            EndpointNotFound: no such endpoint or variant, or the variant is not serverless.
        """
        try:
            described = with_backoff(
                lambda: self.client.describe_endpoint(EndpointName=self.endpoint)
            )
        except Exception as exc:
            if error_code(exc) == "ValidationException" and "find endpoint" in str(exc):
                missing = f"SageMaker endpoint {self.endpoint} does not exist"
                raise EndpointNotFound(missing) from None
            raise
        variants = {v["VariantName"]: v for v in described.get("ProductionVariants", [])}
        summary = variants.get(self.variant)
        if summary is None:
            raise EndpointNotFound(
                f"SageMaker endpoint {self.endpoint} has no variant {self.variant} "
                f"(variants: {', '.join(sorted(variants)) or 'none'})"
            )
        if "CurrentServerlessConfig" not in summary and "DesiredServerlessConfig" not in summary:
            raise EndpointNotFound(
                f"variant {self.target} is not serverless (no ServerlessConfig): its "
                "provisioned concurrency cannot be scaled"
            )
        self._endpoint, self._variant, self.held = described, summary, None
        return summary

    def _summary(self) -> dict[str, Any]:
        return self._variant if self._variant is not None else self.refresh()

    def _config(self) -> dict[str, Any]:
        summary = self._summary()
        config: dict[str, Any] = summary.get("DesiredServerlessConfig") or summary.get(
            "CurrentServerlessConfig", {}
        )
        return config

    def status(self) -> str:
        self._summary()
        assert self._endpoint is not None
        return str(self._endpoint.get("EndpointStatus", "Unknown"))

    def current(self) -> int:
        """Provisioned concurrency requested (0: none, an on-demand serverless endpoint)."""
        return int(self._config().get("ProvisionedConcurrency", 0))

    def in_force(self) -> int:
        """Provisioned concurrency in force now (`CurrentServerlessConfig`)."""
        config = self._summary().get("CurrentServerlessConfig", {})
        return int(config.get("ProvisionedConcurrency", 0))

    def max_concurrency(self) -> int:
        return int(self._config()["MaxConcurrency"])

    def bounds(self) -> tuple[int, int]:
        """SageMaker's range: 1 to the variant's MaxConcurrency."""
        return MIN_PROVISIONED_CONCURRENCY, self.max_concurrency()

    def set_desired(self, desired: int, reason: str, now_s: float) -> None:
        low, high = self.bounds()
        if not low <= desired <= high:
            raise ValueError(
                f"provisioned concurrency {desired} outside [{low}, {high}] of {self.target} "
                "(SageMaker: at least 1 and at most MaxConcurrency)"
            )
        status = self.status()
        previous = self.current()
        if status != IN_SERVICE:
            # SageMaker refuses an update while one is in progress; the next decision retries.
            self.held = (
                f"endpoint {self.endpoint} is {status}, not {IN_SERVICE}: kept provisioned "
                f"concurrency {previous} (wanted {desired})"
            )
            return
        with_backoff(
            lambda: self.client.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint,
                DesiredWeightsAndCapacities=[
                    {
                        "VariantName": self.variant,
                        "ServerlessUpdateConfig": {"ProvisionedConcurrency": desired},
                    }
                ],
            )
        )
        record = ActuationRecord(now_s, self.target, previous, desired, reason)
        self.log.append(record)
        # What SageMaker reports after the call, until the next refresh reads it.
        assert self._endpoint is not None and self._variant is not None
        self._endpoint = {**self._endpoint, "EndpointStatus": "Updating"}
        self._variant = {
            **self._variant,
            "DesiredServerlessConfig": {**self._config(), "ProvisionedConcurrency": desired},
        }
        if self.on_change is not None:
            self.on_change(record)


def competing_scaling(aas: Any, endpoint: str) -> list[str]:
    """Application Auto Scaling policies and scheduled actions that also set this
    variant's provisioned concurrency (they would undo the controller's changes)."""
    ids = {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": DIMENSION,
    }
    policies = with_backoff(lambda: aas.describe_scaling_policies(**ids))["ScalingPolicies"]
    actions = with_backoff(lambda: aas.describe_scheduled_actions(**ids))["ScheduledActions"]
    return [f"scaling policy {p['PolicyName']}" for p in policies] + [
        f"scheduled action {a['ScheduledActionName']}" for a in actions
    ]
