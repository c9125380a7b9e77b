"""What every fluid run of one workload shares, built once per engine.

Sampling a workload's arrivals and deriving its service strata, smoothed rate,
per-block strata and per-second work cost about 0.2 s on 14 days; a what-if runs
every policy on the same workload and seed, so an engine keeps them (`cached`).
So are the decision intervals and the demand observed in each (`Timeline`, 40 ms
a run on 14 days, 3-5 % of a policy's run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from sim.capacity.service import ServiceModel
from sim.engine import token_profile
from sim.fluid.inputs import (
    SecondInputs,
    ServiceStrata,
    block_strata,
    interval_bounds,
    interval_demand,
    service_strata,
    smoothed_rate,
)
from sim.fluid.work import CohortWork, cohort_work
from sim.workload.model import FloatArray, TokenProfile, Workload

#: (workload, seed) pairs whose sampled arrivals an engine keeps for reuse.
CACHE_RUNS = 4

#: A (workload, seed)'s sampled arrivals and the engine generator's state after sampling.
Sampled = tuple[Workload, SecondInputs, dict[str, Any]]
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def cached(
    cache: dict[_Key, tuple[object, _Value]], key: _Key, owner: object, build: Callable[[], _Value]
) -> _Value:
    """`cache[key]`'s value, built when missing; `owner` is the object whose `id` is in
    the key (an id can be reused once its object is freed, so the entry keeps it and
    compares). Holds `CACHE_RUNS` entries, the oldest dropped first."""
    hit = cache.get(key)
    if hit is None or hit[0] is not owner:
        hit = (owner, build())
        if len(cache) >= CACHE_RUNS:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit[1]


class Prepared(NamedTuple):
    """What every run of one (sampled workload, service model) shares: built once."""

    tokens: TokenProfile
    strata: ServiceStrata
    lam: FloatArray
    blocks: FloatArray
    work: CohortWork
    #: Arrivals before each second (`window_sums`), or empty where a running sum
    #: would round differently.
    arrivals_before: FloatArray
    #: The longest service time, at a full batch (`longest_service_s`).
    longest_service_s: float


class Timeline(NamedTuple):
    """What every run of one (sampled workload, decision interval) shares: built once.

    Attributes:
        bounds: Whole-second bounds of the decision intervals (`interval_bounds`).
        demands: Mean arrivals per second a policy observes in each interval
            (`interval_demand`; None inside a collection gap).
        demand_rps: `demands` with 0 for None (the series' column).
    """

    bounds: list[int]
    demands: list[float | None]
    demand_rps: FloatArray


def timeline(inputs: SecondInputs, interval_s: float) -> Timeline:
    """The decision intervals of a run over `inputs` and the demand in each."""
    bounds = interval_bounds(inputs.duration_s, interval_s)
    demands = interval_demand(inputs, bounds)
    demand_rps = np.array([0.0 if d is None else d for d in demands], dtype=np.float64)
    return Timeline(bounds.tolist(), demands, demand_rps)


def longest_service_s(
    blocks: FloatArray, work: CohortWork, slowdown_per_slot: float, max_batch: int
) -> float:
    """The longest service time of a run, at a full batch: a stratum's or a request's
    (the kernel never schedules a completion further ahead)."""
    step = 1.0 + slowdown_per_slot * (max_batch - 1)
    longest = float((blocks[:, 1, :] + blocks[:, 2, :] * step).max(initial=1.0))
    return max(longest, work.longest_s(step))


def prepare(
    service: ServiceModel,
    workload: Workload,
    inputs: SecondInputs,
    *,
    rate_window_s: int,
    size_block_s: int,
) -> Prepared:
    """The service strata, smoothed rate, per-block strata and per-second work of a run."""
    tokens = token_profile(workload)
    strata = service_strata(service, workload, tokens)
    blocks = block_strata(service, workload, tokens, inputs.duration_s, size_block_s, strata)
    work = cohort_work(service, workload, tokens, inputs.duration_s)
    return Prepared(
        tokens=tokens,
        strata=strata,
        lam=smoothed_rate(inputs.arrivals, rate_window_s),
        blocks=blocks,
        work=work,
        arrivals_before=window_sums(inputs.arrivals),
        longest_service_s=longest_service_s(
            blocks, work, strata.slowdown_per_slot, service.max_batch
        ),
    )


#: Largest total below which float64 adds and subtracts whole counts exactly.
_EXACT_TOTAL = 2.0**53


def window_sums(arrivals: FloatArray) -> FloatArray:
    """Arrivals before each second (n + 1 values), so the kernel's long rate window
    (`sim.fluid.kernel`, `RATE_RELAXATIONS`) sums any range in O(1) instead of
    sliding one second at a time (two thirds of a 14-day run's time, where the
    window's width follows the pool's utilisation second by second).

    The difference of two of them is the window's running sum bit for bit only when
    every partial sum is exact: whole counts (every sampled or traced run) below
    2^53. Otherwise empty, and the kernel slides the window as before.
    """
    whole = bool(np.array_equal(arrivals, np.floor(arrivals))) and bool((arrivals >= 0).all())
    if not whole or float(arrivals.sum()) >= _EXACT_TOTAL:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(arrivals)])
