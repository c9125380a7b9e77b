"""What every benchmark's JSON line says about the machine and the packages it ran with."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from importlib.metadata import version
from typing import Any


def machine(packages: Iterable[str]) -> dict[str, Any]:
    """The core count, the Python version and each of `packages`' installed version."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in packages},
    }
