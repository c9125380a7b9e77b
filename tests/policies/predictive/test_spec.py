"""PredictiveSpec: validation errors are PolicyErrors naming the field; builds both modes."""

from __future__ import annotations

from typing import Any

import pytest

from policies.hysteresis.config import HysteresisSpec
from policies.predictive import AwsPredictivePolicy, PredictivePolicy, PredictiveSpec
from policies.spec import validate_spec
from sim.errors import PolicyError


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantile": 1.5}, "quantile"),
        ({"bin_s": 700}, "must divide a day"),
        ({"mode": "aws", "bin_s": 600}, "forecasts hourly"),
        ({"forecast_only": True}, "only apply to mode 'aws'"),
        ({"models": ["prophet"]}, "models"),
        ({"models": []}, "models"),
        ({"models": ["ets-add", "ets-add"]}, "twice"),
        ({"mode": "aws", "max_capacity_buffer_pct": 10}, "needs max_capacity_behavior"),
        ({"min_history_days": 1}, "min_history_days"),
        ({"lookahead": 3}, "lookahead"),
    ],
    ids=[
        "quantile",
        "bin",
        "aws-bin",
        "aws-only",
        "unknown-model",
        "no-models",
        "duplicate",
        "buffer",
        "short-min-history",
        "extra",
    ],
)
def test_invalid_params_are_policy_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        validate_spec(PredictiveSpec, {"kind": "predictive", **data}, "bundle.json")


def test_builds_each_mode() -> None:
    assert isinstance(PredictiveSpec().build(), PredictivePolicy)
    assert isinstance(PredictiveSpec(mode="aws").build(), AwsPredictivePolicy)
    aws = PredictiveSpec(mode="aws").forecast_config()
    assert aws.bin_s == 3600 and aws.horizon_bins == 7


def test_round_trips_through_json_and_wraps_hysteresis() -> None:
    spec = PredictiveSpec(name="p", quantile=0.8, hysteresis=HysteresisSpec())
    again = PredictiveSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    policy = again.build()
    assert policy.name == "p" and not isinstance(policy, PredictivePolicy)
