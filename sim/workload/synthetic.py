"""Synthetic rate envelopes: diurnal, weekly, flash crowd, launch spike, growth, on/off.

Each generator is deterministic: it returns the mean rate per bin (burstiness comes
later, from `to_requests`). `base_rps` is the baseline level each kind modulates, and
t = 0 is a Monday midnight UTC (`MONDAY_EPOCH_S`), so hours of day and weekdays in the
params line up with the calendar that scheduled policies see.

Kinds and their params (defaults in brackets):

- diurnal: `amplitude` [0.6] relative swing, rate = base x (1 + a cos(2 pi (h - peak) / 24));
  `peak_hour` [14.0] hour of day of the peak.
- weekly: diurnal x a weekday factor; `amplitude` [0.6], `peak_hour` [14.0],
  `weekend_factor` [0.4] level on Saturday and Sunday relative to weekdays,
  `start_weekday` [0] weekday of t = 0 (0 = Monday).
- flash-crowd: base plus a surge that rises linearly then decays exponentially;
  `at_h` [duration / 2] start of the surge, `peak_factor` [5.0] peak rate / base,
  `rise_s` [120.0] time to the peak, `decay_s` [900.0] e-folding time of the decay.
- launch-spike: a launch at `at_h` [duration / 4] jumps to `peak_factor` [8.0] x base and
  decays with `decay_s` [3600.0] towards a new steady level `settle_factor` [3.0] x base.
- growth: compound growth `growth_per_day` [0.05] (5 % a day) with an optional daily
  cycle `amplitude` [0.0] peaking at `peak_hour` [14.0].
- on-off: alternating bursts; `on_s` [300.0] and `off_s` [900.0] durations, rate
  `on_factor` [4.0] x base while on and `off_factor` [0.1] x base while off, starting on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ScenarioError
from sim.workload.model import MONDAY_EPOCH_S, FloatArray, RateEnvelope

if TYPE_CHECKING:
    from sim.workload.spec import SyntheticSpec

DAY_S = 86400.0
HOUR_S = 3600.0

Shape = Callable[[FloatArray, float, dict[str, float]], FloatArray]
"""(bin centre times in s, duration in s, params) -> rate relative to base."""


def _daily(t_s: FloatArray, amplitude: float, peak_hour: float) -> FloatArray:
    hours = (t_s % DAY_S) / HOUR_S
    return 1.0 + amplitude * np.cos(2.0 * np.pi * (hours - peak_hour) / 24.0)


def _diurnal(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    return _daily(t_s, p["amplitude"], p["peak_hour"])


def _weekly(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    weekday = (np.floor(t_s / DAY_S) + p["start_weekday"]) % 7
    level = np.where(weekday >= 5, p["weekend_factor"], 1.0)
    return level * _daily(t_s, p["amplitude"], p["peak_hour"])


def _surge(t_s: FloatArray, at_s: float, rise_s: float, decay_s: float) -> FloatArray:
    """0 before `at_s`, a linear rise to 1 over `rise_s`, then exp decay."""
    since = t_s - at_s
    rising = np.clip(since / max(rise_s, 1e-9), 0.0, 1.0)
    after_peak = np.clip(since - rise_s, 0.0, None)
    return np.where(since < 0, 0.0, rising * np.exp(-after_peak / decay_s))


def _flash_crowd(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    at_s = p.get("at_h", duration_s / 2 / HOUR_S) * HOUR_S
    return 1.0 + (p["peak_factor"] - 1.0) * _surge(t_s, at_s, p["rise_s"], p["decay_s"])


def _launch_spike(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    at_s = p.get("at_h", duration_s / 4 / HOUR_S) * HOUR_S
    launched = t_s >= at_s
    decay = np.exp(-np.clip(t_s - at_s, 0.0, None) / p["decay_s"])
    after = p["settle_factor"] + (p["peak_factor"] - p["settle_factor"]) * decay
    return np.where(launched, after, 1.0)


def _growth(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    trend = (1.0 + p["growth_per_day"]) ** (t_s / DAY_S)
    return trend * _daily(t_s, p["amplitude"], p["peak_hour"])


def _on_off(t_s: FloatArray, duration_s: float, p: dict[str, float]) -> FloatArray:
    return np.where(t_s % (p["on_s"] + p["off_s"]) < p["on_s"], p["on_factor"], p["off_factor"])


_DIURNAL = {"amplitude": 0.6, "peak_hour": 14.0}
KINDS: Mapping[str, tuple[Shape, dict[str, float]]] = {
    "diurnal": (_diurnal, _DIURNAL),
    "weekly": (_weekly, {**_DIURNAL, "weekend_factor": 0.4, "start_weekday": 0.0}),
    "flash-crowd": (_flash_crowd, {"peak_factor": 5.0, "rise_s": 120.0, "decay_s": 900.0}),
    "launch-spike": (
        _launch_spike,
        {"peak_factor": 8.0, "settle_factor": 3.0, "decay_s": 3600.0},
    ),
    "growth": (_growth, {"growth_per_day": 0.05, "amplitude": 0.0, "peak_hour": 14.0}),
    "on-off": (_on_off, {"on_s": 300.0, "off_s": 900.0, "on_factor": 4.0, "off_factor": 0.1}),
}
_OPTIONAL = {"flash-crowd": {"at_h"}, "launch-spike": {"at_h"}}
_SUBSAMPLES = 8  # rate per bin is the mean of 8 points inside it, so short bursts are not lost


def _params(spec: SyntheticSpec) -> dict[str, float]:
    _, defaults = KINDS[spec.kind]
    allowed = set(defaults) | _OPTIONAL.get(spec.kind, set())
    unknown = sorted(set(spec.params) - allowed)
    if unknown:
        raise ScenarioError(
            f"workload.synthetic.params: unknown parameter(s) {', '.join(unknown)} for kind "
            f"{spec.kind!r}; allowed: {', '.join(sorted(allowed))}"
        )
    params = {**defaults, **spec.params}
    for name in ("decay_s", "on_s"):
        if name in params and not params[name] > 0:
            raise ScenarioError(f"workload.synthetic.params.{name} must be > 0")
    negative = [k for k, v in params.items() if v < 0 and k != "growth_per_day"]
    if negative:
        raise ScenarioError(
            f"workload.synthetic.params: {', '.join(negative)} must be >= 0 for kind {spec.kind!r}"
        )
    weekday = params.get("start_weekday", 0.0)
    if weekday != int(weekday) or weekday > 6:
        raise ScenarioError("workload.synthetic.params.start_weekday must be 0..6 (0 = Monday)")
    if params.get("amplitude", 0.0) > 1.0:
        raise ScenarioError("workload.synthetic.params.amplitude must be <= 1 (rates stay >= 0)")
    return params


def generate(spec: SyntheticSpec) -> RateEnvelope:
    """The envelope a `SyntheticSpec` describes.

    Raises:
        ScenarioError: Unknown or out-of-range params for the kind.
    """
    shape, _ = KINDS[spec.kind]
    params = _params(spec)
    duration_s = spec.duration_h * HOUR_S
    n_bins = max(int(np.ceil(duration_s / spec.bin_s - 1e-9)), 1)
    offsets = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES
    t_s = (np.arange(n_bins)[:, None] + offsets[None, :]) * spec.bin_s
    relative = shape(t_s.ravel(), duration_s, params).reshape(n_bins, _SUBSAMPLES).mean(axis=1)
    return RateEnvelope(
        bin_s=spec.bin_s,
        rate_rps=spec.base_rps * relative,
        missing=np.zeros(n_bins, dtype=bool),
        epoch_s=MONDAY_EPOCH_S + params.get("start_weekday", 0.0) * DAY_S,
        source=f"synthetic:{spec.kind}",
    )
