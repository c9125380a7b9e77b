"""Requests sized from the arrivals the oracle knows: a family of starts for its search.

The model (`sim.oracle.dp`) plans each planning interval as a stationary queue with
a carried backlog. On long horizons its planning intervals are minutes long and its
plans are verified and cut by replays only a few times; a plain clairvoyant rule then
does better: size each decision interval from the *true* arrival rate of the next
provisioning delay, as a predictive autoscaler would if its forecast were exact. On
ServeGen m-small days 11-14 (`benchmarks/oracle_cases.py`) such a rule met the SLO
0.6 % below the model's verified plan (issue 9's counterexample), and at a finer
rate window about 10 % below.

One member of the family is a window `window_s` and a utilisation cap `u`:

1. the realised arrivals are averaged over aligned windows of `window_s` (short
   enough to follow the traffic, long enough to average out its noise);
2. each window's rate needs `ceil(max(erlang, rate x service / u) / max_batch)`
   replicas: the fewest whose M/M/c (Erlang C) attainment meets the SLO, and no more
   than `u` of the batch slots busy (the predictive policy's `Sizer`, exactly, but
   without its rate grid). A cap above 1 scales the Erlang C slots down by `1 / u`
   instead: the most over a provisioning delay, and the SLO's share of requests that
   may miss, often carry less than Erlang C asks for every window (the bundled
   ServeGen days at 0.90 met with 2.5 % to spare at u = 1);
3. the request at each decision interval is the most any window touching the next
   `lead_s` needs (capacity asked for now serves one provisioning delay later),
   within the pool's bounds.

`planner.oracle` searches `u` with replays until the SLO is just met, and descends
from the plan like from its other starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.capacity.queueing import servers_for_attainment
from sim.workload.model import FloatArray, IntArray


@dataclass(frozen=True)
class RateSizing:
    """How many replicas a request rate needs (the predictive policy's sizing).

    Attributes:
        mean_service_s: Mean time a request holds a batch slot at a full batch.
        max_batch: Batch slots per replica.
        slo_latency_s: The latency objective.
        slo_target: Share of requests that must meet it.
        min_replicas, max_replicas: The pool's bounds (every request lies within).
    """

    mean_service_s: float
    max_batch: int
    slo_latency_s: float
    slo_target: float
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class WindowRates:
    """The realised arrival rate of each aligned window, and what the SLO alone needs.

    Attributes:
        window_s: Length of one window (whole seconds).
        rates: Mean arrivals per second of each window.
        erlang_slots: Per window, the batch slots the M/M/c sizing needs at its rate
            (independent of the utilisation cap, so computed once).
    """

    window_s: int
    rates: FloatArray
    erlang_slots: FloatArray


def window_rates(arrivals: FloatArray, window_s: int, sizing: RateSizing) -> WindowRates:
    """Per-second `arrivals` as mean rates over aligned windows of `window_s` seconds
    (the last window's over its own length), with the Erlang C slots each needs."""
    if window_s < 1:
        raise ValueError(f"window_s must be a whole number of seconds >= 1, got {window_s}")
    seconds = len(arrivals)
    windows = max(1, math.ceil(seconds / window_s))
    padded = np.zeros(windows * window_s)
    padded[:seconds] = arrivals
    lengths = np.full(windows, float(window_s))
    lengths[-1] = max(1, seconds - (windows - 1) * window_s)
    rates = padded.reshape(windows, window_s).sum(axis=1) / lengths
    unique, index = np.unique(rates, return_inverse=True)
    top = (sizing.max_replicas + 1) * sizing.max_batch

    def slots_for(rate: float) -> int:
        if not rate > 0.0:
            return 0
        return servers_for_attainment(
            rate, sizing.mean_service_s, sizing.slo_latency_s, sizing.slo_target, max_servers=top
        )

    slots = np.array([slots_for(float(rate)) for rate in unique], dtype=np.float64)
    return WindowRates(window_s, rates, slots[index])


def rate_sized_requests(
    windows: WindowRates,
    sizing: RateSizing,
    utilisation: float,
    *,
    tick_s: float,
    ticks: int,
    lead_s: float,
) -> IntArray:
    """Replicas to request at each of `ticks` decision intervals (see the module
    docstring): the most any window touching [t, t + lead_s] needs at `utilisation`
    (the higher, the fewer replicas)."""
    if not utilisation > 0.0:
        raise ValueError(f"utilisation must be positive, got {utilisation}")
    if utilisation <= 1.0:
        busy = windows.rates * sizing.mean_service_s / utilisation
        slots = np.maximum(windows.erlang_slots, busy)
    else:  # Erlang C slots always exceed the busy ones: continuous at 1
        slots = windows.erlang_slots / utilisation
    need = np.ceil(slots / sizing.max_batch - 1e-9)
    need = np.clip(need, sizing.min_replicas, sizing.max_replicas).astype(np.int64)
    last_window = len(need) - 1
    starts_s = np.arange(ticks) * tick_s
    first = np.minimum((starts_s // windows.window_s).astype(np.int64), last_window)
    last = np.minimum(((starts_s + lead_s) // windows.window_s).astype(np.int64), last_window)
    span = int((last - first).max()) + 1 if ticks else 1
    # the windows touching each tick's lead, as columns (past the last: the last again)
    columns = np.minimum(first[:, None] + np.arange(span)[None, :], last[:, None])
    return np.asarray(need[columns].max(axis=1), dtype=np.int64)
