"""The Hysteresis wrapper around an arbitrary policy, and its spec semantics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies.hysteresis import Hysteresis, HysteresisSpec, RatePolicy, run_stages
from policies.hysteresis.pipeline import HysteresisState
from policies.spec import FixedSpec
from sim.contract import SPILLOVER, Decision, Observation, PolicyContext


class Scripted:
    """A tiny in-test policy that recommends a scripted sequence."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.name = "scripted"
        self.resets = 0
        self.index = 0

    def reset(self, context: PolicyContext) -> None:
        del context
        self.resets += 1
        self.index = 0

    def decide(self, observation: Observation) -> Decision:
        value = self.values[self.index]
        self.index += 1
        return Decision(value, f"script {value}", targets={SPILLOVER: 7})


def drive(
    policy: Hysteresis, make_obs: Callable[..., Observation], start: int, n: int
) -> list[int]:
    desired = start
    out = []
    for step in range(n):
        decision = policy.decide(make_obs(time_s=step * 15.0, desired=desired, ready=desired))
        desired = decision.desired
        out.append(desired)
    return out


def test_default_hysteresis_damps_a_flapping_recommendation(
    make_obs: Callable[..., Observation],
) -> None:
    """Kubernetes default behavior around a recommender that flaps 10 <-> 4 every interval."""
    inner = Scripted([10, 4] * 10)
    policy = Hysteresis(inner, HysteresisSpec())
    seen = drive(policy, make_obs, start=4, n=20)
    # Up at once, capped by the rate limit (4 + max(100%, 4 pods) = 8: ScaleUpLimit); then
    # the 300 s scale-down window keeps the highest recommendation: never back to 4.
    assert seen[0] == 8
    assert seen[1:] == [8] + [10] * 18


def test_wrapper_reasons_and_spillover_pass_through(make_obs: Callable[..., Observation]) -> None:
    policy = Hysteresis(Scripted([50]), HysteresisSpec())
    decision = policy.decide(make_obs(desired=4, ready=4, max_replicas=6))
    assert decision.desired == 6
    assert decision.targets.get(SPILLOVER) == 7
    assert "ScaleUpLimit" in decision.reason and "TooManyReplicas" in decision.reason


def test_within_tolerance_holds(make_obs: Callable[..., Observation]) -> None:
    policy = Hysteresis(Scripted([21]), HysteresisSpec())
    decision = policy.decide(make_obs(desired=20, ready=20))
    assert decision.desired == 20
    assert "WithinTolerance" in decision.reason


def test_reset_clears_state_and_resets_inner(
    make_obs: Callable[..., Observation], context: PolicyContext
) -> None:
    inner = Scripted([10, 4, 10, 4])
    policy = Hysteresis(inner, HysteresisSpec())
    drive(policy, make_obs, start=10, n=2)
    assert policy.state.recommendations
    policy.reset(context)
    assert policy.state == HysteresisState()
    assert inner.resets == 1


def test_run_stages_is_pure() -> None:
    spec = HysteresisSpec()
    state = HysteresisState()
    first = run_stages(
        spec, state, now_s=0, current=4, recommended=9, min_replicas=1, max_replicas=20
    )
    again = run_stages(
        spec, state, now_s=0, current=4, recommended=9, min_replicas=1, max_replicas=20
    )
    assert first == again
    assert state == HysteresisState()


def test_spec_with_hysteresis_builds_a_wrapped_policy(make_obs: Callable[..., Observation]) -> None:
    spec = FixedSpec.model_validate(
        {
            "replicas": 40,
            "hysteresis": {
                "scale_up": {"policies": [{"type": "Pods", "value": 2, "period_s": 60}]}
            },
        }
    )
    policy = spec.build()
    assert isinstance(policy, Hysteresis)
    assert policy.decide(make_obs(desired=4, ready=4)).desired == 6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"scale_up": {"tolerance": -0.1}}, "greater than or equal to 0", id="neg-tolerance"
        ),
        pytest.param(
            {"scale_down": {"stabilization_window_s": 7200}},
            "less than or equal to 3600",
            id="window-over-1h",
        ),
        pytest.param(
            {"scale_up": {"select_policy": "Fastest"}},
            "'Max', 'Min' or 'Disabled'",
            id="bad-select",
        ),
        pytest.param(
            {"scale_up": {"policies": [{"type": "Pods", "value": 0, "period_s": 15}]}},
            "greater than 0",
            id="zero-rate",
        ),
        pytest.param(
            {"scale_up": {"policies": [{"type": "Nodes", "value": 1, "period_s": 15}]}},
            "'Pods' or 'Percent'",
            id="bad-type",
        ),
    ],
)
def test_hysteresis_spec_validation(data: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        HysteresisSpec.model_validate(data)


def test_explicit_empty_policies_remove_the_rate_limit() -> None:
    spec = HysteresisSpec.model_validate({"scale_up": {"policies": []}})
    assert spec.scale_up.policies == ()
    assert HysteresisSpec().scale_up.policies[0] == RatePolicy(
        type="Percent", value=100, period_s=15
    )


def test_from_zero_only_pods_policies_allow_growth(make_obs: Callable[..., Observation]) -> None:
    percent_only = HysteresisSpec.model_validate(
        {"scale_up": {"policies": [{"type": "Percent", "value": 100, "period_s": 15}]}}
    )
    obs = make_obs(desired=0, ready=0, min_replicas=0, utilisation=None)
    assert Hysteresis(Scripted([10]), HysteresisSpec()).decide(obs).desired == 4
    assert Hysteresis(Scripted([10]), percent_only).decide(obs).desired == 0
