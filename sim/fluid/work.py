"""The service work of each second's own requests, for the slot occupancy.

The policies the engines drive react to utilisation measured over one decision
interval (15 s): the busy share of the ready replicas' batch slots. In the SimPy
engine that is the service time of the very requests that arrived, and at 10
requests per second a 15 s interval holds too few of them for a block's strata
(`inputs.block_strata`, 60 s) to stand in: the mean work of a 15 s window of the
Azure conv hour swings by tens of percent around its minute's mean, and a
replica's throughput in saturation follows the durations of the requests it
actually started. A trace with token counts therefore hands the kernel each
second's requests (prefill and decode seconds at batch 1, in arrival order); the
kernel schedules each request's completion from them. Latency and SLO attainment
keep the block's strata, whose tail a handful of requests cannot describe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim.capacity.service import ServiceModel, TokenService
from sim.fluid.inputs import token_samples
from sim.workload.model import FloatArray, RequestTrace, TokenProfile, Workload


@dataclass(frozen=True)
class CohortWork:
    """Per-request service parts, grouped by arrival second (CSR layout).

    Attributes:
        offsets: Requests arriving in second s are [offsets[s], offsets[s + 1]);
            shape (duration_s + 1,). All zeros when the workload has no per-request
            tokens: the kernel then uses the block's strata.
        base_s: Prefill seconds per request (batch-independent).
        slope_s: Decode seconds per request at batch 1 (times the step factor).
    """

    offsets: NDArray[np.int64]
    base_s: FloatArray
    slope_s: FloatArray

    @property
    def per_request(self) -> bool:
        """Whether the workload gave per-request work (else the strata stand in)."""
        return self.base_s.size > 0

    def longest_s(self, step: float) -> float:
        """The longest request's service time at decode step factor `step`."""
        if self.base_s.size == 0:
            return 0.0
        return float((self.base_s + self.slope_s * step).max())


def cohort_work(
    service: ServiceModel, workload: Workload, profile: TokenProfile, duration_s: int
) -> CohortWork:
    """Each second's requests' service parts, or an empty `CohortWork` without tokens.

    Args:
        service: The pool's service model (only `TokenService` has per-request work).
        workload: The run's workload (per-request tokens only for a `RequestTrace`).
        profile: Token profile (fills output tokens a trace lacks).
        duration_s: Seconds of the run.
    """
    empty = CohortWork(np.zeros(duration_s + 1, dtype=np.int64), np.zeros(0), np.zeros(0))
    if (
        not isinstance(workload, RequestTrace)
        or workload.input_tokens is None
        or not isinstance(service, TokenService)
        or workload.arrival_s.size == 0
    ):
        return empty
    inputs, outputs = token_samples(workload, profile)
    seconds = np.floor(workload.arrival_s).astype(np.int64)
    keep = (seconds >= 0) & (seconds < duration_s)
    order = np.argsort(seconds[keep], kind="stable")  # arrival order within a second
    seconds = seconds[keep][order]
    base = (service.prefill_s_per_1k_tokens * inputs[keep] / 1000.0)[order]
    slope = (service.decode_s_per_token * outputs[keep])[order]
    offsets = np.searchsorted(seconds, np.arange(duration_s + 1)).astype(np.int64)
    return CohortWork(offsets, np.ascontiguousarray(base), np.ascontiguousarray(slope))
