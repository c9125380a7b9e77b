"""Compiled per-second model of a serverless endpoint (SageMaker serverless semantics).

Fluid quantities, one step per second:

* `busy` instances (one request each) drain as a fluid M/G/infinity: a share
  1 - exp(-1 / S) of them finishes each second, S the mean batch-1 service time.
  A request admitted cold holds its new instance through the cold start first
  (`V_STARTING`) and joins `busy` when it ends, so no arrival takes an instance
  that is still starting (the SimPy engine cold-starts one per such arrival).
* `instances` (warm, idle or busy) is the larger of the provisioned concurrency and
  the running maximum of `busy` over the last `keep_alive_s` seconds: an on-demand
  instance lives `keep_alive_s` after it last went idle, and the newest-idle-first
  routing the SimPy engine (and SimFaaS) use keeps exactly the peak busy count warm.
* An arrival takes an idle warm instance if there is one (no delay), else
  cold-starts a new one (`cold_start_s` mean added to its latency) while fewer than
  `max_replicas` instances exist, else it is throttled (dropped).
* Billing: busy instance-seconds x memory x price per GB-second (the cold start is
  not billed), plus provisioned concurrency x memory x its price, per second.
* In flight (`V_IN_FLIGHT`, what a policy reads as `spillover_in_flight`): the busy
  instances plus the requests still in their cold start, as the SimPy engine counts
  a request from its arrival to its end. Each second's cold starts are kept in a
  ring (`cw`, `cold_ring_len` seconds).

`sim.fluid.kernel.advance` calls `sv_second` for a spillover endpoint, and numba's
on-disk cache (`cache=True`) checks only the source file of the function it
compiled: after editing this module, remove `sim/fluid/__pycache__/kernel.*.nb*`
(or touch kernel.py), or `advance` keeps running the old `sv_second`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.fluid.latency import record
from sim.workload.model import FloatArray

# sv_params indices
V_MAX = 0
V_KEEP_ALIVE_S = 1
V_COLD_S = 2
V_SLO_S = 3
V_THROTTLE_DROPS = 4  # 1: a throttled request is dropped (main pool); 0: it stays queued
N_VPARAMS = 5

# sv_state indices
V_BUSY = 0
V_INSTANCES = 1
V_PROVISIONED = 2  # provisioned concurrency that is initialised (ready)
V_COLD_STARTS = 3
V_BUSY_S = 4
V_PROV_S = 5  # configured provisioned concurrency x seconds (billed)
V_DQ_HEAD = 6
V_DQ_TAIL = 7
V_CONFIGURED = 8  # configured provisioned concurrency (billed from the request)
V_ARRIVALS = 9
V_SERVED = 10
V_DROPPED = 11
V_ATTAINED = 12
V_LAT_S = 13
V_INSTANCE_S = 14
V_IN_FLIGHT = 15  # requests on the endpoint at the end of the second: busy + in a cold start
V_STARTING = 16  # requests in their cold start at the end of the second (each holds an instance)
V_OCCUPIED_S = 17  # instance-seconds busy or cold-starting (the utilisation's numerator)
N_VSTATE = 18

_EXP_Q = np.zeros(1)  # no queueing wait on a serverless endpoint (one request per instance)


def cold_ring_len(cold_s: float) -> int:
    """Seconds of cold starts `sv_second` keeps: a cohort started within second s - k is
    still in its cold start at s + 1 for a share clamp(cold_s - k, 0, 1) of it."""
    return math.ceil(cold_s) + 1


@numba.njit(cache=True, error_model="numpy")
def sv_second(
    s: int,
    offered: float,
    service_s: float,
    strata: FloatArray,
    vp: FloatArray,
    vs: FloatArray,
    dq_t: FloatArray,
    dq_v: FloatArray,
    cw: FloatArray,
    ihist: FloatArray,
) -> float:
    """One second of the endpoint: admit up to `offered` arrivals; return those admitted."""
    keep = vp[V_KEEP_ALIVE_S]
    max_c = vp[V_MAX]
    busy = vs[V_BUSY]
    starting = vs[V_STARTING]  # in a cold start since an earlier second
    # drain: a 1 - exp(-1/S) share of the busy instances completes this second
    decay = math.exp(-1.0 / max(service_s, 1e-9))
    busy *= decay
    idle = max(vs[V_INSTANCES] - busy - starting, 0.0)
    warm = min(offered, idle)
    cold = min(offered - warm, max(max_c - vs[V_INSTANCES], 0.0))
    cold = max(cold, 0.0)
    admitted = warm + cold
    throttled = offered - admitted
    # instances needed: each admitted request holds one when it starts, each
    # request still in its cold start holds its own
    peak = busy + starting + admitted
    # requests admitted cold within the last cold start, uniformly within their second,
    # that are still starting at s + 1; those whose cold start ended this second start
    # serving, as the warm ones do
    cold_s = vp[V_COLD_S]
    n_cw = cw.shape[0]
    cw[s % n_cw] = cold
    still = 0.0
    for back in range(min(n_cw, s + 1)):
        share = min(max(cold_s - back, 0.0), 1.0)
        still += cw[(s - back) % n_cw] * share
    started = warm + max(starting + cold - still, 0.0)
    # the starting requests join the drain state for the part of the second they run
    # (steady state: rate x S, the billed busy time)
    busy += started * service_s * (1.0 - decay)
    vs[V_COLD_STARTS] += cold
    vs[V_SERVED] += admitted
    if vp[V_THROTTLE_DROPS] > 0.0:
        vs[V_ARRIVALS] += offered
        vs[V_DROPPED] += throttled
    else:
        vs[V_ARRIVALS] += admitted
    if warm > 0.0:
        att, lat = record(warm, 0.0, 0.0, 1.0, 1.0, strata, vp[V_SLO_S], ihist, _EXP_Q)
        vs[V_ATTAINED] += att
        vs[V_LAT_S] += lat
    if cold > 0.0:
        att, lat = record(
            cold,
            vp[V_COLD_S],
            0.0,
            1.0,
            1.0,
            strata,
            vp[V_SLO_S],
            ihist,
            _EXP_Q,
        )
        vs[V_ATTAINED] += att
        vs[V_LAT_S] += lat
    # sliding maximum of busy over the keep-alive window (monotone deque in a ring)
    size = dq_t.shape[0]
    head = int(vs[V_DQ_HEAD])
    tail = int(vs[V_DQ_TAIL])
    while tail > head and dq_v[(tail - 1) % size] <= peak:
        tail -= 1
    dq_t[tail % size] = s
    dq_v[tail % size] = peak
    tail += 1
    while tail - head > 1 and dq_t[head % size] <= s - keep:
        head += 1
    vs[V_DQ_HEAD] = head
    vs[V_DQ_TAIL] = tail
    warmest = dq_v[head % size]
    instances = max(warmest, vs[V_PROVISIONED], peak)
    vs[V_INSTANCES] = min(instances, max(max_c, peak))
    vs[V_BUSY] = busy
    vs[V_STARTING] = still
    vs[V_IN_FLIGHT] = busy + still  # the SimPy engine counts both in flight
    vs[V_BUSY_S] += busy
    vs[V_OCCUPIED_S] += busy + still
    vs[V_PROV_S] += vs[V_CONFIGURED]
    vs[V_INSTANCE_S] += vs[V_INSTANCES]
    return admitted


@numba.njit(cache=True, error_model="numpy")
def sv_advance(
    t0: int,
    t1: int,
    arrivals: FloatArray,
    prov_ready_s: float,
    blocks: FloatArray,
    block_s: int,
    vp: FloatArray,
    vs: FloatArray,
    dq_t: FloatArray,
    dq_v: FloatArray,
    cw: FloatArray,
    ihist: FloatArray,
) -> None:
    """Seconds [t0, t1) of a serverless main pool; provisioned capacity lands at prov_ready_s.

    `blocks` holds the service strata per block of `block_s` seconds (batch 1).
    """
    for i in range(ihist.shape[0]):
        ihist[i] = 0.0
    blk = -1
    strata = blocks[0]
    service_s = 0.0
    for s in range(t0, t1):
        if s >= prov_ready_s:
            vs[V_PROVISIONED] = vs[V_CONFIGURED]
        if s // block_s != blk:  # a new block: its strata and mean service time
            blk = s // block_s
            strata = blocks[blk]
            service_s = 0.0
            for k in range(strata.shape[1]):
                service_s += strata[0, k] * (strata[1, k] + strata[2, k])
        sv_second(s, arrivals[s], service_s, strata, vp, vs, dq_t, dq_v, cw, ihist)
