"""The tuning table matches the registry's specs, and every sampled point is a valid spec."""

from __future__ import annotations

import optuna
import pytest

from planner.tuning_space import TUNING_SPACE, apply_params, suggest, tunable
from policies.registry import resolve
from sim.errors import PolicyError


@pytest.mark.parametrize("kind", sorted(TUNING_SPACE), ids=sorted(TUNING_SPACE))
def test_every_sampled_point_is_a_valid_spec_that_builds(kind: str) -> None:
    base = resolve(kind)
    ranges = tunable(base)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        params = suggest(trial, ranges)
        spec = apply_params(base, ranges, params)
        for item in ranges:
            for target in item.fields:
                node: object = spec
                for part in target.split("."):
                    node = getattr(node, part)
                assert node == pytest.approx(params[item.name])
        assert spec.build() is not None
        study.tell(trial, 0.0)


def test_kinds_without_a_space_are_refused() -> None:
    with pytest.raises(PolicyError, match="no tunable parameters"):
        tunable(resolve("fixed"))
