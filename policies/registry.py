"""Policy names and kinds -> specs: presets, `bundle:PATH`, and `spec_from_dict` by kind.

Spec classes are imported lazily by dotted path, so a module that is missing or
broken (another engineer's, or an optional one) gives a `PolicyError` naming it
when that kind is asked for, and never breaks the rest of the registry.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policies.kinds import spec_class, spec_from_dict
from policies.spec import PolicySpecBase, validate_spec
from sim.errors import PolicyError

BUNDLE_PREFIX = "bundle:"
FIXED_PREFIX = "fixed:"
RL_PREFIX = "rl:"
_VERSION_DIR = re.compile(r"^v(\d+)$")
_MANIFEST = "bundle.json"


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
        return rl_spec_from_bundle(locate_bundle(Path(path)))
    if text.startswith(BUNDLE_PREFIX):
        from policies.bundle import read_bundle

        path = text[len(BUNDLE_PREFIX) :]
        if not path:
            raise PolicyError("'bundle:' needs a path, e.g. bundle:bundles/hpa/v1")
        located = locate_bundle(Path(path))
        spec = read_bundle(located).spec
        if spec.kind == "rl":  # a learned policy loads its model from its bundle
            from policies.rl import rl_spec_from_bundle

            return rl_spec_from_bundle(located)
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
            f"unknown policy {text!r}{did_you_mean(text)}; known: "
            f"{', '.join(list_presets())}, fixed:N, bundle:PATH, rl:PATH "
            "(`planner policies` lists them)"
        )
    return factory()


def did_you_mean(text: str) -> str:
    """`: did you mean 'hpa'?` for the closest preset name, or '' when none is close."""
    close = difflib.get_close_matches(text.lower(), list_presets(), n=1, cutoff=0.6)
    if not close and text.lower().startswith("fix"):
        close = ["fixed:N"]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _versions(folder: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _VERSION_DIR.match(p.name))]
    return sorted(v for v in found if v[1].is_dir())


def locate_bundle(path: Path) -> Path:
    """The bundle directory a `bundle:PATH` names: the path itself, or the latest version.

    `planner tune --out ROOT` writes `ROOT/<name>/v<N>`; `bundle:ROOT/<name>/v<N>`,
    `bundle:ROOT/<name>` (its highest v<N>) and `bundle:ROOT` (when ROOT holds one
    bundle name) all resolve. Archives and bundle directories are returned as given.

    Raises:
        PolicyError: ROOT holds several bundle names (the message lists them).
    """
    if not path.is_dir() or (path / _MANIFEST).is_file():
        return path
    versions = _versions(path)
    if versions:
        return versions[-1][1]
    named = [child for child in sorted(path.iterdir()) if child.is_dir() and _versions(child)]
    if len(named) == 1:
        return _versions(named[0])[-1][1]
    if len(named) > 1:
        choices = ", ".join(f"bundle:{child}" for child in named)
        raise PolicyError(f"{path} holds several bundles; name one: {choices}")
    return path
