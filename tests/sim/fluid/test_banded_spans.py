"""Bands: a reactive policy that names the readings at which it would keep the capacity
in force (`sim.control.BandedPolicy`) is not asked at those ticks, and the run is what
it is when the loop asks at every tick, bit for bit.

Each case runs a policy twice, once with its bands and once through `AskedEveryTick`
(which hides them), on workloads with steady and bursty traffic, fixed and random
provisioning delays: the whole `RunResult`, the loop's history and counters and the
per-interval shares must agree, and the banded run must have asked the policy at
fewer ticks. Settings are chosen to reach every part of a band: the HPA's tolerance,
its scale-down window (kept, renewed, expired), its recount of pending pods, its
minimum, and the threshold's band with more than one evaluation period.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from policies.anomaly import AnomalyPolicy
from policies.aws_target_tracking import AwsTargetTrackingPolicy
from policies.hpa import HpaPolicy, tolerated_units
from policies.hysteresis.config import DirectionRules, HysteresisSpec, RatePolicy
from policies.predictive.policy import PredictivePolicy
from policies.predictive.spec import PredictiveSpec
from policies.registry import resolve
from policies.scheduled import ScheduledPolicy, ScheduleEntry
from policies.step import StepAdjustment, StepAlarm, StepScalingPolicy
from policies.threshold import ThresholdPolicy
from sim.contract import Decision, Observation, Policy
from sim.control import Band
from sim.scenario import Scenario
from sim.workload.model import Workload

from .asked import both, check
from .conftest import load, make_scenario, poisson_envelope, servegen_day

_LOGNORMAL = {"kind": "lognormal", "cv": 0.5}


def _conv() -> tuple[Scenario, Workload]:
    scenario = make_scenario()
    return scenario, load(scenario)


def _code_hour() -> tuple[Scenario, Workload]:
    """The bursty code hour at 20 req/s (15 s rates from about 2 to 230 req/s)."""
    scenario = make_scenario(
        workload={"format": "azure-llm", "path": "package:azure_code.csv", "scale_mean_rps": 20.0},
        pool={"min_replicas": 1, "max_replicas": 32, "initial_replicas": 4},
    )
    return scenario, load(scenario)


def _random_delays() -> tuple[Scenario, Workload]:
    scenario = make_scenario(
        pool={
            "node_boot_s": {**_LOGNORMAL, "mean_s": 120},
            "image_pull_s": {**_LOGNORMAL, "mean_s": 90},
            "model_load_s": {**_LOGNORMAL, "mean_s": 60},
        }
    )
    return scenario, load(scenario)


def _odd_interval() -> tuple[Scenario, Workload]:
    """7.5 s ticks on the code hour: tick times rounded to whole seconds (the step
    policy's and the schedule's clocks count ticks as time)."""
    scenario, workload = _code_hour()
    return scenario.model_copy(update={"decision_interval_s": 7.5}), workload


def _envelope() -> tuple[Scenario, Workload]:
    return make_scenario(), poisson_envelope(12.0, 3600.0)


def _servegen() -> tuple[Scenario, Workload]:
    scenario = servegen_day(2.0)
    return scenario, load(scenario)


WORKLOADS: dict[str, Callable[[], tuple[Scenario, Workload]]] = {
    "conv hour": _conv,
    "code hour": _code_hour,
    "random delays": _random_delays,
    "rate envelope": _envelope,
    "servegen day": _servegen,
    "7.5 s interval": _odd_interval,
}

_SHORT_WINDOW = HysteresisSpec(
    scale_up=DirectionRules(
        tolerance=0.05, policies=(RatePolicy(type="Pods", value=2, period_s=60.0),)
    ),
    scale_down=DirectionRules(
        tolerance=0.2,
        stabilization_window_s=60.0,
        policies=(RatePolicy(type="Percent", value=10, period_s=60.0),),
    ),
)
_NO_WINDOW = HysteresisSpec(scale_down=DirectionRules(stabilization_window_s=0.0))
_STRICT_HIGH = StepAlarm(
    threshold=1.2,
    comparison="GreaterThanThreshold",
    steps=(
        StepAdjustment(lower_bound=0.0, upper_bound=0.5, adjustment=2),
        StepAdjustment(lower_bound=0.5, upper_bound=None, adjustment=5),
    ),
)
_STRICT_LOW = StepAlarm(
    threshold=0.8,
    comparison="LessThanThreshold",
    evaluation_periods=2,
    adjustment_type="PercentChangeInCapacity",
    steps=(StepAdjustment(lower_bound=None, upper_bound=0.0, adjustment=-20),),
)
#: Windows that open and close within the hour: a floor, then raised bounds.
_WINDOWS = (
    ScheduleEntry(name="floor", cron="*/10 * * * *", duration_s=240.0, desired=14),
    ScheduleEntry(name="bounds", cron="5-59/20 * * * *", duration_s=300.0, min_replicas=9),
)

_FORECAST = PredictiveSpec().forecast_config()

POLICIES: dict[str, Callable[[], Policy]] = {
    "threshold": ThresholdPolicy,
    "threshold, 2 periods, percent steps": lambda: ThresholdPolicy(
        upper=0.6, lower=0.45, evaluation_periods=2, step_out=50, step_in=25, step_unit="percent"
    ),
    "hpa": HpaPolicy,
    "hpa target 0.5": lambda: HpaPolicy(target=0.5),
    "hpa rps per replica": lambda: HpaPolicy(metric="rps_per_replica", target=1.2),
    "hpa 60 s window, rate limits": lambda: HpaPolicy(target=0.6, behavior=_SHORT_WINDOW),
    "hpa without a window": lambda: HpaPolicy(behavior=_NO_WINDOW),
    "hpa at its minimum": lambda: HpaPolicy(target=0.3, min_replicas=10),
    "aws-target-tracking": AwsTargetTrackingPolicy,
    "aws-target-tracking rps, short alarms": lambda: AwsTargetTrackingPolicy(
        metric="rps_per_replica",
        target=1.0,
        scale_out_after_s=30.0,
        scale_in_after_s=120.0,
        instance_warmup_s=60.0,
        scale_in_cooldown_s=60.0,
    ),
    "step (preset)": lambda: resolve("step").build(),
    "step, strict thresholds on rps": lambda: StepScalingPolicy(
        high=_STRICT_HIGH, low=_STRICT_LOW, metric="rps_per_replica", instance_warmup_s=60.0
    ),
    "scheduled (preset)": lambda: resolve("scheduled").build(),
    "scheduled, windows every 10 minutes": lambda: ScheduledPolicy(_WINDOWS, HpaPolicy()),
    # the forecast policies without history: their fallbacks (the reactive floor, the
    # anomaly detector against a rolling baseline) are banded
    "predictive (preset)": lambda: resolve("predictive").build(),
    "predictive floor on demand alone, 120 s hold": lambda: PredictivePolicy(
        _FORECAST, floor_tracks_utilisation=False, floor_hold_s=120.0, floor_window_s=45.0
    ),
    "anomaly (preset)": lambda: resolve("anomaly").build(),
    "anomaly on a hair trigger": lambda: AnomalyPolicy(
        _FORECAST, z_threshold=1.0, min_samples=4, window_s=600.0, hold_s=60.0, headroom=0.5
    ),
}


def _counted(policy: Policy) -> list[int]:
    """Count the ticks `policy` is asked at (its `decide`, wrapped in place)."""
    asked = [0]
    decide = policy.decide

    def counting(observation: Observation) -> Decision:
        asked[0] += 1
        return decide(observation)

    policy.decide = counting  # type: ignore[method-assign]
    return asked


@pytest.mark.parametrize("setting", list(WORKLOADS), ids=list(WORKLOADS))
@pytest.mark.parametrize("name", list(POLICIES), ids=list(POLICIES))
def test_a_banded_run_is_the_run_asked_at_every_tick(name: str, setting: str) -> None:
    scenario, workload = WORKLOADS[setting]()
    policy = POLICIES[name]()
    asked = _counted(policy)
    fast, slow = both(scenario, workload, policy, POLICIES[name]())
    check(fast, slow)
    decisions = slow[1].decisions
    assert asked[0] < decisions, "no tick was passed in a band"


#: The forecasting policies' bands size demand through the capacity model's grid
#: (`Sizer.highest_rate`): a busier day reaches the counts where a grid step decides.
FORECASTING = [name for name in POLICIES if name.startswith(("predictive", "anomaly"))]


@pytest.mark.parametrize("name", FORECASTING, ids=FORECASTING)
def test_a_forecasting_policy_banded_on_a_busy_day_is_the_run_asked_at_every_tick(
    name: str,
) -> None:
    scenario = servegen_day(20.0)
    fast, slow = both(scenario, load(scenario), POLICIES[name](), POLICIES[name]())
    check(fast, slow)


def test_bands_skip_most_ticks_of_a_steady_load() -> None:
    """At a steady 12 req/s the HPA settles, and the loop asks it at few ticks."""
    scenario, workload = _envelope()
    policy = HpaPolicy()
    asked = _counted(policy)
    fast, slow = both(scenario, workload, policy, HpaPolicy())
    check(fast, slow)
    assert asked[0] < slow[1].decisions / 4


def test_after_a_change_a_policy_is_offered_the_fleet_the_change_left() -> None:
    """A band asked for after a decision that changed the capacity sees the new desired
    count and the ready and pending replicas after the change (the series row of that
    tick), not the observation the decision was taken on."""
    scenario, workload = _code_hour()
    offered: dict[float, Observation] = {}
    policy = HpaPolicy()
    quiet_band = policy.quiet_band

    def offering(observation: Observation) -> Band | None:
        offered[observation.time_s] = observation
        return quiet_band(observation)

    policy.quiet_band = offering  # type: ignore[method-assign]
    fast, slow = both(scenario, workload, policy, HpaPolicy())
    check(fast, slow)
    run, loop = fast
    series = run.result(loop, 5).series
    changes = [record for record in loop.records if record.time_s in offered]
    assert len(changes) > 10
    for record in changes:
        shown = offered[record.time_s]
        row = int(np.searchsorted(series.time_s, record.time_s))
        assert shown.desired == record.desired
        assert (shown.ready, shown.pending) == (series.ready[row], series.pending[row])


@pytest.mark.parametrize(
    ("target", "tolerance", "expected"),
    [(70, 0.1, (63, 77)), (50, 0.1, (45, 55)), (1200, 0.1, (1080, 1320)), (70, 0.0, (70, 70))],
)
def test_the_hpa_band_is_the_units_its_tolerance_keeps(
    target: int, tolerance: float, expected: tuple[int, int]
) -> None:
    assert tolerated_units(target, tolerance, tolerance) == expected
