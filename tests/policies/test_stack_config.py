"""`scaleplan:scaling`: the emitted-policy schema shared by the planner and the program."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.stack_config import CapacitySchedule, StackScaling

SOURCE = {"bundle_id": "b-1", "version": "1"}


def scaling(**targets: Any) -> StackScaling:
    return StackScaling.model_validate({"schema_version": 1, "source": SOURCE, **targets})


def test_round_trip_through_json() -> None:
    s = scaling(
        asg={
            "bounds": {"min": 1, "max": 8},
            "target_tracking": {"metric": "gpu_utilisation", "target": 65},
            "scheduled": [
                {"name": "am", "cron": "0 8 * * 1-5", "timezone": "Europe/Paris", "min": 3}
            ],
        }
    )
    again = StackScaling.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.target("asg") is not None and again.target("eks") is None


STEP = {
    "metric": "gpu_utilisation",
    "high": 80,
    "low": 30,
    "scale_out": [{"lower": 0, "upper": 10, "adjustment": 1}, {"lower": 10, "adjustment": 2}],
    "scale_in": [{"upper": 0, "adjustment": -1}],
}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({}, "at least one target"),
        ({"asg": {"bounds": {"min": 5, "max": 2}}}, "min (5) is above max (2)"),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "target_tracking": {"metric": "gpu_temp", "target": 1},
                }
            },
            "asg.target_tracking.metric: unknown metric 'gpu_temp'",
        ),
        (
            {
                "serverless": {
                    "bounds": {"min": 1, "max": 2},
                    "target_tracking": {"metric": "gpu_utilisation", "target": 1},
                }
            },
            "no native form on target 'serverless'",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "scheduled": [{"name": "x", "cron": "61 * * * *", "min": 1}],
                }
            },
            "scheduled[x].cron: '61 * * * *' is not a 5-field cron",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "scheduled": [
                        {"name": "x", "cron": "0 * * * *", "timezone": "Mars/Base", "min": 1}
                    ],
                }
            },
            "unknown time zone 'Mars/Base'",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "scheduled": [{"name": "x", "cron": "0 * * * *", "min": 5}],
                }
            },
            "scheduled[x].min (5) lies outside bounds [1, 2]",
        ),
        (
            {"asg": {"bounds": {"min": 1, "max": 2}, "step": {**STEP, "low": 90}}},
            "low (90.0) must be below high (80.0)",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "step": {
                        **STEP,
                        "scale_out": [
                            {"lower": 0, "upper": 10, "adjustment": 1},
                            {"lower": 12, "adjustment": 2},
                        ],
                    },
                }
            },
            "contiguous without overlap or gap",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "step": {**STEP, "scale_out": [{"lower": 0, "upper": 10, "adjustment": 1}]},
                }
            },
            "outermost step must be open-ended",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "step": {**STEP, "scale_in": [{"upper": 0, "adjustment": 1}]},
                }
            },
            "must be negative",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "predictive": {
                        "metric": "ASGCPUUtilization",
                        "target": 40,
                        "max_capacity_breach_behavior": "IncreaseMaxCapacity",
                    },
                }
            },
            "max_capacity_buffer_pct is required",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "predictive": {
                        "metric": "ASGCPUUtilization",
                        "target": 40,
                        "scheduling_buffer_s": 7200,
                    },
                }
            },
            "less than or equal to 3600",
        ),
        (
            {
                "eks": {
                    "bounds": {"min": 0, "max": 2},
                    "target_tracking": {"metric": "cpu_utilisation", "target": 60},
                }
            },
            "an HPA cannot scale to 0",
        ),
        ({"eks": {"bounds": {"min": 1, "max": 2}}}, "give target_tracking (HPA metric) or keda"),
        (
            {
                "eks": {
                    "bounds": {"min": 1, "max": 2},
                    "predictive": {"metric": "ASGCPUUtilization", "target": 1},
                }
            },
            "eks.predictive: no native construct",
        ),
        (
            {"eks": {"bounds": {"min": 0, "max": 2}, "keda": {"min_replicas": 0}}},
            "at least one trigger",
        ),
        (
            {
                "eks": {
                    "bounds": {"min": 0, "max": 2},
                    "keda": {"cron": [{"start": "0 8 * * *", "end": "0 25 * * *", "desired": 1}]},
                }
            },
            "keda.cron.end",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "schedule": {"start": "2026-01-01T00:00:00Z", "desired": [1] * 49},
                }
            },
            "more than 48 h",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "schedule": {"start": "2026-01-01T00:00:00", "desired": [1]},
                }
            },
            "give a time zone",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 2},
                    "schedule": {"start": "2026-01-01T00:00:00Z", "desired": [1, 3]},
                }
            },
            "exceeds bounds.max (2)",
        ),
    ],
    ids=[
        "no-target",
        "min-above-max",
        "unknown-metric",
        "metric-not-native",
        "bad-cron",
        "bad-tz",
        "scheduled-outside-bounds",
        "no-hysteresis-band",
        "step-gap",
        "step-closed-end",
        "step-wrong-sign",
        "predictive-buffer-missing",
        "predictive-buffer-too-long",
        "hpa-zero",
        "eks-no-trigger",
        "eks-predictive",
        "keda-no-trigger",
        "keda-bad-cron",
        "schedule-too-long",
        "schedule-naive-time",
        "schedule-above-max",
    ],
)
def test_invalid_policies_fail_naming_the_field(targets: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        scaling(**targets)
    assert message in str(err.value)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
        scaling(asg={"bounds": {"min": 1, "max": 2}, "target_trackin": {}})


def test_schedule_changes_compress_runs() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    plan = CapacitySchedule(start=start, step_s=3600, desired=(2, 2, 5, 5, 5, 2))
    assert [(t.hour, d) for t, d in plan.changes()] == [(0, 2), (2, 5), (5, 2)]


def test_keda_with_cron_and_behavior_is_valid() -> None:
    s = scaling(
        eks={
            "bounds": {"min": 0, "max": 4},
            "keda": {"cron": [{"start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desired": 2}]},
            "hpa_behavior": {"scale_down": {"stabilization_window_s": 600}},
        }
    )
    assert s.eks is not None and s.eks.keda is not None and s.eks.keda.min_replicas == 0
    assert (
        s.eks.hpa_behavior is not None and s.eks.hpa_behavior.scale_up.stabilization_window_s == 0
    )


def test_to_config_is_what_the_program_reads_back() -> None:
    s = scaling(
        asg={
            "bounds": {"min": 1, "max": 4},
            "schedule": {"start": "2026-01-01T00:00:00Z", "desired": [1, 2, 2, 4]},
        }
    )
    value = s.to_config()
    assert "serverless" not in value and value["asg"]["schedule"]["start"] == "2026-01-01T00:00:00Z"
    assert StackScaling.model_validate(value) == s


# Properties: any contiguous partition of the step axis is accepted, any gap is not.


@st.composite
def _edges(draw: st.DrawFn) -> list[int]:
    cuts = draw(st.lists(st.integers(1, 100), min_size=0, max_size=5, unique=True))
    return [0, *sorted(cuts)]


def _out_steps(edges: list[int]) -> list[dict[str, Any]]:
    steps = []
    for i, lo in enumerate(edges):
        step: dict[str, Any] = {"lower": lo, "adjustment": i + 1}
        if i + 1 < len(edges):
            step["upper"] = edges[i + 1]
        steps.append(step)
    return steps


@settings(max_examples=60, deadline=None)
@given(_edges())
def test_contiguous_scale_out_steps_are_accepted(edges: list[int]) -> None:
    step = {**STEP, "scale_out": _out_steps(edges)}
    parsed = scaling(asg={"bounds": {"min": 1, "max": 2}, "step": step})
    assert parsed.asg is not None and parsed.asg.step is not None
    assert len(parsed.asg.step.scale_out) == len(edges)


@settings(max_examples=60, deadline=None)
@given(_edges().filter(lambda e: len(e) >= 2), st.integers(1, 5))
def test_a_gap_between_steps_is_rejected(edges: list[int], gap: int) -> None:
    steps = _out_steps(edges)
    steps[0]["upper"] = steps[0]["upper"] - gap if steps[0]["upper"] - gap > 0 else None
    if steps[0]["upper"] is None:
        steps[0].pop("upper")
    with pytest.raises(ValidationError):
        scaling(asg={"bounds": {"min": 1, "max": 2}, "step": {**STEP, "scale_out": steps}})


# The review's schema gaps (issue 11): each is refused by name, never dropped or accepted.

EKS_HPA: dict[str, Any] = {
    "bounds": {"min": 1, "max": 4},
    "target_tracking": {"metric": "gpu_utilisation", "target": 70},
}
KEDA_CRON = {"cron": [{"start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desired": 2}]}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            {"eks": {**EKS_HPA, "keda": {**KEDA_CRON, "min_replicas": 1}}},
            "a KEDA ScaledObject replaces the HPA and ignores target_tracking",
        ),
        (
            {"eks": {"bounds": {"min": 1, "max": 4}, "keda": KEDA_CRON}},
            "eks.keda.min_replicas (0) differs from bounds.min (1)",
        ),
        (
            {
                "eks": {
                    **EKS_HPA,
                    "target_tracking": {
                        "metric": "gpu_utilisation",
                        "target": 70,
                        "disable_scale_in": True,
                    },
                }
            },
            "eks.target_tracking.disable_scale_in: an HPA has no disable_scale_in",
        ),
        (
            {
                "eks": {
                    **EKS_HPA,
                    "target_tracking": {"metric": "gpu_utilisation", "target": 70, "warmup_s": 300},
                }
            },
            "eks.target_tracking.warmup_s: an HPA has no warmup_s",
        ),
        (
            {
                "serverless": {
                    "bounds": {"min": 1, "max": 9},
                    "scheduled": [{"name": "x", "cron": "0 8 * * *", "min": 2, "desired": 3}],
                }
            },
            "serverless.scheduled[x]: a SageMaker scheduled action sets only min and max",
        ),
        (
            {"eks": {"bounds": {"min": 5, "max": 4}, "keda": {**KEDA_CRON, "min_replicas": 5}}},
            "min (5) is above max (4)",
        ),
        (
            {"eks": {"bounds": {"min": 0, "max": 4}, "keda": {**KEDA_CRON, "min_replicas": 6}}},
            "eks.keda.min_replicas (6) is above bounds.max (4)",
        ),
        (
            {
                "eks": {
                    "bounds": {"min": 0, "max": 4},
                    "keda": {"cron": [{"start": "0 8 * * *", "end": "0 9 * * *", "desired": 9}]},
                }
            },
            "eks.keda.cron desired (9) lies outside bounds [0, 4]",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 1, "max": 9},
                    "scheduled": [{"name": "x", "cron": "0 8 * * *", "max": 3, "desired": 5}],
                }
            },
            "scheduled[x]: desired (5) is above max (3)",
        ),
        (
            {
                "asg": {
                    "bounds": {"min": 2, "max": 9},
                    "schedule": {"start": "2026-12-01T00:00:00Z", "desired": [2, 1, 3]},
                }
            },
            "asg.schedule: value 1 is below bounds.min (2)",
        ),
        (
            {
                "eks": {
                    **EKS_HPA,
                    "hpa_behavior": {
                        "scale_down": {"stabilization_window_s": 300, "tolerance": 0.05}
                    },
                }
            },
            "eks.hpa_behavior.scale_down.tolerance: a per-HPA tolerance needs the alpha",
        ),
    ],
    ids=[
        "keda-drops-target-tracking",
        "keda-drops-bounds-min",
        "eks-disable-scale-in",
        "eks-warmup",
        "serverless-desired-beside-min",
        "bounds-inverted",
        "keda-min-above-max",
        "cron-desired-above-max",
        "scheduled-desired-above-its-max",
        "schedule-below-min",
        "eks-tolerance",
    ],
)
def test_review_gaps_are_refused_by_name(targets: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        scaling(**targets)
    assert message in str(err.value)


def test_a_made_up_policy_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown policy kind 'magic'; known kinds: "):
        StackScaling.model_validate(
            {"source": {**SOURCE, "policy_kind": "magic"}, "asg": {"bounds": {"min": 1, "max": 2}}}
        )


def test_a_schedule_in_the_past_is_refused_given_now() -> None:
    data = {
        "source": SOURCE,
        "asg": {
            "bounds": {"min": 2, "max": 24},
            "schedule": {"start": "2026-11-23T00:00:00Z", "desired": [2, 5, 2]},
        },
    }
    StackScaling.model_validate(data)  # no clock: the schema alone cannot tell
    with pytest.raises(ValidationError, match=r"asg.schedule: starts 2026-11-23T00:00:00\+00:00"):
        StackScaling.model_validate(data, context={"now": datetime(2026, 12, 2, tzinfo=UTC)})
    fresh = StackScaling.model_validate(
        data, context={"now": datetime(2026, 11, 22, 23, tzinfo=UTC)}
    )
    assert fresh.asg is not None and fresh.asg.schedule is not None
    assert fresh.asg.schedule.end == datetime(2026, 11, 23, 3, tzinfo=UTC)


def test_eks_is_written_without_aws_only_fields_and_reads_back() -> None:
    s = scaling(eks=EKS_HPA)
    tracking = s.to_config()["eks"]["target_tracking"]
    assert tracking == {"metric": "gpu_utilisation", "target": 70.0}
    assert StackScaling.model_validate(s.model_dump()) == s
    assert StackScaling.model_validate_json(s.model_dump_json()) == s
    # On ASG the same fields are AWS's and are kept.
    asg = scaling(
        asg={**EKS_HPA, "target_tracking": {**EKS_HPA["target_tracking"], "warmup_s": 420}}
    )
    assert asg.to_config()["asg"]["target_tracking"]["warmup_s"] == 420
