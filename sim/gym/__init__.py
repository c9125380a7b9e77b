"""The Gymnasium environment: `scaleplan/Cluster-v0` steps the shared control loop.

Importing this package registers the env id (Gymnasium's convention, as its own
`gymnasium.envs` do); `make_cluster_env` builds one with the time limit applied by
`gymnasium.wrappers.TimeLimit`, as `gymnasium.make` does for a registered id.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sim.gym.observation import FEATURES, LAYOUT_VERSION

ENV_ID = "scaleplan/Cluster-v0"

if ENV_ID not in gym.registry:
    # No default max_episode_steps: the episode length is an argument, and
    # make_cluster_env / gym.make(..., max_episode_steps=N) give the matching limit.
    gym.register(id=ENV_ID, entry_point="sim.gym.env:ClusterEnv")


def make_cluster_env(**kwargs: Any) -> gym.Env[Any, Any]:
    """`gym.make(ENV_ID, ...)` truncated after one episode's decision intervals.

    Takes `ClusterEnv`'s arguments by keyword.
    """
    from sim.gym.env import HOUR_S

    scenario = kwargs["scenario"]
    steps = int(kwargs.get("episode_s", 6 * HOUR_S) // scenario.decision_interval_s)
    return gym.make(ENV_ID, max_episode_steps=steps, **kwargs)


__all__ = ["ENV_ID", "FEATURES", "LAYOUT_VERSION", "make_cluster_env"]
