"""build_workload: the scenario pipeline, and every bundled scenario builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.capacity.service import TokenService
from sim.errors import ScenarioError
from sim.scenario import BUNDLED_DIR, load_default_scenario, load_scenario
from sim.workload import (
    RateEnvelope,
    RequestTrace,
    TokenProfile,
    build_workload,
    load_trace,
    mean_rps,
    rate_series,
)
from sim.workload.spec import WorkloadSpec


def resolver(fixtures_dir: Path) -> Any:
    return lambda path: fixtures_dir / path.removeprefix("package:")


def spec(**fields: Any) -> WorkloadSpec:
    return WorkloadSpec.model_validate(fields)


def test_default_token_profile_is_the_azure_conv_fit(fixtures_dir: Path) -> None:
    trace = load_trace(fixtures_dir / "azure_conv.csv", "azure-llm")
    assert isinstance(trace, RequestTrace)
    assert trace.input_tokens is not None and trace.output_tokens is not None
    inputs, outputs = trace.input_tokens.astype(float), trace.output_tokens.astype(float)
    profile = TokenProfile()
    assert profile.input_mean == pytest.approx(inputs.mean(), rel=1e-3)
    assert profile.input_cv == pytest.approx(inputs.std() / inputs.mean(), rel=1e-3)
    assert profile.output_mean == pytest.approx(outputs.mean(), rel=1e-3)
    assert profile.output_cv == pytest.approx(outputs.std() / outputs.mean(), rel=1e-3)


def test_default_scenario_needs_8_to_20_replicas_at_peak() -> None:
    scenario = load_default_scenario()
    assert scenario.name == "default" and scenario.decision_interval_s == 15
    assert scenario.policies == ["hpa", "aws-target-tracking", "threshold", "step", "predictive"]
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=scenario.seed)
    assert isinstance(workload, RequestTrace)
    assert mean_rps(workload) == pytest.approx(12.0, abs=1e-3)
    service = scenario.pool.service
    assert isinstance(service, TokenService)
    peak_rps = float(np.nanmax(rate_series(workload, 60.0)[0]))
    replicas_full_batch = peak_rps / service.throughput_rps(TokenProfile())
    assert 8 <= replicas_full_batch <= 20
    # The SLO leaves room above a p95-sized request's full-batch service time.
    p95 = service.service_s(4083, 451, service.max_batch)
    assert p95 < scenario.slo.latency_s < 1.5 * p95
    assert scenario.slo.target_attainment == 0.95


@pytest.mark.parametrize(
    "name", ["servegen_flash_crowd", "business_hours", "saturday_batch"], ids=str
)
def test_example_scenarios_build(name: str) -> None:
    scenario = load_scenario(BUNDLED_DIR / f"{name}.yaml")
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=0)
    assert isinstance(workload, RateEnvelope)
    assert workload.duration_s == 86400.0
    assert np.all(workload.rate_rps[~workload.missing] >= 0)
    assert scenario.pool.max_replicas >= 20


def test_servegen_flash_crowd_surges_at_11h() -> None:
    scenario = load_scenario(BUNDLED_DIR / "servegen_flash_crowd.yaml")
    plain = scenario.workload.model_copy(update={"modulate": None})
    base = build_workload(plain, scenario.resolve_path)
    surged = build_workload(scenario.workload, scenario.resolve_path)
    assert isinstance(base, RateEnvelope) and isinstance(surged, RateEnvelope)
    ratio = surged.rate_rps / base.rate_rps
    assert np.allclose(ratio[:66], 1.0)  # before 11:00
    assert ratio[66:70].max() > 2.0
    assert mean_rps(base) == pytest.approx(10.0)


def test_window_scale_and_tokens_in_order(fixtures_dir: Path) -> None:
    workload = build_workload(
        spec(
            format="servegen",
            path="package:servegen_m_small_2d",
            start_h=20.0,
            duration_h=2.0,
            scale_mean_rps=40.0,
            tokens={"input_mean": 500.0, "input_cv": 0.5, "output_mean": 50.0, "output_cv": 0.5},
        ),
        resolver(fixtures_dir),
    )
    assert isinstance(workload, RateEnvelope)
    assert len(workload.rate_rps) == 12 and mean_rps(workload) == pytest.approx(40.0)
    assert workload.tokens == TokenProfile(500.0, 0.5, 50.0, 0.5)
    assert workload.epoch_s is not None and workload.epoch_s % 86400 == 20 * 3600


def test_tokens_override_redraws_request_tokens_with_the_seed(fixtures_dir: Path) -> None:
    block = spec(
        format="azure-llm",
        path="package:azure_code.csv",
        duration_h=0.5,
        tokens={"input_mean": 100.0, "output_mean": 20.0},
    )
    one = build_workload(block, resolver(fixtures_dir), seed=1)
    two = build_workload(block, resolver(fixtures_dir), seed=1)
    assert isinstance(one, RequestTrace) and isinstance(two, RequestTrace)
    assert one.input_tokens is not None and two.input_tokens is not None
    np.testing.assert_array_equal(one.input_tokens, two.input_tokens)
    assert one.input_tokens.mean() == pytest.approx(100.0, rel=0.15)
    assert one.duration_s == 1800.0


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"start_h": 1.5}, "spans [0 h, 0.972778 h)"),
        ({"start_h": 0.5, "duration_h": 1.0}, "choose start_h and duration_h"),
    ],
    ids=["start-after-end", "window-past-end"],
)
def test_window_outside_the_trace_says_its_span(
    fixtures_dir: Path, fields: dict[str, float], fragment: str
) -> None:
    block = spec(format="azure-llm", path="package:azure_conv.csv", **fields)
    with pytest.raises(ScenarioError) as info:
        build_workload(block, resolver(fixtures_dir))
    assert fragment in str(info.value)
    assert "azure_conv.csv" in str(info.value)


def test_scaling_a_window_without_traffic_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("0,0\n60,0\n120,5\n")
    block = spec(format="rate-csv", path="r.csv", duration_h=120 / 3600, scale_mean_rps=3.0)
    with pytest.raises(ScenarioError, match="has no requests, so it cannot be rescaled"):
        build_workload(block, lambda p: tmp_path / p)


def test_modulate_must_cover_the_workload() -> None:
    block = spec(
        format="synthetic",
        synthetic={"kind": "diurnal", "duration_h": 24, "base_rps": 5.0},
        modulate={"kind": "on-off", "duration_h": 12, "base_rps": 1.0},
    )
    with pytest.raises(ScenarioError, match=r"modulate\.duration_h >= 24"):
        build_workload(block, Path)
