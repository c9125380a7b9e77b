"""The SimPy request-level engine (`des`): the reference for fidelity."""

from __future__ import annotations

from sim.des.engine import DesEngine, DesRun, PoolStats, RequestRecord
from sim.des.eventlog import LogEntry

__all__ = ["DesEngine", "DesRun", "LogEntry", "PoolStats", "RequestRecord"]
