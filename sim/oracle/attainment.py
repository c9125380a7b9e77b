"""Per-interval SLO attainment of each capacity level: the oracle's capacity model.

For interval t with arrival rate lambda_t and a pool of r replicas (c = r x
max_batch slots), the share of requests within the SLO is the stationary M/M/c
attainment the fluid engine uses when there is no backlog: Erlang C for the
probability of waiting, an exponential wait with rate (c / S)(1 - rho) scaled by the
Allen-Cunneen factor, and the service-time strata at the batch fill the load brings
(mean occupancy per replica plus half a slot, as in `sim.fluid.kernel`). A level
with rho >= 1 attains nothing: the oracle never plans an overloaded interval.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.fluid.slots import erlang_c_fast, strata_means
from sim.workload.model import FloatArray


@numba.njit(cache=True, error_model="numpy")
def level_attainment(
    lam_rps: float,
    replicas: int,
    max_batch: int,
    strata: FloatArray,
    slowdown_per_slot: float,
    slo_s: float,
    ac_factor: float,
) -> float:
    """Share of requests within `slo_s` at `lam_rps` on `replicas` replicas (0 if overloaded)."""
    if lam_rps <= 0.0:
        return 1.0
    if replicas <= 0:
        return 0.0
    mean_base, mean_slope = strata_means(strata)
    batch = batch_fill(lam_rps, replicas, max_batch, mean_base, mean_slope, slowdown_per_slot)
    if batch < 0.0:  # the fill diverges: every slot is taken
        batch = float(max_batch)
    step = 1.0 + slowdown_per_slot * (batch - 1.0)
    service_s = mean_base + mean_slope * step
    slots = replicas * max_batch
    offered = lam_rps * service_s
    if offered >= slots:
        return 0.0
    c_wait = erlang_c_fast(slots, offered)
    rho = offered / slots
    theta = slots / service_s * (1.0 - rho) / ac_factor
    met = 0.0
    for k in range(strata.shape[1]):
        budget = slo_s - (strata[1, k] + strata[2, k] * step)
        if budget >= 0.0:
            met += strata[0, k] * (1.0 - c_wait * math.exp(-theta * budget))
    return met


@numba.njit(cache=True, parallel=True, error_model="numpy")
def attainment_table(
    lam_rps: FloatArray,
    block_of: np.ndarray,
    blocks: FloatArray,
    replicas_of_level: np.ndarray,
    max_batch: int,
    slowdown_per_slot: float,
    slo_s: float,
    ac_factor: FloatArray,
) -> np.ndarray:
    """(intervals, levels) attainment; a level's value is copied upward once it settles."""
    n_int = lam_rps.shape[0]
    n_lvl = replicas_of_level.shape[0]
    table = np.zeros((n_int, n_lvl), dtype=np.float32)
    for t in numba.prange(n_int):
        strata = blocks[block_of[t]]
        prev = -1.0
        settled = False
        for j in range(n_lvl):
            if settled:
                table[t, j] = prev
                continue
            value = level_attainment(
                lam_rps[t],
                replicas_of_level[j],
                max_batch,
                strata,
                slowdown_per_slot,
                slo_s,
                ac_factor[t],
            )
            table[t, j] = value
            if prev >= 0.0 and value > 0.0 and value - prev < 1e-7:
                settled = True
            prev = value
    return table


@numba.njit(cache=True, parallel=True, error_model="numpy")
def stable_levels(
    lam_rps: FloatArray,
    block_of: np.ndarray,
    blocks: FloatArray,
    replicas_of_level: np.ndarray,
    max_batch: int,
    slowdown_per_slot: float,
) -> np.ndarray:
    """Each interval's lowest level with offered load below its slots (len(levels) if none)."""
    n_int = lam_rps.shape[0]
    out = np.empty(n_int, dtype=np.int64)
    for t in numba.prange(n_int):
        out[t] = first_stable(
            lam_rps[t], replicas_of_level, max_batch, blocks[block_of[t]], slowdown_per_slot
        )
    return out


@numba.njit(cache=True, error_model="numpy")
def first_stable(
    lam_rps: float,
    replicas_of_level: np.ndarray,
    max_batch: int,
    strata: FloatArray,
    slowdown_per_slot: float,
) -> int:
    """Lowest level whose slots exceed the offered load (len(levels) if none)."""
    if lam_rps <= 0.0:
        return 0
    mean_base, mean_slope = strata_means(strata)
    for j in range(replicas_of_level.shape[0]):
        replicas = replicas_of_level[j]
        if replicas <= 0:
            continue
        batch = batch_fill(lam_rps, replicas, max_batch, mean_base, mean_slope, slowdown_per_slot)
        if batch < 0.0:
            continue
        service_s = mean_base + mean_slope * (1.0 + slowdown_per_slot * (batch - 1.0))
        if lam_rps * service_s < replicas * max_batch:
            return j
    return replicas_of_level.shape[0]


@numba.njit(cache=True, error_model="numpy")
def batch_fill(
    lam_rps: float,
    replicas: int,
    max_batch: int,
    mean_base: float,
    mean_slope: float,
    slowdown_per_slot: float,
) -> float:
    """Mean batch occupancy per replica at `lam_rps` (plus half a slot), in [1, max_batch].

    Occupancy is rate x service time per replica, and the service time grows with the
    occupancy (`slowdown_per_slot`), so the fill solves a linear fixed point. It
    returns -1.0 when that has no solution (the fill diverges): the callers decide
    what a saturated level means.
    """
    k_slope = mean_slope * slowdown_per_slot
    denom = 1.0 - lam_rps * k_slope / replicas
    if denom <= 0.0:
        return -1.0
    batch = (lam_rps * (mean_base + mean_slope - k_slope) / replicas + 0.5) / denom
    return min(max(batch, 1.0), float(max_batch))
