"""The predictive policy: forecast demand one provisioning delay ahead, size by Erlang C.

At decision time t the capacity that will be ready at t + provisioning_s must be
requested now, and capacity removed now is gone at once; so the policy asks for
the most any forecast bin in [t, t + provisioning_s] needs (lazy capacity
provisioning, Lin et al. 2013). Each bin's need is the forecast quantile rate
sized through the capacity model (`Sizer`). A reactive floor, the same sizing
applied to the demand observed over the last `floor_window_s`, keeps an
under-forecast from starving the service. The reason names the winner.
"""

from __future__ import annotations

import bisect
import math

from policies.predictive.base import ForecastPolicyBase
from policies.predictive.online import ForecastConfig
from policies.predictive.sizing import (
    ScaleInHold,
    Sizer,
    SizingConfig,
    clamp,
    demand_band_renewal,
    demand_band_top,
    recent_demand_rps,
    window_in_history,
)
from sim.contract import Decision, Observation, PolicyContext
from sim.control import Band, QuietSpan


class ReactiveFloor:
    """Replicas the recently observed demand needs now (no forecast).

    Sizes the mean demand of the last `window_s` plus the rate that drains the
    current queue within `drain_s` (one provisioning delay: replicas asked for now
    arrive then); with `track_utilisation`, takes at least the replicas the measured
    utilisation needs at the sizing's cap (`ceil(ready * utilisation /
    max_utilisation)`, the target-tracking rule, which sees requests longer than the
    model's mean, but which also reads a saturated pool as 1 / cap more replicas
    whatever the demand, so it overshoots after a surge); and holds the highest
    recommendation of the last `hold_s` before letting it fall (the Kubernetes HPA's
    300 s scale-down stabilisation), so a quiet 15 s sample does not remove capacity
    that takes minutes to get back.
    """

    def __init__(
        self, window_s: float, hold_s: float = 300.0, track_utilisation: bool = True
    ) -> None:
        self.window_s = window_s
        self.hold_s = hold_s
        self.track_utilisation = track_utilisation
        self._hold = ScaleInHold(hold_s)
        self._interval_s = 0.0  # the decision interval the last band was given at

    def reset(self) -> None:
        self._hold.reset()

    def replicas(self, observation: Observation, sizer: Sizer, drain_s: float) -> tuple[int, str]:
        """(replicas, description). Missing demand holds the desired capacity in force."""
        rate = recent_demand_rps(observation, self.window_s)
        if rate is None:
            return observation.desired, "demand metric missing: hold"
        backlog_rps = observation.queue_len / max(drain_s, observation.interval_s)
        need = sizer.replicas(rate + backlog_rps)
        why = f"{rate:.1f} rps"
        if observation.queue_len:
            why += f" + queue {observation.queue_len} over {drain_s:.0f}s"
        if self.track_utilisation and observation.utilisation is not None and observation.ready:
            # Measured busy slots catch requests longer than the capacity model's mean.
            busy = math.ceil(observation.ready * observation.utilisation / sizer.max_utilisation)
            if busy > need:
                need = busy
                why += f", utilisation {observation.utilisation:.2f} of {observation.ready}"
        held = self._hold.push(observation.time_s, need, observation.desired)
        if held > need:
            why += f", held at {held} for {self.hold_s:.0f}s"
        return held, why

    def band(self, observation: Observation, sizer: Sizer, drain_s: float) -> Band | None:
        """The readings after `observation` at which the floor stays at the capacity in
        force, held at its recommendation: the window's mean demand plus the rate that
        drains the queue within `drain_s` at most the rate the held count carries, and
        the busy slots at most the count, while the hold keeps it. A reading that
        recommends the count itself (a demand or busy slots that ask for no fewer)
        renews the hold; one that asks for fewer passes only while the last such
        renewal is younger than the hold. A window without demand holds the count
        whatever the rest (None: no band known)."""
        peak = self._hold.peak()
        if peak is None or not window_in_history(observation, self.window_s):
            return None
        since_s, held = peak
        if clamp(held, observation) != observation.desired:
            return None  # (the last floor held the count in force: no metric)
        top, renew = demand_band_top(sizer, held), demand_band_renewal(sizer, held)
        # the hold drops the count at a push at since + hold or later: a microsecond
        # earlier here, whatever the rounding of either sum
        keep_s = self.hold_s - 1e-6
        replicas = observation.ready + observation.pending
        self._interval_s = observation.interval_s
        demand = {"demand_high": top, "queue_rate": 1.0 / max(drain_s, observation.interval_s),
                  "demand_window_s": self.window_s, "demand_renew": renew,
                  "missing_demand": "hold"}  # fmt: skip
        if not self.track_utilisation:  # every reading passes on demand alone
            return Band("busy", math.inf, -math.inf, replicas, renew_s=keep_s,
                        hold_low=-math.inf, hold_high=math.inf, hold_until_s=since_s + keep_s,
                        **demand)  # type: ignore[arg-type]  # fmt: skip
        # ceil(ready x utilisation / cap) is `held` within [low, high] (with room for the
        # division's rounding), fewer below
        cap = sizer.max_utilisation
        low = math.nextafter((held - 1) * cap * (1.0 + 1e-9), math.inf) if held else -math.inf
        high = held * cap * (1.0 - 1e-9)
        return Band("busy", low, high, replicas, renew_s=keep_s, hold_low=-math.inf,
                    hold_high=math.nextafter(low, -math.inf), hold_until_s=since_s + keep_s,
                    **demand)  # type: ignore[arg-type]  # fmt: skip

    def pass_band(self, span: QuietSpan, sizer: Sizer, drain_s: float, desired: int) -> None:
        """Push the quiet readings' recommendations into the hold, as `replicas` does
        (the window's mean demand and the queue, the busy slots; none without demand).

        The hold keeps only recommendations above every later one, and drops at its
        next push those `hold_s` or more older than it: so only the span's last
        `hold_s`, and of those only the recommendations above every later one, are
        pushed (the same hold as every push in turn). Walking back from the newest, a
        reading whose demand is inside the rate the highest recommendation so far
        carries and whose busy slots ask for no more asks for no more: not sized.
        """
        means = span.window_demand_rps
        assert means is not None, "the band names the demand window"
        cap, track = sizer.max_utilisation, self.track_utilisation
        drain = max(drain_s, self._interval_s)
        times, utilisations, readies, queues = (
            span.time_s,
            span.utilisation,
            span.ready,
            span.queue_len,
        )
        start = bisect.bisect_right(times, times[-1] - self.hold_s)
        kept: list[tuple[float, int]] = []  # newest first, rising
        highest, carried = -1, -math.inf  # the highest kept, and a rate inside what it carries
        for k in range(len(times) - 1, start - 1, -1):
            rate = means[k]
            if rate is None:
                continue  # (held without a demand metric)
            demand = rate + queues[k] / drain  # `replicas`' sum, in its order: the same float
            ready, utilisation = readies[k], utilisations[k]
            busy = -1
            if track and ready and utilisation == utilisation:
                busy = math.ceil(ready * utilisation / cap)
            if busy <= highest and demand < carried:
                continue
            need = sizer.replicas(demand)
            if busy > need:
                need = busy
            if need > highest:
                kept.append((times[k], need))
                highest = need
                carried = demand_band_top(sizer, need)
        push = self._hold.push
        for time_s, need in reversed(kept):
            push(time_s, need, desired)


class PredictivePolicy(ForecastPolicyBase):
    """Forecast-driven capacity with a reactive floor.

    Args:
        config: Forecast fitting parameters (see `ForecastConfig`).
        reactive_floor: Keep capacity at least at the reactive recommendation.
        floor_window_s: Window of observed demand the floor sizes for.
        floor_hold_s: Scale-down stabilisation of the floor.
        floor_tracks_utilisation: The floor also tracks measured utilisation.
        sizing: Corrections of the Erlang C sizing (`SizingConfig`; default M/M/c).
        name: Display name.

    Edge behaviour: with no history, too little history (under
    `min_history_days + backtest_days`), or no forecaster that fits and
    converges, `reset` logs a warning and the policy runs on the reactive floor
    alone; every decision's reason starts with "fallback: reactive (...)".
    """

    def __init__(
        self,
        config: ForecastConfig,
        *,
        reactive_floor: bool = True,
        floor_window_s: float = 60.0,
        floor_hold_s: float = 300.0,
        floor_tracks_utilisation: bool = True,
        sizing: SizingConfig | None = None,
        name: str = "predictive",
    ) -> None:
        super().__init__(
            config, sizing=sizing, name=name, fallback_action="falling back to reactive sizing"
        )
        self.config: ForecastConfig = config
        self.use_floor = reactive_floor
        self.floor = ReactiveFloor(floor_window_s, floor_hold_s, floor_tracks_utilisation)
        self._banded = 0  # the capacity in force when the last band was given

    def _reset_state(self, context: PolicyContext) -> None:
        self.floor.reset()

    def quiet_band(self, observation: Observation) -> Band | None:
        """Without a forecast (`sim.control.BandedPolicy`): the readings at which the
        reactive floor keeps the capacity in force (`ReactiveFloor.band`). A forecast
        moves with every reading: no band."""
        if self.forecast is not None:
            return None
        self._banded = observation.desired
        return self.floor.band(observation, self.sizer, self.provisioning_s)

    def pass_band(self, span: QuietSpan) -> None:
        self.floor.pass_band(span, self.sizer, self.provisioning_s, self._banded)

    def forecast_need(self, time_s: float) -> tuple[int, float, int]:
        """(replicas, quantile rps, steps) for the worst bin in [t, t + provisioning]."""
        assert self.forecast is not None
        bin_s = self.forecast.bin_s
        first = math.floor(time_s / bin_s)
        last = math.floor((time_s + self.provisioning_s) / bin_s)
        needs: list[tuple[int, float, int]] = []
        for index in range(first, last + 1):
            _, rate_q, steps = self.forecast.forecast_at(max(index * bin_s, time_s))
            needs.append((self.sizer.replicas(rate_q), rate_q, steps))
        return max(needs)

    def decide(self, observation: Observation) -> Decision:
        floor, floor_why = self.floor.replicas(observation, self.sizer, self.provisioning_s)
        forecast = self.observe(observation)
        if forecast is None:
            return self.reactive_fallback(floor, floor_why, observation)
        need, rate_q, _ = self.forecast_need(observation.time_s)
        quantile = self.config.quantile
        label = f"q{quantile:g}" if quantile is not None else "mean"
        lead = f"t+{self.provisioning_s:.0f}s"
        forecast_why = f"forecast {forecast.name} {rate_q:.1f} rps @{label} ({lead})"
        if forecast.capped:
            forecast_why += f" (model diverged: {forecast.capped} forecasts capped at "
            forecast_why += f"{forecast.ceiling_rps:.1f} rps, 4x the history's peak)"
        if self.use_floor and floor > need:
            desired = clamp(floor, observation)
            reason = f"reactive floor {floor} ({floor_why}) > {forecast_why} -> {need}"
        else:
            desired = clamp(need, observation)
            reason = f"{forecast_why} -> {need}"
        if desired != max(floor if self.use_floor else 0, need):
            reason += f", clamped to {desired}"
        return Decision(desired, reason)
