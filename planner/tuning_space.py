"""Which parameters `planner tune` may calibrate, per policy kind, and over what range.

One table, so the search space is reviewed in one place. Ranges are deliberately
wide around the defaults their sources recommend; the tuner, not the table, finds
the operating point. Each name must be a field of the policy kind's spec (a test
checks the table against the registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import PolicyError

if TYPE_CHECKING:
    import optuna

    from policies.spec import PolicySpecBase


@dataclass(frozen=True)
class ParamRange:
    """One tunable field: a float or integer interval, optionally log-scaled or stepped."""

    name: str
    low: float
    high: float
    integer: bool = False
    log: bool = False
    step: float | None = None

    def suggest(self, trial: optuna.Trial) -> float | int:
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


#: kind -> tunable fields. Threshold ranges keep lower < upper by construction (disjoint
#: intervals), so every sampled point is a valid spec.
TUNING_SPACE: Mapping[str, tuple[ParamRange, ...]] = {
    "threshold": (
        ParamRange("upper", 0.55, 0.95),
        ParamRange("lower", 0.10, 0.50),
        ParamRange("step", 1, 8, integer=True),
        ParamRange("cooldown_up_s", 0.0, 300.0, step=15.0),
        ParamRange("cooldown_down_s", 60.0, 1800.0, step=30.0),
    ),
    # Kubernetes HPA defaults: tolerance 0.1, scale-down stabilisation 300 s
    # (kubernetes.io, Horizontal Pod Autoscaling, "Algorithm details").
    "hpa": (
        ParamRange("target_utilisation", 0.30, 0.90),
        ParamRange("tolerance", 0.0, 0.30),
        ParamRange("scale_down_stabilisation_s", 0.0, 900.0, step=15.0),
    ),
    # AWS target tracking: one target value; AWS recommends the metric at 40-70 %.
    "aws-target-tracking": (ParamRange("target_utilisation", 0.30, 0.90),),
    "predictive": (
        ParamRange("headroom_quantile", 0.50, 0.995),
        ParamRange("headroom", 0.0, 0.5),
    ),
}


def tunable(spec: PolicySpecBase) -> tuple[ParamRange, ...]:
    """The ranges for `spec`'s kind, restricted to fields the spec really has.

    Raises:
        PolicyError: The kind has no entry, or none of its entries is a field.
    """
    ranges = TUNING_SPACE.get(spec.kind)
    if ranges is None:
        raise PolicyError(
            f"policy kind {spec.kind!r} has no tunable parameters; tunable kinds: "
            f"{', '.join(sorted(TUNING_SPACE))}"
        )
    fields = type(spec).model_fields
    present = tuple(item for item in ranges if item.name in fields)
    if not present:
        raise PolicyError(f"no tunable field of kind {spec.kind!r} exists on {type(spec).__name__}")
    return present


def suggest(trial: optuna.Trial, ranges: tuple[ParamRange, ...]) -> dict[str, Any]:
    """One point of the search space, as a spec update."""
    return {item.name: item.suggest(trial) for item in ranges}
