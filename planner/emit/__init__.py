"""`planner emit`: compile a policy bundle into a stack's `scaleplan:scaling` block.

`target` reads what a stack can scale (pools, bounds, cluster version) from its
`Pulumi.<stack>.yaml`; `compile` turns a bundle into `policies.stack_config.StackScaling`
using native constructs where the platform has one (`native`) and a precomputed
48 h capacity schedule where none can express the policy (`schedule`); `stack_file`
writes the block back into the YAML file keeping every other key and comment;
`manifests` renders the Kubernetes objects the block becomes; `commands` is the CLI.
"""
