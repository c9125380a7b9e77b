"""Entry point the Pulumi CLI runs for `--policy-pack infra/policypack`.

Constructing a `PolicyPack` starts the analyzer server and blocks, so it only
happens when the CLI runs this file; importing it creates nothing.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policypack.policies import PACK_NAME, build_policies

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=build_policies(),
    )
