"""The policy a learned agent acts through: base proposal -> action -> safety floor.

`AgentPolicy` is an ordinary `sim.contract.Policy`, so the control loop checks,
clamps, actuates and records its decisions like any other. The env sets its
`action` before each decision; the deployed RL policy (`policies.rl`) passes a
`choose` callable that asks the trained model instead. The base policy comes in
as an object (sim imports nothing from `policies`).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.gym.actions import ActionMap, demand_need, reactive_floor

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
    """

    def __init__(
        self,
        base: Policy,
        actions: ActionMap,
        *,
        floor_utilisation: float | None,
        choose: ChooseAction | None = None,
        name: str = "agent",
    ) -> None:
        self.base = base
        self.actions = actions
        self.floor_utilisation = floor_utilisation
        self.choose = choose
        self.name = name
        self.action = actions.no_change
        self._proposal: tuple[float, Decision] | None = None

    def reset(self, context: PolicyContext) -> None:
        self.base.reset(context)
        self.action = self.actions.no_change
        self._proposal = None

    def propose(self, observation: Observation) -> Decision:
        """The base policy's decision for this interval (asked once, then remembered)."""
        cached = self._proposal
        if cached is not None and cached[0] == observation.time_s:
            return cached[1]
        proposal = self.base.decide(observation)
        self._proposal = (observation.time_s, proposal)
        return proposal

    def decide(self, observation: Observation) -> Decision:
        base = self.propose(observation)
        proposed = int(base.desired)
        action = self.action if self.choose is None else self.choose(observation, proposed)
        desired = self.actions.desired(
            action,
            base=proposed,
            current=observation.desired,
            low=observation.min_replicas,
            high=observation.max_replicas,
            need=demand_need(observation) if self.actions.nudges else None,
        )
        reason = f"{self.actions.describe(action)} -> {desired} ({base.reason})"
        if self.floor_utilisation is not None:
            floor = reactive_floor(observation, self.floor_utilisation)
            if desired < floor:
                desired = floor
                reason += f"; SafetyFloor: demand needs {floor}"
        return Decision(desired, reason, base.targets)
