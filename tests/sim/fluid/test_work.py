"""Per-request work by arrival second, and the exact slot occupancy built from it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.capacity.service import ExponentialService, TokenService
from sim.engine import token_profile
from sim.fluid.slots import occupy
from sim.fluid.work import cohort_work
from sim.workload.model import RequestTrace

from .conftest import poisson_envelope

SERVICE = TokenService(prefill_s_per_1k_tokens=0.1, decode_s_per_token=0.02, max_batch=8)


def _trace() -> RequestTrace:
    return RequestTrace(
        arrival_s=np.array([0.2, 0.7, 2.5, 2.6, 2.9]),
        duration_s=4.0,
        input_tokens=np.array([1000, 2000, 0, 500, 100], dtype=np.int64),
        output_tokens=np.array([100, 50, 10, 0, 400], dtype=np.int64),
    )


def test_cohort_work_groups_each_seconds_requests_in_arrival_order() -> None:
    trace = _trace()
    work = cohort_work(SERVICE, trace, token_profile(trace), 4)
    assert work.per_request
    assert work.offsets.tolist() == [0, 2, 2, 5, 5]
    assert work.base_s == pytest.approx([0.1, 0.2, 0.0, 0.05, 0.01])
    assert work.slope_s == pytest.approx([2.0, 1.0, 0.2, 0.0, 8.0])
    assert work.longest_s(1.5) == pytest.approx(0.01 + 8.0 * 1.5)


@pytest.mark.parametrize(
    "case", ["envelope", "exponential-service", "no-tokens"], ids=lambda c: str(c)
)
def test_without_per_request_tokens_the_strata_stand_in(case: str) -> None:
    trace = _trace()
    if case == "envelope":
        workload = poisson_envelope(2.0, 60.0)
        work = cohort_work(SERVICE, workload, token_profile(workload), 60)
    elif case == "exponential-service":
        work = cohort_work(ExponentialService(mean_s=1.0), trace, token_profile(trace), 4)
    else:
        bare = RequestTrace(arrival_s=trace.arrival_s, duration_s=4.0)
        work = cohort_work(SERVICE, bare, token_profile(bare), 4)
    assert not work.per_request
    assert not work.offsets.any()


def _hold_profile(duration_s: float, seconds: int = 12) -> tuple[list[float], float]:
    """Busy slot-seconds per second of one request started uniformly in second 0."""
    offsets = np.array([0, 1, 1], dtype=np.int64)
    base, slope = np.array([duration_s]), np.array([0.0])
    strata = np.zeros((3, 1))
    done, done_busy = np.zeros(seconds + 3), np.zeros(seconds + 3)
    busy0, held = occupy(1.0, 0, 0, 1.0, strata, offsets, base, slope, done, done_busy)
    per_second = [busy0]
    for t in range(1, seconds):
        per_second.append(held - done[t] + done_busy[t])
        held -= done[t]
    return per_second, held


@pytest.mark.parametrize("duration_s", [0.4, 1.0, 2.5, 7.25])
def test_a_request_holds_its_slot_for_exactly_its_service_time(duration_s: float) -> None:
    per_second, left = _hold_profile(duration_s)
    # uniform start within second 0: busy time integrates to the service time and
    # the slot is free once the latest possible end (1 + d) has passed
    assert sum(per_second) == pytest.approx(duration_s)
    assert left == pytest.approx(0.0, abs=1e-12)
    ends_by = int(np.ceil(1.0 + duration_s))
    assert all(b == pytest.approx(0.0, abs=1e-12) for b in per_second[ends_by:])
    if duration_s >= 2.0:
        assert per_second[0] == pytest.approx(0.5)  # half the second on average
        assert per_second[1] == pytest.approx(1.0)  # then the whole second
