"""Policy kinds -> spec classes, and validating a parsed spec by its `kind`.

Spec classes are imported lazily by dotted path, so a module that is missing or
broken gives a `PolicyError` naming it when that kind is asked for, and never
breaks the rest. Bundles and composite specs (scheduled, spillover) read nested
specs through `spec_from_dict`; the registry of names builds on this module.
"""

from __future__ import annotations

import importlib
from typing import Any

from policies.spec import SCHEMA_VERSION, PolicySpecBase, validate_spec
from sim.errors import PolicyError

#: kind -> "module:Class" of its spec.
SPEC_CLASSES: dict[str, str] = {
    "fixed": "policies.spec:FixedSpec",
    "hpa": "policies.hpa:HpaSpec",
    "aws-target-tracking": "policies.aws_target_tracking:AwsTargetTrackingSpec",
    "threshold": "policies.threshold:ThresholdSpec",
    "step": "policies.step:StepSpec",
    "scheduled": "policies.scheduled:ScheduledSpec",
    "predictive": "policies.predictive:PredictiveSpec",
    "anomaly": "policies.anomaly:AnomalySpec",
    "spillover": "policies.spillover:SpilloverSpec",
    "rl": "policies.rl:RlSpec",
}


def spec_class(kind: str) -> type[PolicySpecBase]:
    """The spec class of a policy kind, imported on first use.

    Raises:
        PolicyError: The kind is unknown, or its module cannot be imported.
    """
    target = SPEC_CLASSES.get(kind)
    if target is None:
        raise PolicyError(
            f"unknown policy kind {kind!r}; known kinds: {', '.join(sorted(SPEC_CLASSES))}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PolicyError(
            f"policy kind {kind!r} needs module {module_name} which cannot be imported ({exc}); "
            "check that scaleplan is fully installed"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, PolicySpecBase)):
        raise PolicyError(
            f"policy kind {kind!r}: {target} is not a PolicySpecBase subclass in this install"
        )
    return cls


def spec_from_dict(data: Any, source: str = "policy spec") -> PolicySpecBase:
    """Validate a parsed spec mapping into the spec class its `kind` names.

    Raises:
        PolicyError: Not a mapping, no/unknown kind, a newer schema_version, or an
            invalid field (each named with pydantic's message).
    """
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping with a 'kind', got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise PolicyError(
            f"{source}: missing 'kind'; set it to one of {', '.join(sorted(SPEC_CLASSES))}"
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise PolicyError(
            f"{source}: spec schema_version {version!r} is not supported; this scaleplan "
            f"reads schema_version {SCHEMA_VERSION} (re-create the spec or upgrade scaleplan)"
        )
    return validate_spec(spec_class(kind), data, source)


__all__ = ["SPEC_CLASSES", "spec_class", "spec_from_dict"]
