"""A learned policy as a bundle: the model, its spec and what it was trained under.

`planner train` and the retraining job's RL challenger write the same kind of
bundle; what a later run needs to load the model (the observation layout, the
action mode and factors) and to reproduce it (window, hyperparameters, package
versions) is recorded the same way for both.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from planner.train.config import TrainConfig
from planner.train.learn import make_spec
from policies.bundle import TrainingWindow
from sim.gym.observation import FEATURES, LAYOUT_VERSION

#: Packages recorded beside the bundle's defaults: a model loads only with these.
RECORDED_EXTRA = ("torch", "gymnasium", "stable-baselines3", "numba")


def write_learned_bundle(
    config: TrainConfig,
    name: str,
    root: Path,
    *,
    model_zip: bytes,
    window: TrainingWindow,
    created_at: datetime,
    fitted: dict[str, Any],
    scores: dict[str, Any] | None = None,
) -> Path:
    """Write the model as `root/<name>/v<N>` (never overwriting); `fitted` adds to the record."""
    from policies.bundle import (
        RECORDED_PACKAGES,
        PolicyBundle,
        collect_versions,
        next_version,
        write_bundle,
    )
    from policies.rl import MODEL_FILE

    bundle = PolicyBundle(
        name=name,
        version=next_version(root, name),
        spec=make_spec(config, name),
        fitted_params={
            "algo": config.algo,
            **fitted,
            "layout_version": LAYOUT_VERSION,
            "observation_features": list(FEATURES),
            "action_mode": config.action_mode,
            "floor_mode": config.floor_mode,
            "factors": list(config.factors),
            "nudges": list(config.actions.nudges),
            "episode_h": config.episode_h,
            "level_range": list(config.level_range),
            "reward_weights": vars(config.weights),
            "hyperparameters": config.hyperparameters,
        },
        training_window=window,
        scores=scores or {},
        versions=collect_versions(RECORDED_PACKAGES + RECORDED_EXTRA),
        created_at=created_at,
        files={MODEL_FILE: model_zip},
    )
    return write_bundle(bundle, root)
