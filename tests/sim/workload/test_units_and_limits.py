"""Timestamp units, traces without requests, and the memory guard of a rescale."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ScenarioError, TraceFormatError
from sim.scenario import BUNDLED_DIR
from sim.workload import RequestTrace, load_trace, mean_rps, scale_to_mean
from sim.workload.build import build_workload
from sim.workload.loaders import load_azure_llm, load_nab, load_rate_csv, load_requests_csv
from sim.workload.memory import BYTES_PER_REQUEST, check_memory
from sim.workload.spec import WorkloadSpec

CONV = BUNDLED_DIR / "fixtures" / "azure_conv.csv"


def _requests_csv(path: Path, scale: float, offset: float = 0.0) -> Path:
    """The conv hour's arrivals as numeric timestamps in a given unit."""
    trace = load_azure_llm(CONV)
    times = trace.arrival_s
    lines = [f"{offset + t * scale:.0f}" for t in times]
    path.write_text("timestamp\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("unit", "scale"), [("ms", 1e3), ("us", 1e6)], ids=["ms", "us"])
def test_milliseconds_and_microseconds_are_refused_without_a_unit(
    tmp_path: Path, unit: str, scale: float
) -> None:
    path = _requests_csv(tmp_path / "t.csv", scale)
    with pytest.raises(TraceFormatError, match="does not look like seconds") as caught:
        load_trace(path, "requests-csv")
    assert "--time-unit ms or us" in str(caught.value)
    trace = load_requests_csv(path, time_unit=unit)
    reference = load_azure_llm(CONV).arrival_s
    # Rounded to whole ms / us when written: the span agrees within a millisecond.
    assert trace.arrival_s[-1] == pytest.approx(reference[-1], abs=1e-3)


def test_a_55_minute_trace_in_ms_says_both_spans(tmp_path: Path) -> None:
    trace = load_azure_llm(CONV)
    path = _requests_csv(tmp_path / "conv_ms.csv", 1e3)
    with pytest.raises(TraceFormatError) as caught:
        load_trace(path, "requests-csv")
    message = str(caught.value)
    assert "days" in message and "min as" not in message
    assert f"as milliseconds it spans {trace.arrival_s[-1] / 60:.1f} min" in message


def test_epoch_milliseconds_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text("1714557600000,3\n1714557660000,4\n1714557720000,5\n")
    with pytest.raises(TraceFormatError, match="past year 5138"):
        load_trace(path, "rate-csv")
    series = load_rate_csv(path, time_unit="ms")
    assert series.bin_s == 60.0


def test_rate_series_on_a_whole_thousand_grid_wider_than_6h_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "minutes_in_ms.csv"
    path.write_text("".join(f"{i * 60000},{i + 1}\n" for i in range(10)))
    with pytest.raises(TraceFormatError, match=r"16\.7 h apart"):
        load_trace(path, "nab")
    assert load_nab(path, time_unit="ms").bin_s == 60.0


def test_seconds_stay_seconds(tmp_path: Path) -> None:
    # Daily bins for two years in seconds: long but plausible, read as given.
    path = tmp_path / "daily.csv"
    path.write_text("".join(f"{i * 86400},{i % 7 + 1}\n" for i in range(730)))
    assert load_rate_csv(path).bin_s == 86400.0


def test_time_unit_on_datetimes_or_servegen_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="datetimes"):
        load_trace(CONV, "azure-llm", time_unit="ms")
    servegen = BUNDLED_DIR / "fixtures" / "servegen_m_small_2d"
    with pytest.raises(TraceFormatError, match="drop --time-unit"):
        load_trace(servegen, "servegen", time_unit="ms")


def test_a_trace_without_requests_says_so(tmp_path: Path) -> None:
    path = tmp_path / "zeros.csv"
    path.write_text("".join(f"{i * 60},0\n" for i in range(30)))
    with pytest.raises(TraceFormatError, match="the trace has no requests") as caught:
        load_trace(path, "rate-csv")
    assert "scale_mean_rps" not in str(caught.value)
    spec = WorkloadSpec(format="rate-csv", path=str(path), scale_mean_rps=5.0)
    with pytest.raises(TraceFormatError, match="the trace has no requests"):
        build_workload(spec, Path)


def test_memory_guard_refuses_before_allocating() -> None:
    with pytest.raises(ScenarioError, match="GiB of memory") as caught:
        check_memory(1e9, "scaling conv.csv", available=2**30)
    assert "--scale-mean-rps" in str(caught.value)
    check_memory(1e6, "scaling conv.csv", available=2**30)  # 0.1 GiB fits
    spec = WorkloadSpec(format="azure-llm", path=str(CONV), scale_mean_rps=1e9)
    with pytest.raises(ScenarioError, match="GiB of memory, and this machine has"):
        build_workload(spec, Path)


def test_bytes_per_request_covers_the_measured_peak_of_a_rescale() -> None:
    trace = load_azure_llm(CONV)
    target = mean_rps(trace) * 5
    tracemalloc.start()
    try:
        scaled = scale_to_mean(trace, target, np.random.default_rng(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(scaled, RequestTrace)
    assert scaled.n_requests > 90_000
    assert peak / scaled.n_requests <= BYTES_PER_REQUEST


def test_a_large_envelope_builds_and_only_the_des_refuses_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An envelope stays a rate until an engine samples it: the fluid engine samples a
    large one per second, so building it must not be refused (14 days of ServeGen at
    its native 1,170 req/s were); the DES, which holds every request, refuses it."""
    import numpy as np

    from sim.des.requests import arrivals_from
    from sim.errors import ScenarioError
    from sim.workload import memory
    from sim.workload.build import build_workload
    from sim.workload.model import RateEnvelope
    from sim.workload.spec import WorkloadSpec

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)  # 1 MiB free
    rates = tmp_path / "rates.csv"
    rates.write_text("timestamp,value\n" + "".join(f"{h * 3600},1000\n" for h in range(24)))
    spec = WorkloadSpec(format="rate-csv", path=str(rates), bin_s=3600.0)
    built = build_workload(spec, Path, seed=0)  # 86 M expected requests: not refused
    assert isinstance(built, RateEnvelope)
    envelope = RateEnvelope(
        rate_rps=np.full(24, 1000.0), bin_s=3600.0, missing=np.zeros(24, dtype=bool),
        source="big-envelope",
    )  # fmt: skip
    with pytest.raises(ScenarioError, match="the DES replaying big-envelope"):
        arrivals_from(envelope, np.random.default_rng(0))
