"""The stages composed: dead band -> stabilisation -> rate limit -> clamp.

`run_stages` is pure: explicit `HysteresisState` in, new state out. `Hysteresis`
wraps any `Policy` in it, so a forecaster or an RL agent gets the same damping
an HPA applies to its own recommendation.
"""

from __future__ import annotations

from typing import NamedTuple

from policies.hysteresis.config import HysteresisSpec
from policies.hysteresis.stages import (
    PASS_THROUGH,
    Recommendation,
    ScaleEvent,
    clamp,
    dead_band,
    rate_limit,
    record_scale_event,
    stabilise,
)
from sim.contract import Decision, Observation, Policy, PolicyContext


class HysteresisState(NamedTuple):
    """What the stages remember between decisions (a named tuple, as the stage values)."""

    recommendations: tuple[Recommendation, ...] = ()
    up_events: tuple[ScaleEvent, ...] = ()
    down_events: tuple[ScaleEvent, ...] = ()


class StagedDecision(NamedTuple):
    """The final value, the reason of every stage that bound, and the next state."""

    value: int
    reasons: tuple[str, ...]
    state: HysteresisState

    def reason_text(self) -> str:
        return ",".join(self.reasons) if self.reasons else "DesiredWithinRange"


def run_stages(
    spec: HysteresisSpec,
    state: HysteresisState,
    *,
    now_s: float,
    current: int,
    recommended: int,
    min_replicas: int,
    max_replicas: int,
    ratio: float | None = None,
    apply_dead_band: bool = True,
) -> StagedDecision:
    """Run the four stages and record the applied change.

    Args:
        spec: Per-direction tolerance, windows and rate policies.
        state: Recommendations and scale events from earlier calls.
        now_s: Simulated time of this decision.
        current: Replicas now (the base of ratios and rate limits).
        recommended: The raw recommendation.
        min_replicas: Lower bound.
        max_replicas: Upper bound.
        ratio: Dead-band ratio (e.g. metric / target); defaults to recommended / current.
        apply_dead_band: False when the caller already applied its own tolerance
            (the HPA applies it to the usage ratio inside the replica calculation).
    """
    # One stage after another, each bound stage's reason noted; written out rather
    # than through a helper because this runs every decision of every run.
    reasons: list[str] = []
    value = recommended
    if apply_dead_band:
        value, reason = dead_band(
            current,
            value,
            tolerance_up=spec.scale_up.tolerance,
            tolerance_down=spec.scale_down.tolerance,
            ratio=ratio,
        )
        if reason not in PASS_THROUGH:
            reasons.append(reason)
    (value, reason), history = stabilise(
        state.recommendations,
        now_s=now_s,
        current=current,
        recommended=value,
        up_window_s=spec.scale_up.stabilization_window_s,
        down_window_s=spec.scale_down.stabilization_window_s,
    )
    if reason not in PASS_THROUGH:
        reasons.append(reason)
    if value != current:
        value, reason = rate_limit(
            now_s=now_s,
            current=current,
            desired=value,
            up_events=state.up_events,
            down_events=state.down_events,
            scale_up=spec.scale_up,
            scale_down=spec.scale_down,
        )
        if reason not in PASS_THROUGH:
            reasons.append(reason)
    if not min_replicas <= value <= max_replicas:  # (the clamp stage also rejects min > max)
        value, reason = clamp(value, min_replicas=min_replicas, max_replicas=max_replicas)
        if reason not in PASS_THROUGH:
            reasons.append(reason)
    ups, downs = state.up_events, state.down_events
    if ups or downs or value != current:
        ups, downs = record_scale_event(
            ups, downs, now_s=now_s, previous=current, new=value, keep_s=spec.max_period_s()
        )
    return StagedDecision(value, tuple(reasons), HysteresisState(history, ups, downs))


class Hysteresis:
    """Wraps any policy in the hysteresis stages.

    The inner policy's `desired` is the raw recommendation; `current` is the
    desired capacity in force (`Observation.desired`), the value the stages hold
    or move. The final value is clamped to the observation's pool bounds. The
    inner decision's spillover sizing passes through unchanged.

    Args:
        inner: The policy to damp.
        spec: Stage settings; `HysteresisSpec()` is the Kubernetes default behavior
            (tolerance 0.1, scale-down window 300 s, +max(100%, 4 pods)/15 s up,
            -100%/15 s down).
        name: Display name; defaults to the inner policy's.

    Edges:
        * `Observation.desired` of 0: no ratio exists, so the dead band passes the
          recommendation; Percent rate policies allow nothing from 0, Pods ones do.
        * Missing metrics are the inner policy's business: the stages see only its
          recommendation (a holding inner policy recommends `desired`).
        * `reset` clears the recommendation and scale-event history and resets the
          inner policy.
    """

    def __init__(self, inner: Policy, spec: HysteresisSpec, name: str | None = None) -> None:
        self.inner = inner
        self.spec = spec
        self.name = name or inner.name
        self.state = HysteresisState()

    def reset(self, context: PolicyContext) -> None:
        self.state = HysteresisState()
        self.inner.reset(context)

    def decide(self, observation: Observation) -> Decision:
        raw = self.inner.decide(observation)
        staged = run_stages(
            self.spec,
            self.state,
            now_s=observation.time_s,
            current=observation.desired,
            recommended=raw.desired,
            min_replicas=observation.min_replicas,
            max_replicas=observation.max_replicas,
        )
        self.state = staged.state
        reason = raw.reason if not staged.reasons else f"{raw.reason}; {staged.reason_text()}"
        return Decision(staged.value, reason, raw.targets)
