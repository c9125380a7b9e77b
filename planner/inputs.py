"""What a run starts from: the scenario's workload, its history, and the policies named.

Checked before any expensive work (`resolve_policies` fails on a typo at once);
loaded once per process by `planner.runs`, however many runs share them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from policies.spec import PolicySpecBase
from sim.errors import PolicyError
from sim.scenario import Scenario
from sim.workload.model import Workload

HOUR_S = 3600.0


def build_scenario_workload(scenario: Scenario) -> Workload:
    """The scenario's workload with its window and scaling applied."""
    from sim.workload import build_workload

    return build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)


def resolve_policies(names: Sequence[str]) -> list[PolicySpecBase]:
    """Registry specs for policy names (`hpa`, `bundle:PATH`, ...), in order.

    Raises:
        PolicyError: A name is unknown, a bundle is unreadable, or a name repeats.
    """
    from policies.registry import resolve

    specs = [resolve(name.strip()) for name in names if name.strip()]
    if not specs:
        raise PolicyError("no policy named; pass --policies NAME[,NAME...]")
    seen: dict[str, str] = {}
    for name, spec in zip(names, specs, strict=True):
        label = spec.display_name()
        if label in seen:
            raise PolicyError(
                f"policies {seen[label]!r} and {name!r} both display as {label!r}; "
                "give one a distinct name (e.g. a bundle with its own spec name)"
            )
        seen[label] = name
    return specs


def check_policies(scenario: Scenario, specs: Sequence[PolicySpecBase] | None = None) -> None:
    """Build and reset every policy of `scenario` against its cluster, before any run.

    `reset` is where a policy refuses a scenario it cannot drive (spillover without
    a spillover pool, bounds it cannot honour); doing it here, on a stand-in
    workload with the scenario's request sizes, turns a failure that used to come
    after minutes of simulation into one at start-up. No trace is read.

    Raises:
        PolicyError: A name is unknown, or a policy refuses the scenario (the
            message names the policy and the fix).
    """
    from sim.engine import make_context
    from sim.workload.model import RateEnvelope, TokenProfile

    specs = resolve_policies(scenario.policies) if specs is None else specs
    tokens = scenario.workload.tokens
    stand_in = RateEnvelope(
        bin_s=scenario.decision_interval_s,
        rate_rps=np.ones(1),
        missing=np.zeros(1, dtype=bool),
        tokens=TokenProfile() if tokens is None else TokenProfile(**tokens.model_dump()),
    )
    context = make_context(scenario, stand_in, np.random.default_rng(scenario.seed))
    # Forecasting policies log that the stand-in has no history: true here, and
    # not news about the run (which may hand them one), so their warnings are muted.
    muted = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        for spec in specs:
            try:
                spec.build().reset(context)
            except PolicyError as exc:
                raise PolicyError(
                    f"policy {spec.display_name()!r} cannot run on scenario "
                    f"{scenario.name!r}: {exc}"
                ) from None
    finally:
        logging.disable(muted)


def build_history(scenario: Scenario) -> Workload | None:
    """The trace before the scenario's window, for policies that fit on history.

    Scaled by the same factor as the window (so a forecaster sees the level it will
    run at); None when the window starts at the trace's beginning or the workload
    is synthetic. Modulation and token overrides shape the run, not the history.
    """
    from sim.workload import load_trace, mean_rps, observed_s, scale_to_mean, slice_window

    spec = scenario.workload
    if spec.start_h <= 0.0 or spec.format == "synthetic" or spec.path is None:
        return None
    raw = load_trace(scenario.resolve_path(spec.path), spec.format, spec.bin_s, spec.time_unit)
    start_s = spec.start_h * HOUR_S
    end_s = raw.duration_s if spec.duration_h is None else start_s + spec.duration_h * HOUR_S
    if start_s >= raw.duration_s:
        return None  # build_workload reports the bad window with the full message
    history = slice_window(raw, 0.0, start_s)
    if spec.scale_mean_rps is None:
        return history
    window = slice_window(raw, start_s, min(end_s, raw.duration_s))
    if (
        min(observed_s(history), observed_s(window)) <= 0
        or min(mean_rps(history), mean_rps(window)) <= 0
    ):
        # An all-gap history carries nothing to fit; an empty window is reported by
        # build_workload with the full message.
        return None
    factor = spec.scale_mean_rps / mean_rps(window)
    return scale_to_mean(history, mean_rps(history) * factor, np.random.default_rng(scenario.seed))
