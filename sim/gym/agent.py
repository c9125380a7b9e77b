"""The policy a learned agent acts through: base proposal -> action -> safety floor.

`AgentPolicy` is an ordinary `sim.contract.Policy`, so the control loop checks,
clamps, actuates and records its decisions like any other. The env sets its
`action` before each decision; the deployed RL policy (`policies.rl`) passes a
`choose` callable that asks the trained model instead. The base policy comes in
as an object (sim imports nothing from `policies`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.gym.actions import ActionMap, FloorMode, demand_need, reactive_floor

#: (observation, base policy's desired) -> action index.
ChooseAction = Callable[[Observation, int], int]


class AgentPolicy:
    """Adjusts a base policy's proposal by a discrete action, above a reactive floor.

    Args:
        base: The heuristic whose proposal the action adjusts (the residual modes)
            and which the observation reports; decided exactly once per interval.
        actions: Action index -> desired capacity.
        floor_utilisation: Share of full-batch throughput the safety floor sizes
            for (`reactive_floor`); None disables the floor.
        choose: Picks the action from the observation and the base proposal; None
            uses `self.action` (set by the env before each decision).
        name: Display name.
        floor_mode: `hold` (the base sees the floor's lift as the capacity in
            force) or `release` (it sees its own last level; `sim.gym.actions`).
    """

    def __init__(
        self,
        base: Policy,
        actions: ActionMap,
        *,
        floor_utilisation: float | None,
        choose: ChooseAction | None = None,
        name: str = "agent",
        floor_mode: FloorMode = "hold",
    ) -> None:
        self.base = base
        self.actions = actions
        self.floor_utilisation = floor_utilisation
        self.choose = choose
        self.name = name
        self.floor_mode = floor_mode
        self.action = actions.no_change
        self._proposal: tuple[float, Decision] | None = None
        #: `release`: the level the base and the action set last, under any lift.
        self._level: int | None = None

    def reset(self, context: PolicyContext) -> None:
        self.base.reset(context)
        self.action = self.actions.no_change
        self._proposal = None
        self._level = None

    def base_view(self, observation: Observation) -> Observation:
        """What the base (and the action) take as the capacity in force: the
        observation itself, or in `release` mode the level set before the floor."""
        if self.floor_mode == "hold" or self._level is None:
            return observation
        if observation.desired == self._level:
            return observation
        return dataclasses.replace(observation, desired=self._level)

    def propose(self, observation: Observation) -> Decision:
        """The base policy's decision for this interval (asked once, then remembered),
        on the base's view of it (`base_view`)."""
        cached = self._proposal
        if cached is not None and cached[0] == observation.time_s:
            return cached[1]
        proposal = self.base.decide(self.base_view(observation))
        self._proposal = (observation.time_s, proposal)
        return proposal

    def decide(self, observation: Observation) -> Decision:
        seen = self.base_view(observation)
        base = self.propose(observation)
        proposed = int(base.desired)
        action = self.action if self.choose is None else self.choose(observation, proposed)
        desired = self.actions.desired(
            action,
            base=proposed,
            current=seen.desired,
            low=observation.min_replicas,
            high=observation.max_replicas,
            need=demand_need(observation) if self.actions.nudges else None,
        )
        self._level = desired
        reason = f"{self.actions.describe(action)} -> {desired} ({base.reason})"
        if self.floor_utilisation is not None:
            floor = reactive_floor(observation, self.floor_utilisation)
            if desired < floor:
                desired = floor
                reason += f"; SafetyFloor: demand needs {floor}"
        return Decision(desired, reason, base.targets)
