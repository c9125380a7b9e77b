"""Synthetic generators: each kind's shape, defaults and parameter checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.workload import RateEnvelope, generate, mean_rps
from sim.workload.model import MONDAY_EPOCH_S
from sim.workload.spec import SyntheticSpec
from sim.workload.synthetic import KINDS


def make(kind: str, duration_h: float = 24.0, bin_s: float = 60.0, **params: float) -> RateEnvelope:
    spec = SyntheticSpec.model_validate(
        {"kind": kind, "duration_h": duration_h, "bin_s": bin_s, "base_rps": 10.0, "params": params}
    )
    return generate(spec)


def hour_of(env: RateEnvelope, index: int) -> float:
    return (index + 0.5) * env.bin_s / 3600.0


def test_diurnal_peaks_at_peak_hour_with_the_given_swing() -> None:
    env = make("diurnal", peak_hour=13.0, amplitude=0.8)
    assert hour_of(env, int(env.rate_rps.argmax())) == pytest.approx(13.0, abs=0.1)
    assert hour_of(env, int(env.rate_rps.argmin())) == pytest.approx(1.0, abs=0.1)
    assert env.rate_rps.max() == pytest.approx(18.0, rel=1e-3)
    assert env.rate_rps.min() == pytest.approx(2.0, rel=1e-2)
    assert mean_rps(env) == pytest.approx(10.0, rel=1e-6)
    assert env.epoch_s == MONDAY_EPOCH_S and not env.missing.any()


def test_weekly_weekends_are_lower_and_start_weekday_moves_the_calendar() -> None:
    env = make("weekly", duration_h=24 * 7, bin_s=3600.0, weekend_factor=0.25)
    daily = env.rate_rps.reshape(7, 24).mean(axis=1)
    np.testing.assert_allclose(daily[5:], 0.25 * daily[:5].mean())
    saturday = make("weekly", duration_h=24, bin_s=3600.0, start_weekday=5, weekend_factor=0.25)
    assert saturday.epoch_s == MONDAY_EPOCH_S + 5 * 86400.0
    np.testing.assert_allclose(saturday.rate_rps, env.rate_rps[5 * 24 : 6 * 24])


def test_flash_crowd_rises_to_peak_then_decays() -> None:
    env = make(
        "flash-crowd",
        duration_h=4,
        bin_s=60.0,
        at_h=1.0,
        peak_factor=6.0,
        rise_s=120.0,
        decay_s=600.0,
    )
    assert np.allclose(env.rate_rps[:60], 10.0)
    peak = int(env.rate_rps.argmax())
    assert 61 <= peak <= 62 and env.rate_rps[peak] == pytest.approx(60.0, rel=0.05)
    after = env.rate_rps[peak + 10] - 10.0  # 10 minutes = one e-folding later
    assert after == pytest.approx((env.rate_rps[peak] - 10.0) / np.e, rel=0.1)
    assert env.rate_rps[-1] == pytest.approx(10.0, rel=1e-3)


def test_launch_spike_settles_at_the_new_level() -> None:
    env = make("launch-spike", duration_h=24, bin_s=300.0, at_h=2.0, decay_s=1800.0)
    assert np.allclose(env.rate_rps[:24], 10.0)
    assert env.rate_rps[24] == pytest.approx(80.0, rel=0.1)
    assert env.rate_rps[-1] == pytest.approx(30.0, rel=1e-3)
    assert np.all(np.diff(env.rate_rps[24:]) <= 0)


def test_growth_compounds_per_day() -> None:
    env = make("growth", duration_h=24 * 10, bin_s=3600.0, growth_per_day=0.1)
    daily = env.rate_rps.reshape(10, 24).mean(axis=1)
    np.testing.assert_allclose(daily[1:] / daily[:-1], 1.1, rtol=1e-3)


def test_on_off_alternates_and_averages_partial_bins() -> None:
    env = make(
        "on-off", duration_h=2, bin_s=60.0, on_s=90.0, off_s=150.0, on_factor=4.0, off_factor=0.0
    )
    # Cycle of 240 s: bin 0 fully on, bin 1 half on, bins 2-3 off.
    np.testing.assert_allclose(env.rate_rps[:8], [40.0, 20.0, 0.0, 0.0, 40.0, 20.0, 0.0, 0.0])
    assert mean_rps(env) == pytest.approx(10.0 * 4.0 * 90.0 / 240.0)


@pytest.mark.parametrize("kind", sorted(KINDS), ids=sorted(KINDS))
def test_every_kind_has_defaults_and_non_negative_rates(kind: str) -> None:
    env = make(kind, duration_h=48.0, bin_s=600.0)
    assert len(env.rate_rps) == 288
    assert np.all(env.rate_rps >= 0) and np.all(np.isfinite(env.rate_rps))
    assert env.source == f"synthetic:{kind}"


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("diurnal", {"peak_hr": 3.0}, "unknown parameter(s) peak_hr"),
        ("on-off", {"amplitude": 0.5}, "allowed: off_factor, off_s, on_factor, on_s"),
        ("diurnal", {"amplitude": 1.5}, "amplitude must be <= 1"),
        ("flash-crowd", {"decay_s": 0.0}, "decay_s must be > 0"),
        ("weekly", {"start_weekday": 2.5}, "start_weekday must be 0..6"),
        ("launch-spike", {"peak_factor": -1.0}, "peak_factor must be >= 0"),
    ],
    ids=[
        "unknown-param",
        "param-of-another-kind",
        "amplitude-too-big",
        "zero-decay",
        "fractional-weekday",
        "negative-factor",
    ],
)
def test_bad_params_are_rejected(kind: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        make(kind, **params)
    assert fragment in str(info.value)
