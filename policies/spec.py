"""Policy specs: the serialisable description of a policy (kind, parameters, version).

Every policy kind has a pydantic spec subclassing `PolicySpecBase`; `build()`
turns it into a live `Policy`. Specs round-trip through JSON and YAML, and carry
`schema_version` so a bundle written by an older release is recognised.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from policies.base import Policy

SCHEMA_VERSION = 1


class PolicySpecBase(BaseModel):
    """Base of every policy spec. Subclasses set `kind` as a Literal and implement build()."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    kind: str
    name: str | None = None

    #: True for references that need the future (the oracle); never deployable.
    clairvoyant: ClassVar[bool] = False

    def display_name(self) -> str:
        return self.name or self.kind

    def build(self) -> Policy:
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")
