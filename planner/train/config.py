"""The values a training run is described by (small, frozen, picklable: they ship to Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies.spec import PolicySpecBase
from sim.gym.actions import (
    DEFAULT_ACTION_MODE,
    DEFAULT_FLOOR_MODE,
    DEFAULT_FLOOR_UTILISATION,
    ActionMap,
    ActionMode,
    FloorMode,
    default_factors,
    default_nudges,
)
from sim.gym.env import RewardWeights
from sim.scenario import Scenario

ALGOS: tuple[str, ...] = ("ppo", "dqn")
BASES: tuple[str, ...] = ("predictive", "threshold", "hpa")
HOUR_S = 3600.0
#: Parallel environments PPO collects from (SB3's DummyVecEnv, one process): more
#: episodes, offsets and levels in every rollout, for the same step budget.
PPO_N_ENVS = 4


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        algo: `ppo` or `dqn`.
        timesteps: Env steps (decision intervals) of training per seed.
        base: Registry name of the base policy the model adjusts.
        base_spec: A base policy spec used instead of `base` (e.g. parameters
            `planner retrain` tuned); None resolves `base`.
        tune_base: Tune the base family on the fitting window first (as the threshold
            baseline is calibrated) and train on the tuned base: the agent then
            starts from the best heuristic of its family, not from the preset.
        action_mode: `residual-change` (adjust the base's change; the default),
            `residual` (scale the base's proposed level: compounds while the base
            holds, issue 10) or `absolute` (`sim.gym.actions`).
        factors: The discrete actions' multipliers; empty: the mode's defaults.
        nudges: `residual-change`'s nudges (shares of the demand's need); None:
            the mode's defaults (none outside `residual-change`).
        episode_h: Hours of traffic per episode.
        level_range: Random level factor range of an episode's traffic.
        floor_utilisation: Reactive safety floor sizing; None disables it.
        floor_mode: `release` (default) or `hold` (`sim.gym.actions.FloorMode`).
        weights: Reward weights.
        history_h: Hours of traffic before each episode handed to the base policy
            (forecasters fit on it); 0 hands none.
        hyperparameters: Overrides of the algorithm's keyword arguments.
        checkpoints: Times during training the model is scored on the validation
            window (evenly spaced, besides before training and at the end); the best
            scored, not the last, is kept (`planner.train.learn`). 0 keeps the last.
    """

    algo: str
    timesteps: int
    base: str = "threshold"
    action_mode: ActionMode = DEFAULT_ACTION_MODE
    factors: tuple[float, ...] = ()
    nudges: tuple[float, ...] | None = None
    episode_h: float = 6.0
    level_range: tuple[float, float] = (0.8, 1.25)
    floor_utilisation: float | None = DEFAULT_FLOOR_UTILISATION
    floor_mode: FloorMode = DEFAULT_FLOOR_MODE
    weights: RewardWeights = field(default_factory=RewardWeights)
    history_h: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    base_spec: PolicySpecBase | None = None
    tune_base: bool = False
    #: Stop training after this many wall-clock seconds (benchmarks with a time
    #: budget); None trains `timesteps`. A stop by the clock is not reproducible.
    max_train_s: float | None = None
    checkpoints: int = 4

    def __post_init__(self) -> None:
        # the mode's defaults are filled in here, so the config (and the bundle and
        # the warm-start check reading it) always names the actions it trains with
        if not self.factors:
            object.__setattr__(self, "factors", default_factors(self.action_mode))
        if self.nudges is None:
            object.__setattr__(self, "nudges", default_nudges(self.action_mode))
        self.actions  # noqa: B018  (raises ValueError for factors or nudges the mode rejects)
        if self.checkpoints < 0:
            raise ValueError(f"checkpoints must be >= 0, got {self.checkpoints}")

    @property
    def actions(self) -> ActionMap:
        """The action map this config trains with."""
        return ActionMap(self.action_mode, tuple(self.factors), tuple(self.nudges or ()))


@dataclass(frozen=True)
class TrainJob:
    """One model to train: a seed, the training and validation windows, the config."""

    config: TrainConfig
    seed: int
    train_scenario: Scenario
    validation_scenario: Scenario
    #: The validation window's oracle cost: checkpoints rank by cost over it, as the
    #: pipeline ranks seeds (`planner.tune.objective_value`); None ranks by cost alone.
    validation_oracle_usd: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    """One validation score taken during training."""

    timesteps: int
    cost_usd: float
    attainment: float


@dataclass(frozen=True)
class TrainedModel:
    """A trained model (SB3's zip) and how it did on the validation window."""

    seed: int
    model_zip: bytes
    validation_cost_usd: float
    validation_attainment: float
    timesteps: int
    #: Every validation score taken while training, oldest first; `timesteps` is
    #: the kept one's.
    checkpoints: tuple[Checkpoint, ...] = ()
    trained_timesteps: int = 0
