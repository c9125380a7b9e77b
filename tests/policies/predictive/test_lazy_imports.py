"""Heavy libraries load when a policy uses them, not when the packages are imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Imported on every `planner` start, and by building any policy from the registry.
ENTRY_MODULES = ("sim", "policies", "planner.cli", "policies.registry", "policies.predictive")
#: Seconds each at import; only the code that fits, tunes, fans out, plots or compiles
#: (the fluid engine) needs them.
HEAVY = ("statsmodels", "optuna", "ray", "matplotlib", "numba")

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_packages_loads_no_heavy_library() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {ENTRY_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
