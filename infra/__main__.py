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
from infra.stack_file import settings_from_config


def read_settings() -> tuple[StackSettings, pulumi.Output[str]]:
    """The validated settings of the current stack and its model-registry secret."""
    cfg = pulumi.Config("scaleplan")
    values: dict[str, Any] = {
        "environment": cfg.require("environment"),
        "owner": cfg.require("owner"),
        "costCenter": cfg.require("costCenter"),
        "network": cfg.require_object("network"),
        "cluster": cfg.get_object("cluster"),
        "gpuNodePools": cfg.require_object("gpuNodePools"),
        "karpenter": cfg.get_object("karpenter"),
        "addons": cfg.get_object("addons"),
        "service": cfg.require_object("service"),
        "asg": cfg.get_object("asg"),
        "serverless": cfg.get_object("serverless"),
        "retraining": cfg.require_object("retraining"),
        "bucket": cfg.get_object("bucket"),
        "scaling": cfg.get_object("scaling"),
    }
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
