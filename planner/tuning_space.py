"""Which parameters `planner tune` may calibrate, per policy kind, and over what range.

One table, so the search space is reviewed in one place. Ranges are deliberately
wide around the defaults their sources recommend; the tuner, not the table, finds
the operating point. Every target is a (possibly dotted) field of the kind's spec;
a test checks the table against the registry's specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.spec_update import updated_spec
from sim.errors import PolicyError

if TYPE_CHECKING:
    import optuna

    from policies.spec import PolicySpecBase


@dataclass(frozen=True)
class ParamRange:
    """One tunable parameter: a float or integer interval, optionally log-scaled or stepped.

    `targets` are the spec fields it sets (dotted for nested blocks); one parameter
    may drive several fields (the HPA's tolerance applies in both directions).
    """

    name: str
    low: float
    high: float
    integer: bool = False
    log: bool = False
    step: float | None = None
    targets: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return self.targets or (self.name,)

    def suggest(self, trial: optuna.Trial) -> float | int:
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


_HPA_TOLERANCE = ("hysteresis.scale_up.tolerance", "hysteresis.scale_down.tolerance")

#: kind -> tunable parameters. Threshold-style bands use disjoint intervals for the
#: lower and upper edge, so every sampled point is a valid spec (lower < upper).
TUNING_SPACE: Mapping[str, tuple[ParamRange, ...]] = {
    "threshold": (
        ParamRange("upper", 0.55, 0.95),
        ParamRange("lower", 0.10, 0.50),
        ParamRange("step_out", 1, 6, integer=True),
        ParamRange("step_in", 1, 3, integer=True),
        ParamRange("cooldown_out_s", 0.0, 300.0, step=15.0),
        ParamRange("cooldown_in_s", 60.0, 1800.0, step=30.0),
    ),
    # Kubernetes HPA defaults: tolerance 0.1, scale-down stabilisation 300 s
    # (kubernetes.io, Horizontal Pod Autoscaling, "Algorithm details").
    "hpa": (
        ParamRange("target", 0.30, 0.90),
        ParamRange("tolerance", 0.0, 0.30, targets=_HPA_TOLERANCE),
        ParamRange(
            "scale_down_window_s",
            0.0,
            900.0,
            step=15.0,
            targets=("hysteresis.scale_down.stabilization_window_s",),
        ),
    ),
    # AWS target tracking: the target value and the scale-in cooldown (default 300 s,
    # EC2 Auto Scaling user guide, "Target tracking scaling policies").
    "aws-target-tracking": (
        ParamRange("target", 0.30, 0.90),
        ParamRange("scale_in_cooldown_s", 0.0, 900.0, step=15.0),
    ),
    "step": (
        ParamRange("high_threshold", 0.55, 0.95, targets=("high.threshold",)),
        ParamRange("low_threshold", 0.10, 0.50, targets=("low.threshold",)),
    ),
    # Predictive (standard mode): the forecast quantile provisioned for and the
    # utilisation the Erlang C sizing may plan up to (together its headroom), and the
    # window and scale-down hold of the reactive floor under the forecast. On ServeGen
    # days 11-14 the cap alone moves the cost by 5 % per 0.04 (0.82: USD 5,621 at
    # 95.8 %, 0.86: 5,370 at 95.0 %), more than the quantile does.
    "predictive": (
        ParamRange("quantile", 0.50, 0.99),
        ParamRange("max_utilisation", 0.60, 0.95),
        ParamRange("floor_window_s", 15.0, 600.0, step=15.0),
        ParamRange("floor_hold_s", 0.0, 900.0, step=30.0),
    ),
    # Anomaly: the tracking target under the forecast, how far out of band demand
    # must go before it pre-scales, and how much it adds when it does.
    "anomaly": (
        ParamRange("target_utilisation", 0.30, 0.90),
        ParamRange("z_threshold", 1.5, 6.0),
        ParamRange("headroom", 0.0, 1.0),
        ParamRange("hold_s", 0.0, 1800.0, step=60.0),
    ),
    # Spillover: how much of the forecast the GPU pool holds (the rest spills to the
    # serverless endpoint) and the burst quantile its provisioned concurrency covers.
    "spillover": (
        ParamRange("base_quantile", 0.30, 0.95),
        ParamRange("burst_quantile", 0.80, 0.999),
    ),
}


def tunable(spec: PolicySpecBase) -> tuple[ParamRange, ...]:
    """The parameters of `spec`'s kind.

    Raises:
        PolicyError: The kind has no entry in `TUNING_SPACE`.
    """
    ranges = TUNING_SPACE.get(spec.kind)
    if ranges is None:
        raise PolicyError(
            f"policy kind {spec.kind!r} has no tunable parameters; tunable kinds: "
            f"{', '.join(sorted(TUNING_SPACE))}"
        )
    return ranges


def suggest(trial: optuna.Trial, ranges: tuple[ParamRange, ...]) -> dict[str, Any]:
    """One point of the search space, keyed by parameter name."""
    return {item.name: item.suggest(trial) for item in ranges}


def apply_params(
    spec: PolicySpecBase, ranges: tuple[ParamRange, ...], params: dict[str, Any]
) -> PolicySpecBase:
    """`spec` with each parameter written to its target field(s), validated."""
    update = {field: params[item.name] for item in ranges for field in item.fields}
    return updated_spec(spec, update, f"tuning space of {spec.kind!r}")
