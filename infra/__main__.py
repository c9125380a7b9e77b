"""The Pulumi program's entry point: read the stack config, build the stack.

This is the only place that reads Pulumi config. Structured values are read
with `require_object`/`get_object`, secrets with `require_secret`; everything is
validated into `StackSettings` before any resource exists.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.program import build_stack
from infra.settings import StackSettings
from infra.stack_file import (
    CONFIG_KEYS,
    REMOVED_KEYS,
    REQUIRED_KEYS,
    SCALAR_KEYS,
    settings_from_config,
)


def _read(cfg: pulumi.Config, key: str) -> Any:
    if key in SCALAR_KEYS:
        return cfg.require(key) if key in REQUIRED_KEYS else cfg.get(key)
    return cfg.require_object(key) if key in REQUIRED_KEYS else cfg.get_object(key)


def read_settings() -> tuple[StackSettings, pulumi.Output[str]]:
    """The validated settings of the current stack and its model-registry secret."""
    cfg = pulumi.Config("scaleplan")
    # Every key StackSettings knows, from the one list (stack_file.CONFIG_KEYS); required
    # keys go through `require*` so Pulumi itself names a missing one and the fix.
    values: dict[str, Any] = {key: _read(cfg, key) for key in CONFIG_KEYS}
    # A key this program no longer reads is named with the reason, not ignored.
    values.update({key: cfg.get(key) for key in REMOVED_KEYS if cfg.get(key) is not None})
    region = pulumi.Config("aws").require("region")
    stack = pulumi.get_stack()
    settings = settings_from_config(
        values,
        stack=stack,
        region=region,
        source=f"Pulumi.{stack}.yaml",
        project=pulumi.get_project(),
    )
    return settings, cfg.require_secret("modelToken")


def main() -> None:
    """Build the stack and export its outputs."""
    settings, model_token = read_settings()
    for key, value in build_stack(settings, model_token).items():
        pulumi.export(key, value)


# Pulumi runs this file with run_name "__main__"; importing `infra.__main__`
# (tests, tooling) creates nothing.
if __name__ == "__main__":
    main()
