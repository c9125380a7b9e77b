"""Importing the program's modules registers nothing (resources live in functions)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_infra_modules_creates_no_resource() -> None:
    # A fresh interpreter: mocks installed first, then every infra module
    # imported; the mocks would record any resource created at import time.
    script = textwrap.dedent(
        """
        import importlib, pkgutil
        import pulumi

        created = []

        class Recorder(pulumi.runtime.Mocks):
            def new_resource(self, args):
                created.append(args.typ)
                return [args.name + "-id", args.inputs]

            def call(self, args):
                created.append(args.token)
                return {}

        pulumi.runtime.set_mocks(Recorder(), preview=False)
        import importlib.util
        import infra
        has_policy_sdk = importlib.util.find_spec("pulumi_policy") is not None
        names = [
            m.name for m in pkgutil.walk_packages(infra.__path__, "infra.")
            if has_policy_sdk or not m.name.startswith("infra.policypack.")
        ]
        names.append("infra.__main__")
        for name in names:
            importlib.import_module(name)
        print(len(names), len(created))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    modules, created = (int(x) for x in result.stdout.split())
    assert modules >= 16
    assert created == 0
