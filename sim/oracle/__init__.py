"""The offline optimum (oracle): DP over capacity levels with the future known."""

from __future__ import annotations

from sim.oracle.policy import OraclePolicy, OracleSpec
from sim.oracle.solve import OracleMode, OracleResult, solve_oracle

__all__ = ["OracleMode", "OraclePolicy", "OracleResult", "OracleSpec", "solve_oracle"]
