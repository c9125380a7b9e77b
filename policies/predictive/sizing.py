"""From a request rate to serving replicas, through the capacity model.

A replica with `max_batch` batch slots is `max_batch` M/M/c servers
(`sim.capacity.queueing`); the replicas a rate needs are the fewest whose Erlang C
attainment meets the SLO target:
`ceil(servers_for_attainment(rate, mean_service_s, slo_latency_s, slo_target) / max_batch)`.
Traffic burstier than Poisson, or service times more variable than exponential,
queue longer than M/M/c predicts. The Allen-Cunneen approximation (Allen 1990,
"Probability, Statistics and Queueing Theory", section 6.3) scales the M/M/c
wait by `(ca2 + cs2) / 2` (squared coefficients of variation of inter-arrival
and service times); the sizer applies it by shrinking the wait budget of the SLO
by the same factor (`variability`; 1 is M/M/c).

An LLM replica also slows down as its batch fills (`TokenService.batch_slowdown`),
so a pool run at full batch misses a latency SLO on long requests even with no
queue at all. `max_utilisation` caps the batch-slot utilisation the sizing may
plan for: replicas >= rate * mean_service_s / (max_batch * max_utilisation), the
same quantity target-tracking autoscalers hold at their target.

The binary search behind it costs milliseconds, and a policy sizes every decision
interval, so rates are rounded *up* to a geometric grid (1% steps by default) and
memoised: the answer is conservative by at most one grid step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sim.capacity.queueing import servers_for_attainment
from sim.contract import Observation, PolicyContext, window_demand_rps

DEFAULT_GRID_STEP = 0.01


@dataclass(frozen=True)
class SizingConfig:
    """Corrections of the M/M/c sizing (see the module docstring).

    Attributes:
        variability: Allen-Cunneen factor (ca2 + cs2) / 2; 1 is M/M/c.
        max_utilisation: Highest planned batch-slot utilisation; 1 is no cap.
    """

    variability: float = 1.0
    max_utilisation: float = 1.0


class Sizer:
    """Replicas needed for a request rate under one context's capacity model and SLO.

    Args:
        mean_service_s: Mean time a request holds a batch slot (full batch).
        slo_latency_s: Latency objective.
        slo_target: Share of requests that must meet it.
        max_batch: Batch slots per replica.
        max_replicas: Pool bound; the search stops one replica above it.
        grid_step: Relative rate rounding for the memo (0.01 = 1%).
        variability: Allen-Cunneen factor (ca2 + cs2) / 2 dividing the wait budget.
        max_utilisation: Highest planned batch-slot utilisation (1 = no cap).
    """

    def __init__(
        self,
        mean_service_s: float,
        slo_latency_s: float,
        slo_target: float,
        max_batch: int,
        max_replicas: int,
        grid_step: float = DEFAULT_GRID_STEP,
        variability: float = 1.0,
        max_utilisation: float = 1.0,
    ) -> None:
        if not 0.0 < max_utilisation <= 1.0:
            raise ValueError(f"max_utilisation must lie in (0, 1], got {max_utilisation}")
        self.max_utilisation = max_utilisation
        if mean_service_s <= 0 or slo_latency_s <= 0 or max_batch < 1 or variability <= 0:
            raise ValueError(
                "mean_service_s, slo_latency_s, max_batch and variability must be positive"
            )
        self.mean_service_s = mean_service_s
        self.slo_latency_s = slo_latency_s
        self.variability = variability
        # P(W > t) ~ C exp(-(c mu - lambda) t / k): the same as M/M/c with budget t / k.
        wait_budget_s = (slo_latency_s - mean_service_s) / variability
        self._effective_slo_s = mean_service_s + wait_budget_s
        self.slo_target = slo_target
        self.max_batch = max_batch
        self.max_replicas = max_replicas
        self._log_step = math.log1p(grid_step)
        self._memo: dict[int, int] = {}
        self._max_rate_memo: dict[int, float] = {}
        self._highest_memo: dict[int, float] = {}

    @classmethod
    def from_context(cls, context: PolicyContext, sizing: SizingConfig | None = None) -> Sizer:
        sizing = sizing or SizingConfig()
        return cls(
            context.mean_service_s,
            context.slo_latency_s,
            context.slo_target,
            context.max_batch,
            context.max_replicas,
            variability=sizing.variability,
            max_utilisation=sizing.max_utilisation,
        )

    def replicas(self, rate_rps: float) -> int:
        """Fewest replicas meeting the SLO at `rate_rps` (max_replicas + 1 if none do)."""
        if not rate_rps > 0.0:
            return 0
        return self._at_step(math.ceil(math.log(rate_rps) / self._log_step))

    def _at_step(self, step: int) -> int:
        """`replicas` of every rate whose grid step is `step` (memoised)."""
        cached = self._memo.get(step)
        if cached is not None:
            return cached
        grid_rate = math.exp(step * self._log_step)
        servers = servers_for_attainment(
            grid_rate,
            self.mean_service_s,
            self._effective_slo_s,
            self.slo_target,
            max_servers=(self.max_replicas + 1) * self.max_batch,
        )
        busy_slots = grid_rate * self.mean_service_s / self.max_utilisation
        replicas = math.ceil(max(servers, busy_slots) / self.max_batch - 1e-9)
        self._memo[step] = replicas
        return replicas

    def highest_rate(self, replicas: int) -> float:
        """The highest grid rate sized to at most `replicas`, on the grid's own steps: a
        rate is sized at step ceil(log(rate) / log_step), and every rate of a step up to
        this one's asks for at most `replicas`, every rate of a higher step for more
        (`replicas` does not fall as the step rises). A rate's step rounds at its edge:
        callers keep a part in 10^6 inside it. 0 when the lowest rate asks for more,
        inf when no rate does (`replicas` above `max_replicas`)."""
        if replicas > self.max_replicas:
            return math.inf
        if replicas <= 0:
            return 0.0
        cached = self._highest_memo.get(replicas)
        if cached is None:
            cached = self._last_grid_rate(replicas, self._at_step)
            self._highest_memo[replicas] = cached
        return cached

    def max_rate(self, replicas: int) -> float:
        """A grid rate that `replicas` carry within the SLO (the spillover's absorbed
        rate). It probes the grid at exp(step x log_step), whose step may round up to
        the next one, so it may be a step (1 %) below `highest_rate`: kept as it is,
        the spillover's figures are measured with it."""
        if replicas <= 0:
            return 0.0
        cached = self._max_rate_memo.get(replicas)
        if cached is None:
            log_step = self._log_step
            cached = self._last_grid_rate(
                replicas, lambda step: self.replicas(math.exp(step * log_step))
            )
            self._max_rate_memo[replicas] = cached
        return cached

    def _last_grid_rate(self, replicas: int, sized: Callable[[int], int]) -> float:
        """The rate of the last grid step that `sized` finds within `replicas`, by
        bisection between 10^-6 req/s and the stability bound (no rate above
        replicas x batch / service can be met); 0 when not even the first is."""
        ceiling = replicas * self.max_batch / self.mean_service_s
        low = math.floor(math.log(1e-6) / self._log_step)
        high = math.ceil(math.log(ceiling) / self._log_step) + 1
        if sized(low) > replicas:
            return 0.0
        while high - low > 1:  # sized(low) <= replicas < sized(high)
            mid = (low + high) // 2
            if sized(mid) <= replicas:
                low = mid
            else:
                high = mid
        return math.exp(low * self._log_step)


#: How far inside (or beyond) the edge of what a count carries a band's demand must
#: stay: a rate's grid step rounds at the edge, and the engine adds the queue's drain
#: rate as a product where the policy divides (a part in 10^6 covers both).
DEMAND_MARGIN = 1e-6


def demand_band_top(sizer: Sizer, replicas: int) -> float:
    """The most demand that sizes to at most `replicas` (`Sizer.highest_rate`, kept
    inside by `DEMAND_MARGIN`): a band's limit on the demand it watches."""
    return sizer.highest_rate(replicas) * (1.0 - DEMAND_MARGIN)


def demand_band_renewal(sizer: Sizer, replicas: int) -> float:
    """The least demand that sizes to at least `replicas` (beyond `Sizer.highest_rate`
    of one fewer by `DEMAND_MARGIN`; any demand above nothing asks for one replica, and
    any at all for none): a band's demand that renews a hold of `replicas`."""
    if replicas <= 0:
        return 0.0
    return max(sizer.highest_rate(replicas - 1) * (1.0 + DEMAND_MARGIN), math.ulp(0.0))


def window_in_history(observation: Observation, window_s: float) -> bool:
    """Whether a demand window of `window_s` lies within what the observation's history
    keeps (a band's mean demand is taken over the same samples: `Band.demand_window_s`;
    tick times within a second of a whole number of intervals)."""
    interval_s = observation.interval_s
    return window_s + interval_s + 1.0 < observation.history.capacity * interval_s


class ScaleInHold:
    """Highest recommendation of the last `hold_s`: a scale-down stabilisation window.

    As the Kubernetes HPA's (default 300 s): capacity removed on one quiet sample
    takes a provisioning delay to get back, so a recommendation may only fall once
    it has stayed lower for the whole window.
    """

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        # A monotonic deque: the window's recommendations that are above every later
        # one, oldest (the highest) first; a later one at least as high makes an
        # earlier one irrelevant for as long as the earlier one would be kept.
        # O(1) amortised per push, where a max over the window costs its length.
        self._peaks: deque[tuple[float, int]] = deque()
        self._started = False

    def reset(self) -> None:
        self._peaks.clear()
        self._started = False

    def push(self, time_s: float, replicas: int, current: int) -> int:
        """Record a recommendation; return the held (highest recent) one.

        The first call seeds the window with `current` (the capacity in force), as
        the HPA's window holds the replica count it starts from: a run does not
        begin by dropping its initial capacity on one sample. Times must not decrease.
        """
        if self.hold_s <= 0.0:
            return replicas  # no stabilisation: the recommendation stands as it is
        peaks = self._peaks
        if not self._started:
            peaks.append((time_s, current))
            self._started = True
        while peaks and peaks[-1][1] <= replicas:
            peaks.pop()
        peaks.append((time_s, replicas))
        cutoff = time_s - self.hold_s
        while peaks[0][0] <= cutoff:
            peaks.popleft()
        return peaks[0][1]

    def peak(self) -> tuple[float, int] | None:
        """(when, replicas) of the recommendation held now: it is held until a push at
        `when + hold_s` or later drops it, or a push of as many renews it. None before
        the first push, or with no stabilisation."""
        if self.hold_s <= 0.0 or not self._peaks:
            return None
        return self._peaks[0]


def recent_demand_rps(observation: Observation, window_s: float) -> float | None:
    """Mean observed arrival rate over the last `window_s` (current interval included).

    Averaging a few intervals keeps a bursty 15 s sample from setting capacity on
    its own. None when no interval in the window reported demand. A missing (None
    or NaN) sample is a missing metric, never a rate. O(log n) in the history.
    """
    return window_demand_rps(
        observation.history, observation.time_s, observation.demand_rps, window_s
    )


def clamp(replicas: int, observation: Observation) -> int:
    """Clamp to the pool bounds the observation reports."""
    return min(max(replicas, observation.min_replicas), observation.max_replicas)
