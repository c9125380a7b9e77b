"""The engines by name: what `--engine` accepts.

Apart from `sim.engine` (the contract the engines implement and import), so the
registry can import the engines without a cycle.
"""

from __future__ import annotations

from typing import Literal

from sim.engine import Engine
from sim.errors import ScenarioError

EngineName = Literal["fluid", "des"]
ENGINES: tuple[EngineName, ...] = ("fluid", "des")


def make_engine(name: str) -> Engine:
    """The engine a `--engine` flag names (imported lazily: each pulls in numba or SimPy).

    Raises:
        ScenarioError: `name` is not an engine.
    """
    if name == "fluid":
        from sim.fluid import FluidEngine

        return FluidEngine()
    if name == "des":
        from sim.des import DesEngine

        return DesEngine()
    raise ScenarioError(f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")
