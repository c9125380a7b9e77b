"""Each loader on the bundled fixtures, and the ServeGen missing-window semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.workload import ArrivalPattern, RateEnvelope, RequestTrace, load_trace, mean_rps
from sim.workload.loaders.servegen import _read_all_fast, _read_client, client_files
from sim.workload.model import MONDAY_EPOCH_S


def test_azure_conv_hour_loads_every_request_with_tokens(fixtures_dir: Path) -> None:
    trace = load_trace(fixtures_dir / "azure_conv.csv", "azure-llm")
    assert isinstance(trace, RequestTrace)
    assert trace.n_requests == 19_366
    assert trace.arrival_s[0] == 0.0
    assert np.all(np.diff(trace.arrival_s) >= 0)
    assert trace.arrival_s[-1] < trace.duration_s == 3502.0
    assert trace.input_tokens is not None and trace.output_tokens is not None
    assert trace.input_tokens[:3].tolist() == [374, 396, 879]
    assert trace.output_tokens[:3].tolist() == [44, 109, 55]
    # 2023-11-16 18:15:46.68059 UTC
    assert trace.epoch_s == pytest.approx(1_700_158_546.68059, abs=1e-5)
    assert trace.arrival_s[1] == pytest.approx(4.3145790, abs=1e-6)


def test_azure_code_hour_loads(fixtures_dir: Path) -> None:
    trace = load_trace(fixtures_dir / "azure_code.csv", "azure-llm")
    assert isinstance(trace, RequestTrace)
    assert trace.n_requests == 8_819
    assert mean_rps(trace) == pytest.approx(8_819 / trace.duration_s)


def test_servegen_extract_sums_clients_and_keeps_fits(fixtures_dir: Path) -> None:
    env = load_trace(fixtures_dir / "servegen_m_small_2d", "servegen")
    assert isinstance(env, RateEnvelope)
    assert env.bin_s == 600.0 and len(env.rate_rps) == 288
    assert env.clients is not None
    assert env.clients.rate_rps.shape == (43, 288)
    assert env.clients.names[:3] == ("chunk-0", "chunk-1", "chunk-2")
    np.testing.assert_allclose(env.rate_rps, env.clients.rate_rps.sum(axis=0))
    assert not env.missing.any()
    assert env.epoch_s == MONDAY_EPOCH_S
    patterns = set(np.unique(env.clients.pattern).tolist())
    assert {ArrivalPattern.IDLE, ArrivalPattern.GAMMA, ArrivalPattern.WEIBULL} <= patterns
    fitted = env.clients.pattern >= ArrivalPattern.GAMMA
    assert np.all(env.clients.shape[fitted] > 0)
    # chunk-1 at t = 79800 s (window 133): rate 10.5067, Gamma, shape 0.19742
    assert env.clients.rate_rps[1, 133] == pytest.approx(10.506666666666666)
    assert env.clients.pattern[1, 133] == ArrivalPattern.GAMMA
    assert env.clients.shape[1, 133] == pytest.approx(0.19742394972449193)
    # The published daily cycle: night trough well below the evening peak.
    hourly = env.rate_rps[:144].reshape(24, 6).mean(axis=1)
    assert hourly.argmax() in range(18, 23) and hourly.min() < 0.5 * hourly.max()


def _write_client(directory: Path, n: int, rows: list[str]) -> None:
    (directory / f"chunk-{n}-trace.csv").write_text("\n".join(rows) + "\n")


def test_servegen_windows_where_every_client_is_zero_are_missing(tmp_path: Path) -> None:
    _write_client(
        tmp_path,
        0,
        ["0,2.0,1.5,Gamma,0.44,0.1", "600,0,0,,0,0", "1200,0,0,,0,0", "1800,1.0,1,,0,0"],
    )
    _write_client(tmp_path, 1, ["0,0,0,,0,0", "600,3.0,2.0,Weibull,0.5,0.2", "1200,0,0,,0,0"])
    (tmp_path / "README.md").write_text("not a client file")
    env = load_trace(tmp_path, "servegen")
    assert isinstance(env, RateEnvelope) and env.clients is not None
    assert env.missing.tolist() == [False, False, True, False]
    assert np.isnan(env.rate_rps[2])
    np.testing.assert_allclose(env.rate_rps[[0, 1, 3]], [2.0, 3.0, 1.0])
    # A client that is zero while another is not is idle, not missing.
    assert env.clients.pattern[1, 0] == ArrivalPattern.IDLE
    # A positive rate with no fitted pattern is Poisson.
    assert env.clients.pattern[0, 3] == ArrivalPattern.POISSON
    # Means ignore the gap: (2 + 3 + 1) / 3, not / 4.
    assert mean_rps(env) == pytest.approx(2.0)


def test_servegen_fast_path_matches_the_validating_reader(fixtures_dir: Path) -> None:
    files = client_files(fixtures_dir / "servegen_m_small_2d")
    fast = _read_all_fast(files)
    assert fast is not None
    for quick, careful in zip(fast, (_read_client(path) for path in files), strict=True):
        for a, b in zip(quick, careful, strict=True):
            np.testing.assert_array_equal(a, b)


def test_servegen_file_without_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "chunk-0-trace.csv").write_text("0,1.0,1,,0,0\n600,2.0,1,Gamma,0.5,0.1")
    (tmp_path / "chunk-1-trace.csv").write_text("0,1.0,1,,0,0\n")
    env = load_trace(tmp_path, "servegen")
    assert isinstance(env, RateEnvelope)
    np.testing.assert_allclose(env.rate_rps, [2.0, 2.0])


def test_nab_counts_per_bin_become_rates(fixtures_dir: Path) -> None:
    env = load_trace(fixtures_dir / "nab_nyc_taxi_2w.csv", "nab")
    assert isinstance(env, RateEnvelope)
    assert env.bin_s == 1800.0 and len(env.rate_rps) == 672
    assert env.rate_rps[0] == pytest.approx(8675 / 1800)
    assert env.epoch_s == pytest.approx(1_404_691_200.0)  # Monday 2014-07-07 00:00 UTC
    daily = env.rate_rps.reshape(14, 48)
    assert np.all(daily.argmin(axis=1) < 14)  # troughs before 07:00 every day


def test_rate_csv_gaps_become_missing_bins(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("timestamp,value\n0,1.5\n60,2.5\n180,4.0\n")
    env = load_trace(path, "rate-csv", bin_s=60)
    assert isinstance(env, RateEnvelope)
    assert env.missing.tolist() == [False, False, True, False]
    np.testing.assert_allclose(env.rate_rps[[0, 1, 3]], [1.5, 2.5, 4.0])
    inferred = load_trace(path, "rate-csv")
    assert isinstance(inferred, RateEnvelope) and inferred.bin_s == 60.0


def test_rate_csv_with_iso_timestamps_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("2024-05-01T10:00:00Z,3\n2024-05-01T10:05:00Z,4\n")
    env = load_trace(path, "rate-csv")
    assert isinstance(env, RateEnvelope)
    assert env.bin_s == 300.0 and env.rate_rps.tolist() == [3.0, 4.0]
    assert env.epoch_s == pytest.approx(1_714_557_600.0)


@pytest.mark.parametrize(
    ("text", "tokens", "epoch"),
    [
        ("timestamp\n5.0\n5.0\n7.5\n", False, None),
        ("10,100,20\n11.5,200,30\n", True, None),
        ("ts,in,out\n2024-05-01 10:00:00,100,20\n2024-05-01 10:00:02.5,200,30\n", True, 1.7e9),
    ],
    ids=["seconds-header-duplicates", "seconds-tokens-no-header", "iso-tokens-header"],
)
def test_requests_csv_variants(
    tmp_path: Path, text: str, tokens: bool, epoch: float | None
) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(text)
    trace = load_trace(path, "requests-csv")
    assert isinstance(trace, RequestTrace)
    assert trace.arrival_s[0] == 0.0
    assert (trace.input_tokens is not None) == tokens
    assert (trace.epoch_s is None) == (epoch is None)
    if tokens:
        assert trace.input_tokens is not None and trace.input_tokens.tolist() == [100, 200]
        assert trace.arrival_s[-1] == pytest.approx(1.5 if epoch is None else 2.5)
    else:
        assert trace.arrival_s.tolist() == [0.0, 0.0, 2.5]
