"""What the guardrail rules see and say: a resource view and a violation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Violation:
    """One broken rule on one resource (or on the stack as a whole)."""

    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True)
class ResourceView:
    """A resource as the rules see it: type token, logical name, camelCase properties."""

    type: str
    name: str
    props: Mapping[str, Any]
