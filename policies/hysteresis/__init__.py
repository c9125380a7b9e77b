"""Hysteresis stages (dead band, stabilisation window, rate limit, clamp) and their wrapper."""

from __future__ import annotations

from policies.hysteresis.config import (
    DirectionRules,
    HysteresisSpec,
    RatePolicy,
    default_scale_down,
    default_scale_up,
)
from policies.hysteresis.pipeline import Hysteresis, HysteresisState, StagedDecision, run_stages
from policies.hysteresis.stages import (
    Recommendation,
    ScaleEvent,
    StageResult,
    clamp,
    dead_band,
    rate_limit,
    stabilise,
)

__all__ = [
    "DirectionRules",
    "Hysteresis",
    "HysteresisSpec",
    "HysteresisState",
    "RatePolicy",
    "Recommendation",
    "ScaleEvent",
    "StageResult",
    "StagedDecision",
    "clamp",
    "dead_band",
    "default_scale_down",
    "default_scale_up",
    "rate_limit",
    "run_stages",
    "stabilise",
]
