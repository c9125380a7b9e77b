"""Train one model (one seed) in `scaleplan/Cluster-v0` and score it on validation.

`train_model` is a module-level function taking one picklable `TrainJob`, so the
executors (local processes or Ray) can map it over seeds. torch, gymnasium and
stable-baselines3 are imported inside it.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

from planner.runs import engine_named, scenario_inputs
from planner.train.config import (
    HOUR_S,
    PPO_N_ENVS,
    Checkpoint,
    TrainConfig,
    TrainedModel,
    TrainJob,
)
from planner.tune import objective_value
from policies.registry import resolve
from policies.rl import LearnedPolicy, RlSpec
from sim.contract import Policy
from sim.scenario import Scenario

#: Logit added to the "no change" action of a fresh PPO policy: the untrained agent
#: picks the base policy's proposal about 72 % of the time with residual-change's
#: nine actions (e^3 / (e^3 + 8); 80 % with the level modes' six), so
#: training starts near the heuristic's score (AWARE's bootstrapping) instead of
#: at a uniformly random policy.
NO_CHANGE_LOGIT = 3.0


def make_spec(config: TrainConfig, name: str) -> RlSpec:
    """The bundle's spec for a model trained under `config` (no bundle path yet).

    No hysteresis stages: the base policy damps its own proposals (cooldowns, alarm
    periods), and the churn term of the reward discourages flapping trims. A 60 s
    scale-down stabilisation window used to sit here, and it erased the base's
    scale-ins: threshold, step and target-tracking propose a scale-in once and then
    hold, so a window holding the highest recommendation always found a "hold" at
    the current capacity. A learned policy that kept every proposal never scaled in
    (NAB FB weeks 6-8, seed 0: aws-target-tracking $14,893 alone, $226,025 behind
    the window). Bundles written with it keep it: their spec carries the stages.
    """
    assert config.algo in ("ppo", "dqn")
    return RlSpec(
        name=name,
        algo=config.algo,  # type: ignore[arg-type]  # checked above
        base=config.base_spec if config.base_spec is not None else resolve(config.base),
        action_mode=config.action_mode,
        factors=config.factors,
        nudges=config.actions.nudges,
        floor_utilisation=config.floor_utilisation,
        floor_mode=config.floor_mode,
    )


def earliest_start_s(config: TrainConfig) -> float:
    """Where training episodes may start: after the history the base fits on, when the
    config hands that much history (else there is nothing to wait for)."""
    needed = make_spec(config, "training").base.history_needed_s()
    return needed if 0 < needed <= config.history_h * HOUR_S else 0.0


def make_env(config: TrainConfig, train_scenario: Scenario) -> Any:
    """One training env: episodes cut from `train_scenario`'s window."""
    from sim.gym import make_cluster_env

    workload, _ = scenario_inputs(train_scenario)
    spec = make_spec(config, "training")
    return make_cluster_env(
        scenario=train_scenario,
        workload=workload,
        base_policy=spec.base.build(),
        episode_s=config.episode_h * HOUR_S,
        action_mode=config.action_mode,
        factors=config.factors,
        nudges=config.actions.nudges,
        level_range=config.level_range,
        weights=config.weights,
        floor_utilisation=config.floor_utilisation,
        floor_mode=config.floor_mode,
        history_s=config.history_h * HOUR_S,
        earliest_start_s=earliest_start_s(config),
        wrap=spec.wrap,
    )


def training_envs(config: TrainConfig, train_scenario: Scenario) -> Any:
    """The vectorised env a model of `config` trains in (`PPO_N_ENVS` for PPO, 1 for DQN)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    n_envs = PPO_N_ENVS if config.algo == "ppo" else 1
    return DummyVecEnv([lambda: make_env(config, train_scenario) for _ in range(n_envs)])


def new_model(config: TrainConfig, env: Any, seed: int) -> Any:
    """A fresh SB3 model of `config.algo` on `env`, biased towards "no change"."""
    from stable_baselines3 import DQN, PPO

    if config.algo == "ppo":
        # a multiple of the 64-sample mini-batch, so no batch is truncated
        rollout = max(64, min(512, config.timesteps // PPO_N_ENVS) // 64 * 64)
        kwargs: dict[str, Any] = {
            "n_steps": rollout,
            "batch_size": 64,
            "n_epochs": 5,
            "learning_rate": 3e-4,
            "gamma": 0.99,
            "ent_coef": 0.01,
            "policy_kwargs": {"net_arch": [64, 64]},
            **config.hyperparameters,
        }
        ppo = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
        _bias_no_change(ppo.policy.action_net, config)
        return ppo
    kwargs = {
        "learning_starts": min(1000, config.timesteps // 4),
        "buffer_size": 50_000,
        "batch_size": 64,
        "train_freq": 4,
        "target_update_interval": 500,
        "exploration_fraction": 0.3,
        # a residual agent explores around the heuristic, not uniformly
        "exploration_initial_eps": 0.3,
        "exploration_final_eps": 0.02,
        "policy_kwargs": {"net_arch": [64, 64]},
        **config.hyperparameters,
    }
    dqn = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    for net in (dqn.q_net.q_net, dqn.q_net_target.q_net):
        _bias_no_change(net[-1], config)
    return dqn


def _bias_no_change(layer: Any, config: TrainConfig) -> None:
    import torch

    no_change = config.actions.no_change
    with torch.no_grad():
        layer.bias[no_change] += NO_CHANGE_LOGIT


def train_model(job: TrainJob) -> TrainedModel:
    """Train one model with `job.seed`; keep its best checkpoint on the validation window.

    PPO can drift after it has found a good policy (ServeGen, 1M steps: cheaper and
    under the SLO where 200k steps met it), so the last weights are not necessarily
    the best. The model is scored on the validation window before training (the
    untrained agent picks "no change": the base policy behind the safety floor),
    `config.checkpoints` times during training and at the end, and the best score
    (`planner.tune.objective_value` on the cost over the validation oracle) is kept.
    Scoring uses the deterministic action and its own engine seed, so a run with
    the same seed and budget trains and keeps the same model.
    """
    import torch
    from stable_baselines3.common.callbacks import CallbackList

    torch.set_num_threads(1)  # several trainings share the machine's cores
    config = job.config
    env = training_envs(config, job.train_scenario)
    model = new_model(config, env, job.seed)
    keeper = BestCheckpoint(job)
    keeper.score(model)
    callbacks = [keeper.callback(), _deadline(config.max_train_s)]
    model.learn(
        total_timesteps=config.timesteps, callback=CallbackList([c for c in callbacks if c])
    )
    keeper.score(model)
    env.close()
    best = keeper.best
    return TrainedModel(
        seed=job.seed,
        model_zip=best.model_zip,
        validation_cost_usd=best.checkpoint.cost_usd,
        validation_attainment=best.checkpoint.attainment,
        timesteps=best.checkpoint.timesteps,
        checkpoints=tuple(keeper.scores),
        trained_timesteps=int(model.num_timesteps),
    )


@dataclass(frozen=True)
class _Kept:
    checkpoint: Checkpoint
    rank: float
    model_zip: bytes


class BestCheckpoint:
    """Scores a model on the validation window and keeps the best weights seen.

    Checkpoint i of n falls at i / (n + 1) of the training budget: of `timesteps`,
    or of `max_train_s` when the clock would stop training first (whichever comes
    sooner), at the start of the first rollout past it (weights just updated there).
    """

    def __init__(self, job: TrainJob) -> None:
        self.job = job
        self.scores: list[Checkpoint] = []
        self._best: _Kept | None = None
        self._shares = [
            (i + 1) / (job.config.checkpoints + 1) for i in range(job.config.checkpoints)
        ]
        self._started = time.monotonic()

    @property
    def best(self) -> _Kept:
        assert self._best is not None, "score the model first"
        return self._best

    def rank(self, checkpoint: Checkpoint) -> float:
        """`objective_value` of the cost over the validation oracle's (without one, over
        the first checkpoint's: the objective's SLO penalty is sized for ratios)."""
        reference = self.job.validation_oracle_usd or (
            self.scores[0].cost_usd if self.scores else checkpoint.cost_usd
        )
        ratio = checkpoint.cost_usd / reference if reference > 0 else checkpoint.cost_usd
        target = self.job.validation_scenario.slo.target_attainment
        return objective_value(ratio, checkpoint.attainment, target)

    def score(self, model: Any) -> None:
        """Score `model` as it is now, unless it was scored at this step already."""
        steps = int(model.num_timesteps)
        if self.scores and self.scores[-1].timesteps == steps:
            return
        result = run_learned(self.job.validation_scenario, model, self.job.config, self.job.seed)
        checkpoint = Checkpoint(steps, result.cost_usd, result.slo_attainment)
        self.scores.append(checkpoint)
        rank = self.rank(checkpoint)
        if self._best is None or rank < self._best.rank:
            buffer = io.BytesIO()
            model.save(buffer, exclude=["env", "replay_buffer"])
            self._best = _Kept(checkpoint, rank, buffer.getvalue())

    def due(self, steps: int) -> bool:
        """Whether a checkpoint fell due by `steps` (or by the clock); each is due once."""
        config = self.job.config
        done = steps / config.timesteps
        if config.max_train_s:
            done = max(done, (time.monotonic() - self._started) / config.max_train_s)
        passed = [share for share in self._shares if share <= done]
        self._shares = self._shares[len(passed) :]
        return bool(passed)

    def callback(self) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        keeper = self

        class ScoreCheckpoints(BaseCallback):
            def _on_rollout_start(self) -> None:
                if keeper.due(int(self.model.num_timesteps)):
                    keeper.score(self.model)

            def _on_step(self) -> bool:
                return True

        return ScoreCheckpoints()


def _deadline(max_train_s: float | None) -> Any:
    """An SB3 callback ending training after `max_train_s` wall-clock seconds (or None)."""
    if max_train_s is None:
        return None
    from stable_baselines3.common.callbacks import BaseCallback

    budget_s = max_train_s

    class Deadline(BaseCallback):
        def _on_training_start(self) -> None:
            self.stop_at = time.monotonic() + budget_s

        def _on_step(self) -> bool:
            return time.monotonic() < self.stop_at

    return Deadline()


def learned_policy(model: Any, config: TrainConfig, name: str = "rl") -> Policy:
    """The deployable policy around `model`: what `RlSpec.build` returns for its bundle."""
    spec = make_spec(config, name)
    policy = LearnedPolicy(
        model,
        spec.action_map(),
        spec.base.build(),
        floor_utilisation=spec.floor_utilisation,
        name=name,
        floor_mode=spec.floor_mode,
    )
    return spec.wrap(policy)


def run_learned(scenario: Any, model: Any, config: TrainConfig, seed: int, name: str = "rl") -> Any:
    """One fluid-engine run of the learned policy on `scenario` (history included)."""
    workload, history = scenario_inputs(scenario)
    policy = learned_policy(model, config, name)
    return engine_named("fluid").run(scenario, workload, policy, seed=seed, history=history)
