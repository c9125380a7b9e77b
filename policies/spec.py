"""Policy specs: the serialisable description of a policy (kind, parameters, version).

Every policy kind has a pydantic spec subclassing `PolicySpecBase`; `build()`
turns it into a live `Policy`. Specs round-trip through JSON and YAML, and carry
`schema_version` so a bundle written by an older release is recognised.

Any spec may carry a `hysteresis:` block; `build()` implementations return
`self.wrap(policy)` so the block, when present, damps the policy's output.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.hysteresis.config import HysteresisSpec
from sim.contract import Policy
from sim.errors import PolicyError
from sim.replay import FixedPolicy

SCHEMA_VERSION = 1


class PolicySpecBase(BaseModel):
    """Base of every policy spec. Subclasses set `kind` as a Literal and implement build()."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    kind: str
    name: str | None = None
    #: Optional dead band / stabilisation / rate limit / clamp around the policy.
    hysteresis: HysteresisSpec | None = None

    def display_name(self) -> str:
        return self.name or self.kind

    def fits_history(self) -> bool:
        """Whether the policy fits a forecast on `PolicyContext.history` at reset (so a
        live run should read demand history before its first decision)."""
        return False

    def history_needed_s(self) -> float:
        """Seconds of history its forecaster needs before it fits (0: none); with less
        the policy runs its reactive fallback, another policy than the one configured."""
        return 0.0

    def build(self) -> Policy:
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")

    def wrap(self, policy: Policy) -> Policy:
        """The policy wrapped in this spec's hysteresis stages, if it has any."""
        if self.hysteresis is None:
            return policy
        from policies.hysteresis.pipeline import Hysteresis

        return Hysteresis(policy, self.hysteresis, name=self.display_name())


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per invalid field: where it is, what is wrong (pydantic's message).

    The planner's shared formatter (`sim.scenario.format_validation`), imported
    only on the error path so loading a spec never loads the scenario schema.
    """
    from sim.scenario import format_validation

    return format_validation(error, source, "policy spec")


def validate_spec(cls: type[PolicySpecBase], data: Any, source: str) -> PolicySpecBase:
    """`cls.model_validate(data)`, with pydantic errors turned into a `PolicyError`."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, source)) from None


class FixedSpec(PolicySpecBase):
    """A statically provisioned fleet (`policies.base.FixedPolicy`).

    `replicas: null` provisions for peak: the pool's `max_replicas` (FixedPolicy
    clamps its constant to the observation's bounds).
    """

    kind: Literal["fixed"] = "fixed"
    replicas: int | None = Field(default=None, ge=0)

    def build(self) -> Policy:
        # An unbounded constant clamped by FixedPolicy to the pool's max: "provision for peak".
        replicas = self.replicas if self.replicas is not None else 2**31 - 1
        return self.wrap(FixedPolicy(replicas, name=self.display_name()))
