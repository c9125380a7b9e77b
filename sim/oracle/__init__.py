"""The offline optimum (oracle): DP over capacity levels with the future known.

`planner/oracle.py` calls `solve_oracle` and hands an engine nothing but its
schedule (`OracleResult.replay_policy`), so no policy on the decision path ever
sees the future.
"""

from __future__ import annotations

from sim.oracle.solve import OracleMode, OracleResult, solve_oracle

__all__ = ["OracleMode", "OracleResult", "solve_oracle"]
