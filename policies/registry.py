"""Policy names and kinds -> specs: presets, `bundle:PATH`, and `spec_from_dict` by kind.

Spec classes are imported lazily by dotted path, so a module that is missing or
broken (another engineer's, or an optional one) gives a `PolicyError` naming it
when that kind is asked for, and never breaks the rest of the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from policies.kinds import spec_class, spec_from_dict
from policies.spec import PolicySpecBase, validate_spec
from sim.errors import PolicyError

BUNDLE_PREFIX = "bundle:"
FIXED_PREFIX = "fixed:"
RL_PREFIX = "rl:"


def _default(kind: str, **params: Any) -> Callable[[], PolicySpecBase]:
    def make() -> PolicySpecBase:
        return validate_spec(spec_class(kind), {"kind": kind, **params}, f"preset {kind!r}")

    return make


def _scheduled_preset() -> PolicySpecBase:
    return spec_from_dict(
        {
            "kind": "scheduled",
            "name": "scheduled",
            "entries": [
                {
                    "name": "business-hours",
                    "cron": "0 9 * * MON-FRI",
                    "timezone": "UTC",
                    "duration_s": 9 * 3600.0,
                    "min_replicas": 2,
                },
                {
                    "name": "saturday-batch",
                    "cron": "0 2 * * SAT",
                    "timezone": "UTC",
                    "duration_s": 4 * 3600.0,
                    "desired": 4,
                },
            ],
            "inner": {"kind": "hpa", "target": 0.7},
        },
        source="preset 'scheduled'",
    )


#: Preset name -> factory of its spec (a fresh, validated spec on every call).
PRESETS: dict[str, Callable[[], PolicySpecBase]] = {
    "hpa": _default("hpa", target=0.7),
    "aws-target-tracking": _default("aws-target-tracking"),
    "threshold": _default("threshold"),
    "step": _default("step"),
    "scheduled": _scheduled_preset,
    "predictive": _default("predictive"),
    "anomaly": _default("anomaly"),
    "spillover": _default("spillover"),
    "fixed": _default("fixed"),
}


def list_presets() -> list[str]:
    """Preset names, in the order they are documented."""
    return list(PRESETS)


def resolve(name: str) -> PolicySpecBase:
    """The spec a policy name stands for.

    Accepts a preset (`hpa`, `threshold`, ...), `fixed:N` (a fleet of N replicas)
    and `bundle:PATH` (the spec of a policy bundle directory or `.tar.gz`).

    Raises:
        PolicyError: Unknown name (the message lists the known ones), an
            unreadable bundle, or a preset whose module is unavailable.
    """
    text = name.strip()
    if text.startswith(RL_PREFIX):
        from policies.rl import rl_spec_from_bundle

        path = text[len(RL_PREFIX) :]
        if not path:
            raise PolicyError("'rl:' needs a path, e.g. rl:bundles/rl-ppo/v1")
        return rl_spec_from_bundle(Path(path))
    if text.startswith(BUNDLE_PREFIX):
        from policies.bundle import read_bundle

        path = text[len(BUNDLE_PREFIX) :]
        if not path:
            raise PolicyError("'bundle:' needs a path, e.g. bundle:bundles/hpa/v1")
        spec = read_bundle(Path(path)).spec
        if spec.kind == "rl":  # a learned policy loads its model from its bundle
            from policies.rl import rl_spec_from_bundle

            return rl_spec_from_bundle(Path(path))
        return spec
    if text.startswith(FIXED_PREFIX):
        count = text[len(FIXED_PREFIX) :]
        if not count.isdigit():
            raise PolicyError(f"{text!r}: 'fixed:N' needs a whole number of replicas, e.g. fixed:8")
        return validate_spec(
            spec_class("fixed"), {"kind": "fixed", "replicas": int(count), "name": text}, text
        )
    factory = PRESETS.get(text)
    if text == "oracle":
        raise PolicyError(
            "'oracle' is the offline optimum that every run reports as its reference "
            "(the last row, and each policy's 'vs oracle'); it is not a policy to run: "
            "leave it out of --policies"
        )
    if factory is None:
        raise PolicyError(
            f"unknown policy {text!r}; known: {', '.join(list_presets())}, fixed:N, "
            "bundle:PATH, rl:PATH"
        )
    return factory()
