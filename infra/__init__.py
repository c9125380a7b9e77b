"""The Pulumi program: settings, one component per unit, guardrails, CrossGuard pack.

`infra/__main__.py` is the entry point `pulumi up` runs; `infra.program.build_stack`
builds a stack from validated `infra.settings.StackSettings`; `infra.guardrails`
holds the pure validators shared with the policy pack and the planner.
Nothing here creates a resource at import time.
"""
