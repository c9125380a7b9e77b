"""Pulumi stack config -> `StackSettings`: the key mapping and the stack-file reader.

The program's entry point (`infra/__main__.py`) reads the `scaleplan:*` keys with
Pulumi's typed getters and hands them to `settings_from_config`; tests, the
Automation API driver and the emit step (issue 11) read the same YAML with
`load_stack_file`. Both go through the same pydantic models (`infra.settings`).
No pulumi import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from infra.settings import StackSettings
from sim.errors import StackConfigError

#: `scaleplan:<key>` config keys -> StackSettings fields.
CONFIG_KEYS: dict[str, str] = {
    "environment": "environment",
    "owner": "owner",
    "costCenter": "cost_center",
    "network": "network",
    "cluster": "cluster",
    "gpuNodePools": "gpu_node_pools",
    "systemNodes": "system_nodes",
    "addons": "addons",
    "service": "service",
    "asg": "asg",
    "serverless": "serverless",
    "retraining": "retraining",
    "bucket": "bucket",
    "scaling": "scaling",
}

#: Keys this program no longer reads, and why (so an old stack file gets a reason).
REMOVED_KEYS: dict[str, str] = {
    "karpenter": (
        "Karpenter was removed: the cluster autoscaler scales the managed node groups "
        "(see docs/infra.md, 'Node autoscaling'); delete the key and size gpuNodePools instead"
    ),
}
#: Keys held as Pulumi secrets: read with `require_secret`, never put in StackSettings.
SECRET_KEYS: tuple[str, ...] = ("modelToken",)
#: Keys whose value is a plain string; every other key holds a structured object.
SCALAR_KEYS: frozenset[str] = frozenset({"environment", "owner", "costCenter"})
#: Keys a stack must set; the others have defaults in StackSettings.
REQUIRED_KEYS: frozenset[str] = frozenset(
    {"environment", "owner", "costCenter", "network", "gpuNodePools", "service", "retraining"}
)


def settings_from_config(
    config: Mapping[str, Any], *, stack: str, region: str, source: str, project: str = "scaleplan"
) -> StackSettings:
    """Validate `scaleplan:*` values (keys without the namespace) into StackSettings.

    Args:
        config: Config values by key (`environment`, `gpuNodePools`, ...); structured
            values already parsed (what `Config.require_object` returns).
        stack: The stack name (`dev`, `staging`, `prod`).
        region: `aws:region`.
        source: Where the values came from, for messages (e.g. `Pulumi.prod.yaml`).
        project: The Pulumi project name.

    Raises:
        StackConfigError: naming the file, the key and what to do.
    """
    removed = sorted(set(config) & set(REMOVED_KEYS))
    if removed:
        raise StackConfigError(
            f"{source}: " + "; ".join(f"scaleplan:{k}: {REMOVED_KEYS[k]}" for k in removed)
        )
    unknown = sorted(set(config) - set(CONFIG_KEYS) - set(SECRET_KEYS))
    if unknown:
        raise StackConfigError(
            f"{source}: unknown config key(s) {', '.join('scaleplan:' + k for k in unknown)}; "
            f"known keys: {', '.join('scaleplan:' + k for k in CONFIG_KEYS)}"
        )
    fields = {CONFIG_KEYS[k]: v for k, v in config.items() if k in CONFIG_KEYS and v is not None}
    fields.update(stack=stack, region=region, project=project)
    try:
        return StackSettings.model_validate(fields)
    except ValidationError as exc:
        inverse = {v: k for k, v in CONFIG_KEYS.items()}
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            head = f"scaleplan:{inverse[loc[0]]}" if loc and loc[0] in inverse else "scaleplan"
            where = ".".join([head, *loc[1:]]) if loc and loc[0] in inverse else ".".join(loc)
            lines.append(f"  {where or head}: {err['msg']}")
        raise StackConfigError(
            f"{source}: invalid stack config ({len(lines)} problem(s)); fix with "
            f"`pulumi config set` or by editing the file:\n" + "\n".join(lines)
        ) from None


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a `Pulumi.<stack>.yaml`, keys as written (`scaleplan:x`)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackConfigError(f"{path}: no such stack file; run `pulumi stack init`") from None
    except yaml.YAMLError as exc:
        raise StackConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise StackConfigError(f"{path}: expected a top-level `config:` mapping")
    config: dict[str, Any] = doc["config"]
    return config


def load_stack_file(path: Path, project: str = "scaleplan") -> StackSettings:
    """Validate a `Pulumi.<stack>.yaml` the way the program will (secrets not needed)."""
    raw = read_stack_file(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    region = raw.get("aws:region")
    if not isinstance(region, str):
        raise StackConfigError(
            f"{path}: missing aws:region; run `pulumi config set aws:region ...`"
        )
    prefix = f"{project}:"
    values = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    values = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    return settings_from_config(values, stack=stack, region=region, source=str(path))
