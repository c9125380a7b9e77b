"""The fluid engine: per-second, compiled dynamics under the same policies as the DES."""

from __future__ import annotations

from sim.fluid.engine import FluidEngine, FluidSettings

__all__ = ["FluidEngine", "FluidSettings"]
