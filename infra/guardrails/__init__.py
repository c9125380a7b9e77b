"""Guardrails: pure validators over resources, stack settings and emitted policies.

The same functions run in three places, so a rule can never hold in one and not
in another:

1. the CrossGuard policy pack (`infra/policypack`), on `pulumi preview/up
   --policy-pack`, over each resource's properties and over the whole stack;
2. the unit tests, from the Pulumi mocks, on every resource the program builds;
3. the planner, before it emits a policy (`check_plan`) and on every live change
   it applies (`check_change`) (issue 11).

Resource properties are Pulumi's camelCase inputs (what the engine, the mocks and
CrossGuard all see). Each rule returns `Violation`s with a message that says what
to change; an empty list means the resource passes.

`resources` holds the rules over resource properties (`exposure` those on what
the internet and pods can reach), `plans` those over stack settings, emitted
policies and live changes, `views` what they see and say; all are re-exported
here.
"""

from __future__ import annotations

from infra.guardrails.exposure import check_metadata, check_public, is_open_cidr
from infra.guardrails.plans import check_change, check_plan, check_settings, enforce_stack
from infra.guardrails.resources import (
    MAX_GPU_NODES,
    TAGGED_TYPES,
    check_bounds,
    check_encryption,
    check_gpu_budget,
    check_resource,
    check_stack,
    check_tags,
    format_violations,
    gpu_nodes_max,
    is_gpu_instance,
)
from infra.guardrails.views import ResourceView, Violation

__all__ = [
    "MAX_GPU_NODES",
    "TAGGED_TYPES",
    "ResourceView",
    "Violation",
    "check_bounds",
    "check_change",
    "check_encryption",
    "check_gpu_budget",
    "check_metadata",
    "check_plan",
    "check_public",
    "check_resource",
    "check_settings",
    "check_stack",
    "check_tags",
    "enforce_stack",
    "format_violations",
    "gpu_nodes_max",
    "is_gpu_instance",
    "is_open_cidr",
]
