"""Workloads: trace loaders, operations, synthetic generators and envelope sampling.

Public API:
    load_trace, build_workload: read a trace or a scenario's workload block.
    slice_window, scale_to_mean, modulate, concat, mean_rps, rate_series, observed_s:
        pure ops.
    to_requests: seeded request-level arrivals from any workload.
    generate: a synthetic `RateEnvelope` from a `SyntheticSpec`.
"""

from __future__ import annotations

from sim.workload.arrivals import to_requests
from sim.workload.build import FORMATS, build_workload, load_trace
from sim.workload.model import (
    ArrivalPattern,
    ClientFits,
    RateEnvelope,
    RequestTrace,
    TokenProfile,
    Workload,
)
from sim.workload.ops import (
    concat,
    mean_rps,
    modulate,
    observed_s,
    rate_series,
    scale_to_mean,
    slice_window,
)
from sim.workload.synthetic import generate

__all__ = [
    "FORMATS",
    "ArrivalPattern",
    "ClientFits",
    "RateEnvelope",
    "RequestTrace",
    "TokenProfile",
    "Workload",
    "build_workload",
    "concat",
    "generate",
    "load_trace",
    "mean_rps",
    "modulate",
    "observed_s",
    "rate_series",
    "scale_to_mean",
    "slice_window",
    "to_requests",
]
