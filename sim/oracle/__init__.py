"""The offline optimum (oracle): DP over capacity and carried backlog, future known.

`planner/oracle.py` calls `solve_oracle`, replays its schedule in the engine that
reports it and hands that engine nothing but the schedule
(`OracleResult.replay_policy`), so no policy on the decision path ever sees the future.
"""

from __future__ import annotations

from sim.oracle.problem import Problem, build_problem
from sim.oracle.solve import OracleResult, solve_oracle

__all__ = ["OracleResult", "Problem", "build_problem", "solve_oracle"]
