"""The CrossGuard policy pack: `pulumi preview --policy-pack infra/policypack`."""
