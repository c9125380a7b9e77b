"""`planner apply`: an emitted policy reaches the live stack, diffed, guarded and audited.

`plan` holds the resource-neutral diff and the ordered, all-or-nothing executor;
`intent` turns a `policies.stack_config.StackScaling` into the desired state of
each live resource; `audit` is the append-only trail; `manifests` renders the
Kubernetes autoscalers for GitOps; `service` runs the whole apply; `shadow`
scores a shadow run; `commands` is the CLI.
"""
