"""`ClusterEnv` (`scaleplan/Cluster-v0`): one fluid-engine run, one decision interval per step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat, get_args

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.capacity.pools import ServerlessEndpoint
from sim.contract import PRIMARY, Observation, Policy
from sim.control import ControlLoop
from sim.engine import make_context
from sim.errors import ScenarioError
from sim.fluid import kernel as K
from sim.fluid.engine import FluidEngine, FluidSettings, _InstanceRun
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
from sim.gym.agent import AgentPolicy
from sim.gym.observation import N_FEATURES, OBS_BOUND, FloatVector, ObservationEncoder
from sim.scenario import Scenario
from sim.workload.model import RateEnvelope, Workload
from sim.workload.ops import mean_rps, observed_s, scale_to_mean, slice_window

#: How an episode's arrivals are drawn from an envelope (`ClusterEnv`'s `episode_sampling`).
EpisodeSampling = Literal["per-second", "exact"]

HOUR_S = 3600.0


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the per-step reward `-(cost + slo + churn)`, every term unitless.

    Attributes:
        cost: Per replica-interval billed, relative to the replicas the episode's
            mean demand needs at a full batch (so a fleet sized to the mean costs
            about `cost` per step at any traffic level).
        slo_miss: Per request that finished over the SLO latency or was dropped,
            relative to the episode's mean requests per interval. At 20 an interval
            where 10 % of an average interval's requests miss costs 2, more than
            running twice the needed fleet: the SLO comes first.
        churn: Per replica of change in desired capacity, relative to the same mean
            need (discourages flapping that the cost term alone would not see).
    """

    cost: float = 1.0
    slo_miss: float = 20.0
    churn: float = 0.05


class ClusterEnv(gym.Env[FloatVector, np.int64]):
    """Scale a GPU serving pool on real traffic, one decision interval per step.

    ## Description

    Each episode replays a window of a real traffic trace, at a random offset and a
    random level (the window's mean rate scaled by a log-uniform factor), through
    the fluid engine (`sim.fluid.FluidEngine`) and the shared control loop
    (`sim.control.ControlLoop`): the agent's action becomes a `Decision` from an
    `AgentPolicy`, which the loop checks, clamps, applies through the pool's
    actuator and records, as it does for every policy in every engine.

    ## Action Space

    `Discrete(len(factors) + len(nudges))` (`sim.gym.actions.ActionMap`). In
    `residual-change` mode (the default) factor `f` sets the desired capacity to
    `current + f * (base - current)`, a multiple of the base policy's change, and a
    nudge moves the base's proposal by a share of the replicas the demand needs,
    within a band around that need; in `residual` mode factor `f` scales the base's
    proposed level (it compounds while the base holds: kept for old bundles); in
    `absolute` mode it scales the desired capacity in force. The action with factor
    1.0 (`ActionMap.no_change`) leaves the proposal (or, in `absolute` mode, the
    capacity) unchanged. A reactive safety floor then applies unless disabled.

    ## Observation Space

    `Box(-10, 10, (13,), float32)`, the features `sim.gym.observation.FEATURES`
    (layout `LAYOUT_VERSION`): demand and its trend, utilisation, queue, ready and
    pending replicas, time of day and of week (sin/cos), the demand forecast one
    provisioning delay ahead, the base policy's proposal, and the capacity level.

    ## Rewards

    `-(cost + slo_miss + churn)` per step with the weights of `RewardWeights`: the
    replica-intervals billed, the requests that missed the SLO (latency over the
    scenario's objective, or dropped) and the change in desired capacity, each
    relative to the episode's mean demand so the scale does not depend on the level.

    ## Starting State

    The pool at the scenario's initial replicas at the start of the window; the first
    observation is taken at the first decision point.

    ## Episode End

    A serving cluster has no terminal state: `terminated` is always False. An episode
    is truncated by `gymnasium.wrappers.TimeLimit` (registered `max_episode_steps`,
    or `make_cluster_env`'s); if the window's traffic ends first, the env itself
    returns `truncated=True`.

    ## Arguments

    * `scenario`: cluster, SLO and decision interval (an instance pool: GPU node pool
      or EC2 ASG).
    * `workload`: the traffic episodes are cut from (e.g. the training window).
    * `base_policy`: the heuristic (any `sim.contract.Policy`), decided every step.
    * `episode_s`: seconds of traffic per episode (default 6 h).
    * `action_mode`, `factors`, `nudges`: see Action Space (None: the mode's defaults).
    * `level_range`: (low, high) of the random level factor; (1, 1) keeps the level.
    * `weights`: `RewardWeights`.
    * `floor_utilisation`: safety floor sizing (None: no floor).
    * `floor_mode`: `release` (default) or `hold`: whether the base sees the floor's
      lift as the capacity in force (`sim.gym.actions.FloorMode`).
    * `history_s`: traffic before the window handed to the base policy's reset (for
      forecasters), at the same level; 0 hands none.
    * `earliest_start_s`: episodes start no earlier (the history a forecasting base
      needs to fit: an episode before it would train on the base's reactive fallback).
    * `wrap`: optional wrapper of the agent's policy (e.g. hysteresis stages).
    * `episode_sampling`: how an envelope's arrivals are drawn for an episode.
      `per-second` (default): counts per second with the envelope's mean and its
      clients' dispersion, and the trace's overall service strata
      (`sim.fluid.inputs.sampled_envelope_counts`: what the fluid engine does for
      every run of more than 3 M requests, such as the held-back days the learned
      policy is scored on); `exact`: request by request, as the SimPy engine draws
      them (the fluid engine's way for shorter runs), with strata per minute of the
      sampled requests. Episode starts were 83-89 % of the env's time with `exact`
      (a 6-hour ServeGen episode at 60 req/s: 989 ms to start, 86 us a step) and are
      3-4 ms with `per-second`. A request trace is replayed as it is either way.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it on the instance)

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        base_policy: Policy,
        *,
        episode_s: float = 6 * HOUR_S,
        action_mode: ActionMode = DEFAULT_ACTION_MODE,
        factors: tuple[float, ...] | None = None,
        nudges: tuple[float, ...] | None = None,
        level_range: tuple[float, float] = (0.8, 1.25),
        weights: RewardWeights | None = None,
        floor_utilisation: float | None = DEFAULT_FLOOR_UTILISATION,
        floor_mode: FloorMode = DEFAULT_FLOOR_MODE,
        history_s: float = 0.0,
        earliest_start_s: float = 0.0,
        wrap: Any = None,
        episode_sampling: EpisodeSampling = "per-second",
    ) -> None:
        if isinstance(scenario.pool, ServerlessEndpoint):
            raise ScenarioError(
                f"scenario {scenario.name!r}: the RL env scales an instance pool (GPU node pool "
                "or ASG); a serverless endpoint has no replicas to learn"
            )
        interval_s = scenario.decision_interval_s
        if workload.duration_s < earliest_start_s + episode_s + interval_s:
            before = (
                f" after the {earliest_start_s / HOUR_S:.0f} h of history its base policy fits on"
                if earliest_start_s > 0
                else ""
            )
            raise ScenarioError(
                f"the trace window is {workload.duration_s / HOUR_S:.2f} h, too short for one "
                f"{episode_s / HOUR_S:.2f} h episode{before}; give a longer training window or "
                "a shorter --episode-h"
            )
        low, high = level_range
        if not 0 < low <= high:
            raise ValueError(f"level_range {level_range} needs 0 < low <= high")
        self.scenario = scenario
        self.workload = workload
        self.episode_s = float(episode_s)
        self.level_range = (float(low), float(high))
        self.weights = weights or RewardWeights()
        self.history_s = history_s
        self.earliest_start_s = float(earliest_start_s)
        self.actions = ActionMap(
            action_mode,
            default_factors(action_mode) if factors is None else tuple(factors),
            default_nudges(action_mode) if nudges is None else tuple(nudges),
        )
        self.agent = AgentPolicy(
            base_policy,
            self.actions,
            floor_utilisation=floor_utilisation,
            name="agent",
            floor_mode=floor_mode,
        )
        self.policy: Policy = self.agent if wrap is None else wrap(self.agent)
        self.encoder = ObservationEncoder(scenario.pool.provisioning_mean_s())
        if episode_sampling not in get_args(EpisodeSampling):
            raise ValueError(
                f"episode_sampling {episode_sampling!r}: one of "
                + ", ".join(get_args(EpisodeSampling))
            )
        exact_up_to = (
            FluidSettings().exact_sampling_max_requests if episode_sampling == "exact" else 0
        )
        self.engine = FluidEngine(FluidSettings(exact_sampling_max_requests=exact_up_to))
        self.action_space = spaces.Discrete(self.actions.n)
        self.observation_space = spaces.Box(
            -OBS_BOUND, OBS_BOUND, shape=(N_FEATURES,), dtype=np.float32
        )
        pool = scenario.pool
        self._replica_interval_usd = (
            pool.node_usd_per_h / pool.replicas_per_node * interval_s / HOUR_S
        )
        self._run: _InstanceRun | None = None
        self._loop: ControlLoop | None = None
        self._now = 0.0
        self._observation: Observation | None = None
        self._vector = np.zeros(N_FEATURES, dtype=np.float32)

    # --- the Gymnasium API -------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatVector, dict[str, Any]]:
        """Start an episode. `options` may fix `start_s` (offset) and `level` (factor)."""
        super().reset(seed=seed)
        rng = self.np_random
        options = options or {}
        latest = self.workload.duration_s - self.episode_s - self.scenario.decision_interval_s
        start_s = float(options.get("start_s", rng.uniform(self.earliest_start_s, latest)))
        if not 0.0 <= start_s <= latest:
            raise ValueError(f"start_s {start_s} outside 0..{latest:.0f} s")
        if isinstance(self.workload, RateEnvelope):
            # an envelope is cut at whole bins (`slice_window` widens outwards): from a
            # start inside a bin the window would begin at that bin's start and the
            # history end at its end, one bin inside the run, and a forecasting base
            # refuses such history (it fell back to reactive sizing in those episodes)
            start_s = math.floor(start_s / self.workload.bin_s) * self.workload.bin_s
        low, high = self.level_range
        level = float(options.get("level", math.exp(rng.uniform(math.log(low), math.log(high)))))
        # one interval past the episode: the run's last decision needs its interval of
        # traffic, or the run ends a step before the time limit (`latest` leaves room)
        end_s = start_s + self.episode_s + self.scenario.decision_interval_s
        window = slice_window(self.workload, start_s, end_s)
        history = None
        if self.history_s > 0 and start_s > 0:
            history = slice_window(self.workload, max(0.0, start_s - self.history_s), start_s)
        if level != 1.0:
            window = _scaled(window, level, rng)
            history = None if history is None else _scaled(history, level, rng)
        run_seed = int(rng.integers(2**31 - 1))
        run = self.engine.start(self.scenario, window, run_seed)
        assert isinstance(run, _InstanceRun)
        # the policy's generator as FluidEngine.run seeds it, so a base policy decides
        # here exactly as it does in a plain run of the same window and seed
        policy_rng = np.random.default_rng(np.random.SeedSequence(run_seed).spawn(2)[1])
        context = make_context(self.scenario, window, policy_rng, history=history)
        loop = ControlLoop(self.policy, run.actuators(), context)
        loop.reset()
        self.encoder.reset()
        self._run, self._loop = run, loop
        self._mean_need = max(
            _mean(window) / max(context.replica_capacity_rps, 1e-9), 1.0
        )  # replicas at full batch
        self._mean_requests = max(_mean(window) * context.interval_s, 1.0)
        self._cost = 0.0
        now = run.advance()
        if now is None:
            raise ScenarioError("the episode window ends before the first decision")
        self._observe(now)
        info = {"start_s": start_s, "level": level, "run_seed": run_seed}
        return self._vector.copy(), info

    def step(
        self, action: np.int64 | int
    ) -> tuple[FloatVector, SupportsFloat, bool, bool, dict[str, Any]]:
        run, loop, observation = self._run, self._loop, self._observation
        if run is None or loop is None or observation is None:
            raise RuntimeError("call reset() before step()")
        self.agent.action = int(action)
        base = self.agent.propose(observation).desired
        loop.act(observation, loop.decide(observation))
        run.record(self._now, observation)
        desired = run.actuators()[PRIMARY].current()
        churn = abs(desired - observation.desired)
        now = run.advance()
        end_s = run.duration if now is None else now
        out = run.out
        finished = float(out[K.O_SERVED] + out[K.O_DROPPED])
        missed = max(finished - float(out[K.O_ATTAINED]), 0.0)
        cost = run.fleet.cost_usd(end_s) + (run.spill.cost_usd() if run.spill else 0.0)
        step_cost, self._cost = cost - self._cost, cost
        w = self.weights
        reward = -(
            w.cost * step_cost / self._replica_interval_usd / self._mean_need
            + w.slo_miss * missed / self._mean_requests
            + w.churn * churn / self._mean_need
        )
        info = {
            "time_s": self._now,
            "desired": desired,
            "base_desired": base,
            "cost_usd": step_cost,
            "finished": finished,
            "missed": missed,
        }
        truncated = now is None
        if now is not None:
            self._observe(now)
        return self._vector.copy(), float(reward), False, truncated, info

    # --- helpers -----------------------------------------------------------------------

    def _observe(self, now: float) -> None:
        run, loop = self._run, self._loop
        assert run is not None and loop is not None
        self._now = now
        observation = loop.observe(run.read(now))
        self._observation = observation
        proposal = self.agent.propose(observation)
        self._vector = self.encoder.encode(observation, int(proposal.desired))


def _mean(workload: Workload) -> float:
    return mean_rps(workload) if observed_s(workload) > 0 else 0.0


def _scaled(workload: Workload, level: float, rng: np.random.Generator) -> Workload:
    mean = _mean(workload)
    return scale_to_mean(workload, mean * level, rng) if mean > 0 else workload
