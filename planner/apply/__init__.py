"""`planner apply`: an emitted policy reaches the live stack, diffed, guarded and audited.

`plan` holds the resource-neutral diff and the ordered, all-or-nothing executor;
`intent` turns a `policies.stack_config.StackScaling` into the desired state of
each live resource; `inputs` loads that policy (a bundle through `planner emit`'s
compiler, or a stack file's block); `service` runs one apply; `audit` is the
append-only trail; `manifests` writes the Kubernetes autoscalers for GitOps;
`pulumi_route` is `--via pulumi`. The CLI: `commands` (apply, rollback),
`control_commands` (control, shadow-report), `options` (their shared flags).
"""
