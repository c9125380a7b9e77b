"""The RL challenger of `planner retrain`: a learned policy trained within a wall-clock budget.

`planner train` (`planner.train.learn`) already trains Stable-Baselines3 models in
`scaleplan/Cluster-v0`; this module drives the same env and model factory for the
retraining job, with three differences:

* Time, not steps, bounds the work: the job has `--rl-budget-min` minutes, counted
  from the call (env set-up included). A callback stops learning when the budget is
  spent, and earlier when the next rollout could not finish in what is left (SB3
  discards an interrupted rollout, so starting it would only burn time).
* The residual agent adjusts the best heuristic the job just tuned (`base_spec`),
  not a registry preset, so it starts at that heuristic's score (AWARE's bootstrapping).
* It continues from the champion's weights when the champion is a learned policy
  trained with the same algorithm, observation layout and action space: the model is
  loaded onto the new training env and keeps learning. Anything else trains from
  scratch, and `RlCandidate.notes` says why.

It sees only the training window; the caller scores the candidate on its holdout.
A run stopped by the clock is not reproducible step for step (the number of updates
depends on the machine's speed); the bundle records how many steps were taken.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planner.runs import scenario_inputs
from planner.train.config import HOUR_S, TrainConfig
from planner.train.learn import new_model, training_envs
from planner.train.windows import cut
from policies.registry import resolve
from policies.spec import PolicySpecBase
from sim.errors import PolicyError, UserInputError
from sim.gym.observation import LAYOUT_VERSION
from sim.scenario import Scenario

#: Longest training episode; shorter windows get episodes of half their length.
EPISODE_H = 6.0
#: Hours of traffic before each episode handed to a predictive base (its forecasters
#: fit on it), as `planner train --base predictive` does.
PREDICTIVE_HISTORY_H = 7 * 24.0
#: PPO rollout length per env: 512 (planner train's) once the budget holds dozens of
#: updates; shorter for a budget of seconds, so a few updates still fit (about 2,600
#: env steps/s with PPO's updates included, 4 envs, measured on the 2-core dev machine).
MAX_N_STEPS = 512
MIN_N_STEPS = 64
BUDGET_S_PER_64_STEPS = 4.0
#: A cap on total_timesteps that the clock always reaches first (SB3 needs one).
STEPS_PER_S_CAP = 20_000


@dataclass(frozen=True)
class RlCandidate:
    """A learned challenger, written as a bundle.

    Attributes:
        spec: The learned policy's spec (`rl`), pointing at `bundle_dir`, runnable by
            `planner.runs.execute_run`.
        bundle_dir: The `PolicyBundle` written under `out_root` (model file inside).
        timesteps: Env steps taken in this call (not counting the champion's; a last
            rollout cut short by the deadline included).
        wall_s: Wall-clock seconds of the whole call, set-up and bundle included.
        warm_started_from: The champion bundle whose weights it continued, or None.
        notes: What the caller should report (why it trained from scratch, a budget
            too short for any update, ...).
    """

    spec: PolicySpecBase
    bundle_dir: Path
    timesteps: int
    wall_s: float
    warm_started_from: str | None
    notes: tuple[str, ...]


def train_rl_candidate(
    scenario: Scenario,
    train_window_h: tuple[float, float],
    *,
    budget_s: float,
    seed: int,
    out_root: Path,
    base_spec: PolicySpecBase | None = None,
    champion_bundle: Path | None = None,
    algo: str = "ppo",
    created_at: datetime | None = None,
) -> RlCandidate | None:
    """Train a residual RL policy on `train_window_h` of `scenario` within `budget_s`.

    Args:
        scenario: The cluster, SLO and trace (the whole history; only the window is used).
        train_window_h: (start_h, duration_h) of the trace to train on.
        budget_s: Wall-clock seconds for the whole call; <= 0 trains nothing.
        seed: Seed of the model and the env's episodes.
        out_root: Bundle root; the bundle goes to `out_root/<name>/v<N>`.
        base_spec: The heuristic the agent adjusts (default: the threshold preset).
        champion_bundle: The current champion's bundle, continued when compatible.
        algo: `ppo` or `dqn`.
        created_at: The bundle's timestamp (default: now, UTC).

    Returns:
        The candidate, or None (nothing written) when `budget_s <= 0`.

    Raises:
        UserInputError: An unknown algorithm, or a base that is itself a learned policy.
        ScenarioError: The window lies outside the trace or is too short for an episode.
    """
    if budget_s <= 0:
        return None
    started = time.monotonic()
    base = base_spec if base_spec is not None else resolve("threshold")
    config = candidate_config(base, algo, train_window_h, budget_s)
    train = cut(scenario, {"train": train_window_h})["train"]
    scenario_inputs(train)  # a window outside the trace fails here, before any torch import

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small MLP: one thread is fastest, and leaves the rest free
    try:
        env = training_envs(config, train)
        notes: list[str] = []
        model, warm_from = None, None
        if champion_bundle is not None:
            model, note = warm_start(champion_bundle, config, env, seed)
            if model is None:
                notes.append(f"{note}: trained from scratch")
            else:
                warm_from = str(champion_bundle)
                notes += [note] if note else []
        if model is None:
            model = new_model(config, env, seed)
        steps_before, updates_before = int(model.num_timesteps), _gradient_updates(model)
        model.learn(
            total_timesteps=int(budget_s * STEPS_PER_S_CAP),
            callback=Deadline(stop_at=started + budget_s).callback(),
            reset_num_timesteps=warm_from is None,
        )
        learned = int(model.num_timesteps) - steps_before
        updates = _gradient_updates(model) - updates_before
        if updates == 0:
            what = "the champion's model unchanged" if warm_from else "the untrained model"
            notes.append(
                f"the {budget_s:g} s budget held no complete {algo.upper()} update: the "
                f"candidate is {what} (its base policy behind the safety floor)"
            )
        buffer = io.BytesIO()
        model.save(buffer, exclude=["env", "replay_buffer"])
        env.close()
    finally:
        torch.set_num_threads(threads)
    bundle_dir = _write_bundle(
        train,
        config,
        train_window_h,
        out_root,
        model_zip=buffer.getvalue(),
        fitted={
            "seed": seed,
            "timesteps": learned,
            "timesteps_total": int(model.num_timesteps),
            "gradient_updates": updates,
            "budget_s": budget_s,
            "warm_started_from": warm_from,
            "notes": notes,
        },
        created_at=created_at or datetime.now(UTC),
    )
    from policies.rl import rl_spec_from_bundle

    return RlCandidate(
        spec=rl_spec_from_bundle(bundle_dir),
        bundle_dir=bundle_dir,
        timesteps=learned,
        wall_s=time.monotonic() - started,
        warm_started_from=warm_from,
        notes=tuple(notes),
    )


def candidate_config(
    base: PolicySpecBase, algo: str, window_h: tuple[float, float], budget_s: float
) -> TrainConfig:
    """How the candidate trains: `planner train`'s defaults, on `base`, sized to the budget."""
    from planner.train.config import ALGOS

    if algo not in ALGOS:
        raise UserInputError(f"unknown RL algorithm {algo!r}; use one of: {', '.join(ALGOS)}")
    if base.kind == "rl":
        raise UserInputError(
            "the RL candidate's base must be a heuristic policy, not a learned one "
            f"({base.display_name()!r})"
        )
    n_steps = int(min(MAX_N_STEPS, max(MIN_N_STEPS, budget_s / BUDGET_S_PER_64_STEPS * 64)))
    return TrainConfig(
        algo=algo,
        timesteps=int(budget_s * STEPS_PER_S_CAP),
        base=base.kind,
        base_spec=base,
        episode_h=min(EPISODE_H, window_h[1] / 2),
        history_h=PREDICTIVE_HISTORY_H if base.kind == "predictive" else 0.0,
        hyperparameters={"n_steps": n_steps // 64 * 64} if algo == "ppo" else {},
    )


def warm_start(champion_bundle: Path, config: TrainConfig, env: Any, seed: int) -> tuple[Any, str]:
    """The champion's model loaded onto `env`, ready to keep learning, and a note.

    The model is None when the champion is not compatible, and the note says why; on
    success the note is empty, or says that the champion adjusted another base policy.
    Compatible means: a learned-policy bundle, trained with `config.algo`, on this
    build's observation layout, with the same action mode and factors (the action
    space), and a model whose spaces match the env's.
    """
    from policies.bundle import read_bundle
    from policies.rl import RlSpec

    try:
        bundle = read_bundle(champion_bundle)
    except PolicyError as exc:
        return None, f"the champion's bundle could not be read ({exc})"
    spec = bundle.spec
    if not isinstance(spec, RlSpec):
        return None, f"the champion is a {spec.kind!r} policy, not a learned one"
    if spec.algo != config.algo:
        return None, f"the champion's model is {spec.algo.upper()}, not {config.algo.upper()}"
    if spec.layout_version != LAYOUT_VERSION:
        return None, (
            f"the champion's model has observation layout v{spec.layout_version}, "
            f"this build v{LAYOUT_VERSION}"
        )
    # the mode too: residual-change and the level mode share no meaning for an index
    champion_actions = (spec.action_mode, tuple(spec.factors), tuple(spec.nudges))
    if champion_actions != (config.action_mode, tuple(config.factors), config.actions.nudges):
        return None, (
            f"the champion's actions are {spec.action_mode} {list(spec.factors)} nudges "
            f"{list(spec.nudges)}, the candidate's {config.action_mode} "
            f"{list(config.factors)} nudges {list(config.actions.nudges)}"
        )
    if spec.floor_mode != config.floor_mode:
        return None, (
            f"the champion's safety floor is in {spec.floor_mode} mode, the candidate's in "
            f"{config.floor_mode} mode (the base sees other capacities)"
        )
    content = bundle.files.get(spec.model_file)
    if content is None:
        return None, f"the champion's bundle has no model file {spec.model_file!r}"
    from stable_baselines3 import DQN, PPO

    algorithm = PPO if config.algo == "ppo" else DQN
    try:
        model = algorithm.load(io.BytesIO(content), env=env, device="cpu", **config.hyperparameters)
    except Exception as exc:  # SB3 raises zip, pickle, key and space-mismatch errors
        return None, f"the champion's model did not load ({type(exc).__name__}: {exc})"
    model.set_random_seed(seed)
    base = config.base_spec if config.base_spec is not None else resolve(config.base)
    if spec.base != base:
        return model, (
            f"continued the champion's model, which adjusted {spec.base.display_name()!r}, "
            f"on top of {base.display_name()!r}"
        )
    return model, ""


def _gradient_updates(model: Any) -> int:
    # SB3 counts them (PPO: epochs x rollouts; DQN: gradient steps) and logs them as
    # train/n_updates; there is no public accessor.
    return int(getattr(model, "_n_updates", 0))


class Deadline:
    """Stops SB3's `learn` at `stop_at` (time.monotonic seconds), or before a rollout
    that would not finish by then (judged by the last iteration's duration)."""

    def __init__(self, stop_at: float) -> None:
        self.stop_at = stop_at
        self._rollout_started: float | None = None
        self._iteration_s = 0.0
        self._first_step = False

    def callback(self) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        deadline = self

        class _Callback(BaseCallback):
            def _on_rollout_start(self) -> None:
                deadline.rollout_started(time.monotonic())

            def _on_step(self) -> bool:
                return deadline.keep_going(time.monotonic())

        return _Callback()

    def rollout_started(self, now: float) -> None:
        if self._rollout_started is not None:
            self._iteration_s = now - self._rollout_started
        self._rollout_started = now
        self._first_step = True

    def keep_going(self, now: float) -> bool:
        if now >= self.stop_at:
            return False
        first, self._first_step = self._first_step, False
        return not (first and now + self._iteration_s > self.stop_at)


def _write_bundle(
    train: Scenario,
    config: TrainConfig,
    window_h: tuple[float, float],
    out_root: Path,
    *,
    model_zip: bytes,
    fitted: dict[str, Any],
    created_at: datetime,
) -> Path:
    from planner.train.bundle import write_learned_bundle
    from policies.bundle import TrainingWindow

    assert config.base_spec is not None
    start_h, duration_h = window_h
    train_epoch_s = scenario_inputs(train)[0].epoch_s  # the window's own t = 0
    return write_learned_bundle(
        config,
        f"rl-{config.algo}-{config.base_spec.kind}",
        out_root,
        model_zip=model_zip,
        window=TrainingWindow(
            source=train.workload.path or train.workload.format,
            start_s=start_h * HOUR_S,
            end_s=(start_h + duration_h) * HOUR_S,
            epoch_s=None if train_epoch_s is None else train_epoch_s - start_h * HOUR_S,
        ),
        created_at=created_at,
        fitted=fitted,
    )
