"""The learned policy: a Stable-Baselines3 model from a bundle, behind a floor and hysteresis.

`rl:PATH` (or `bundle:PATH` of an RL bundle) names one anywhere a policy name is
accepted, in both engines. The bundle holds the model (`model.zip`, as SB3 saves
it) and an `RlSpec`: the algorithm, the base policy whose proposal the model
adjusts, the action map, the safety floor, the observation layout version and
any `hysteresis:` block. Each decision: the base policy proposes, the encoder
(`sim.gym.observation`) builds the features the model was trained on, the model
picks a discrete action, the reactive floor bounds it from below
(`sim.gym.agent.AgentPolicy`, the same code the env trains through), and the
hysteresis stages damp the result.

torch and stable-baselines3 are imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, field_validator

from policies.spec import PolicySpecBase
from sim.contract import Decision, Observation, Policy, PolicyContext
from sim.errors import PolicyError
from sim.gym.actions import (
    DEFAULT_FACTORS,
    DEFAULT_FLOOR_UTILISATION,
    ActionMap,
    ActionMode,
    FloorMode,
)
from sim.gym.agent import AgentPolicy
from sim.gym.observation import LAYOUT_VERSION, N_FEATURES, ObservationEncoder

RL_PREFIX = "rl:"
MODEL_FILE = "model.zip"
Algo = Literal["ppo", "dqn"]
ALGOS: tuple[str, ...] = ("ppo", "dqn")
#: Loaded models by (algo, sha256 of the zip): a what-if builds the policy once per run.
_MODELS: dict[tuple[str, str], Any] = {}


class RlSpec(PolicySpecBase):
    """Spec of a learned policy; `bundle_path` is filled in when a bundle is resolved.

    Attributes:
        algo: The Stable-Baselines3 algorithm that trained the model.
        base: The heuristic whose proposal the model adjusts (any policy spec).
        action_mode: `residual-change`, `residual` or `absolute`
            (`sim.gym.actions.ActionMap`). The defaults (`residual`, the level
            factors, no nudges) are what a spec meant before the field existed;
            `planner train` always records all three.
        factors: The discrete actions' multipliers.
        nudges: `residual-change` only: the nudges' shares of the demand's need.
        floor_utilisation: Reactive safety floor sizing; None disables it.
        floor_mode: `release` or `hold` (`sim.gym.actions.FloorMode`): whether the
            base sees the floor's lift as the capacity in force. `hold` is what a
            spec meant before the field existed; `planner train` records it.
        layout_version: Observation layout the model was trained on.
        model_file: The model's file name inside the bundle.
        bundle_path: Where the bundle is (not stored in the bundle itself).
    """

    kind: Literal["rl"] = "rl"
    algo: Algo
    base: SerializeAsAny[PolicySpecBase]
    action_mode: ActionMode = "residual"
    factors: tuple[float, ...] = DEFAULT_FACTORS
    nudges: tuple[float, ...] = ()
    floor_utilisation: float | None = Field(default=DEFAULT_FLOOR_UTILISATION, gt=0.0, le=1.0)
    floor_mode: FloorMode = "hold"
    layout_version: int = LAYOUT_VERSION
    model_file: str = MODEL_FILE
    bundle_path: str | None = None

    @field_validator("base", mode="before")
    @classmethod
    def _base_spec(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from policies.kinds import spec_from_dict

            return spec_from_dict(value, source="rl.base")
        return value

    def action_map(self) -> ActionMap:
        try:
            return ActionMap(self.action_mode, tuple(self.factors), tuple(self.nudges))
        except ValueError as exc:
            raise PolicyError(f"rl spec: {exc}") from None

    def fits_history(self) -> bool:
        return self.base.fits_history()

    def history_needed_s(self) -> float:
        return self.base.history_needed_s()

    def build(self) -> Policy:
        if self.bundle_path is None:
            raise PolicyError(
                "an rl spec needs its bundle to load the model from; name it as rl:PATH "
                "(the bundle directory written by `planner train`)"
            )
        model = load_model(self, read_model_bytes(self, Path(self.bundle_path)))
        policy = LearnedPolicy(
            model,
            self.action_map(),
            self.base.build(),
            floor_utilisation=self.floor_utilisation,
            name=self.display_name(),
            floor_mode=self.floor_mode,
        )
        return self.wrap(policy)


class LearnedPolicy:
    """A trained model choosing the action of an `AgentPolicy` every decision.

    Args:
        model: Anything with SB3's `predict(observation, deterministic=True)`.
        actions: The action map the model was trained with.
        base: The base policy (reset and decided every interval).
        floor_utilisation: Reactive safety floor sizing; None disables it.
        name: Display name.
        floor_mode: How the floor's lift meets the base (`sim.gym.actions.FloorMode`).
    """

    def __init__(
        self,
        model: Any,
        actions: ActionMap,
        base: Policy,
        *,
        floor_utilisation: float | None,
        name: str = "rl",
        floor_mode: FloorMode = "hold",
    ) -> None:
        self.model = model
        self.name = name
        self.agent = AgentPolicy(
            base,
            actions,
            floor_utilisation=floor_utilisation,
            choose=self._choose,
            name=name,
            floor_mode=floor_mode,
        )
        self.encoder = ObservationEncoder(0.0)

    def reset(self, context: PolicyContext) -> None:
        self.encoder = ObservationEncoder(context.provisioning_s)
        self.agent.reset(context)

    def decide(self, observation: Observation) -> Decision:
        return self.agent.decide(observation)

    def _choose(self, observation: Observation, base_desired: int) -> int:
        features = self.encoder.encode(observation, base_desired)
        action, _ = self.model.predict(features, deterministic=True)
        return int(action)


def read_model_bytes(spec: RlSpec, path: Path) -> bytes:
    """The model file of the bundle at `path`, checked against the spec's layout.

    Raises:
        PolicyError: Another observation layout, or no model file in the bundle.
    """
    from policies.bundle import read_bundle

    check_layout(spec, path)
    bundle = read_bundle(path)
    content = bundle.files.get(spec.model_file)
    if content is None:
        raise PolicyError(
            f"{path}: the rl bundle has no model file {spec.model_file!r}; "
            "re-create it with `planner train`"
        )
    return content


def check_layout(spec: RlSpec, path: Path | str) -> None:
    if spec.layout_version != LAYOUT_VERSION:
        raise PolicyError(
            f"{path}: the model was trained on observation layout v{spec.layout_version}; "
            f"this scaleplan builds layout v{LAYOUT_VERSION}. Retrain it with `planner train`"
        )


def load_model(spec: RlSpec, content: bytes) -> Any:
    """The SB3 model in `content` (cached per process), checked against the spec.

    Raises:
        PolicyError: Not a model of `spec.algo`, or spaces that do not match.
    """
    key = (spec.algo, hashlib.sha256(content).hexdigest())
    model = _MODELS.get(key)
    if model is None:
        model = _read_model(spec, content)
    # checked on every call: the cache is keyed by the file, and another spec may
    # name the same file with another action map
    shape = getattr(model.observation_space, "shape", None)
    actions = getattr(model.action_space, "n", None)
    expected = spec.action_map().n
    if shape != (N_FEATURES,) or actions != expected:
        raise PolicyError(
            f"the model expects observations {shape} and {actions} actions; layout "
            f"v{LAYOUT_VERSION} has ({N_FEATURES},) and the spec {expected} actions"
        )
    _MODELS[key] = model
    return model


def _read_model(spec: RlSpec, content: bytes) -> Any:
    from stable_baselines3 import DQN, PPO

    try:
        if spec.algo == "ppo":
            return PPO.load(io.BytesIO(content), device="cpu")
        return DQN.load(io.BytesIO(content), device="cpu")
    except Exception as exc:  # SB3 raises zip, pickle and key errors for a bad file
        raise PolicyError(
            f"the model file is not a readable {spec.algo.upper()} model ({type(exc).__name__}: "
            f"{exc}); re-create the bundle with `planner train`"
        ) from None


def rl_spec_from_bundle(path: Path) -> RlSpec:
    """The `RlSpec` of the bundle at `path`, pointing at it, checked before any run.

    Raises:
        PolicyError: Not an RL bundle, another observation layout, or no model file.
    """
    from policies.bundle import read_bundle

    bundle = read_bundle(path)
    spec = bundle.spec
    if not isinstance(spec, RlSpec):
        raise PolicyError(
            f"{path}: a {spec.kind!r} bundle, not a learned policy; name it as bundle:{path}"
        )
    check_layout(spec, path)
    if spec.model_file not in bundle.files:
        raise PolicyError(
            f"{path}: the rl bundle has no model file {spec.model_file!r}; "
            "re-create it with `planner train`"
        )
    return spec.model_copy(update={"bundle_path": str(Path(path).resolve())})
