"""Flags that simulate, tune and sweep share: the cluster, the SLO and the time unit.

Declared once as `Annotated` aliases so each command lists them in its signature
(typer reads parameters from the signature) without repeating help texts, and
`cluster_overrides` turns them into the `ClusterOverrides` every command applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli_app import TraceFormatChoice
from sim.errors import UserInputError

if TYPE_CHECKING:
    from planner.scenario_input import ClusterOverrides

TraceFormatFlag = Annotated[TraceFormatChoice | None, typer.Option(help="Format of --trace.")]
BinFlag = Annotated[float | None, typer.Option(min=0.0, help="Bin width (s) for rate-csv / nab.")]
InstanceTypeFlag = Annotated[
    str | None,
    typer.Option(help="Instance type of the pool, e.g. g5.xlarge, g5.12xlarge, p4d.24xlarge."),
]
MinReplicasFlag = Annotated[int | None, typer.Option(min=0, help="Pool lower bound (replicas).")]
MaxReplicasFlag = Annotated[int | None, typer.Option(min=1, help="Pool upper bound (replicas).")]
InitialReplicasFlag = Annotated[
    int | None, typer.Option(min=0, help="Replicas ready at t = 0 (default: sized or min).")
]
SloLatencyFlag = Annotated[
    float | None, typer.Option(help="SLO latency objective in seconds (> 0).")
]
SloTargetFlag = Annotated[
    float | None,
    typer.Option(help="Share of requests that must meet the latency objective, in (0, 1]."),
]
DecisionIntervalFlag = Annotated[
    float | None, typer.Option(help="Seconds between scaling decisions (> 0).")
]
TimeUnitFlag = Annotated[
    str | None,
    typer.Option(
        help="Unit of numeric timestamps in --trace: s, ms or us (default: seconds; "
        "values that look like ms or us are refused until you say)."
    ),
]


def cluster_overrides(
    instance_type: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    slo_latency_s: float | None,
    slo_target: float | None,
    decision_interval_s: float | None,
    initial_replicas: int | None = None,
) -> ClusterOverrides:
    """The cluster flags as overrides, range-checked with messages that name the flag."""
    from planner.scenario_input import ClusterOverrides

    if slo_latency_s is not None and not slo_latency_s > 0:
        raise UserInputError(f"--slo-latency-s {slo_latency_s:g}: give a latency > 0 seconds")
    if slo_target is not None and not 0 < slo_target <= 1:
        raise UserInputError(
            f"--slo-target {slo_target:g}: give a share in (0, 1], e.g. 0.95 for 95 %"
        )
    if decision_interval_s is not None and not decision_interval_s > 0:
        raise UserInputError(f"--decision-interval-s {decision_interval_s:g}: give seconds > 0")
    if min_replicas is not None and max_replicas is not None and min_replicas > max_replicas:
        raise UserInputError(
            f"--min-replicas {min_replicas} is above --max-replicas {max_replicas}"
        )
    return ClusterOverrides(
        instance_type=instance_type,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        initial_replicas=initial_replicas,
        slo_latency_s=slo_latency_s,
        slo_target=slo_target,
        decision_interval_s=decision_interval_s,
    )


def time_unit_value(text: str | None) -> str | None:
    """`--time-unit`, checked (s, ms or us)."""
    from sim.workload.formats import TIME_UNITS

    if text is None:
        return None
    unit = {"µs": "us", "sec": "s", "msec": "ms", "usec": "us"}.get(text, text)
    if unit not in TIME_UNITS:
        raise UserInputError(f"--time-unit {text!r}: use one of {', '.join(TIME_UNITS)}")
    return unit
