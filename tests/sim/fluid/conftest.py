"""Scenarios and workloads for the fluid-engine tests.

Provisioning delays are fixed (boot 125 s + pull 90 s + load 60 s) in the
cross-checks, so both engines see the same ready times and differ only in their
traffic and queueing models; the sampled-delay path has its own same-seed tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload
from sim.workload.model import RateEnvelope, RequestTrace, Workload

FIXED_DELAYS = {"node_boot_s": 125, "image_pull_s": 90, "model_load_s": 60}


def make_scenario(pool: dict[str, Any] | None = None, **top: Any) -> Scenario:
    """A GPU pool scenario on the bundled Azure conv hour (12 req/s), overridable."""
    data: dict[str, Any] = {
        "name": "fluid-test",
        "workload": {
            "format": "azure-llm",
            "path": "package:azure_conv.csv",
            "scale_mean_rps": 12.0,
        },
        "pool": _pool(pool or {}),
        "slo": {"latency_s": 25.0, "target_attainment": 0.95},
        "decision_interval_s": 15,
        "base_dir": str(BUNDLED_DIR),
    }
    data.update(top)
    return Scenario.model_validate(data)


def _pool(overrides: dict[str, Any]) -> dict[str, Any]:
    if overrides.get("kind") == "serverless":
        return overrides
    return {
        "kind": "gpu-node-pool",
        "instance_type": "g5.xlarge",
        "min_replicas": 4,
        "max_replicas": 32,
        "initial_replicas": 8,
        **FIXED_DELAYS,
        **overrides,
    }


def servegen_day(rps: float = 2.0) -> Scenario:
    """Day 2 of the bundled ServeGen m-small extract, scaled down to `rps` so the DES
    runs in seconds (the production mean is about 1,170 req/s)."""
    return make_scenario(
        pool={"min_replicas": 1, "max_replicas": 48, "initial_replicas": 4},
        name="servegen-day",
        workload={
            "format": "servegen",
            "path": "package:servegen_m_small_2d",
            "start_h": 24,
            "duration_h": 24,
            "scale_mean_rps": rps,
        },
    )


def load(scenario: Scenario) -> Workload:
    return build_workload(scenario.workload, scenario.resolve_path, seed=0)


def poisson_envelope(rate_rps: float, duration_s: float, bin_s: float = 60.0) -> RateEnvelope:
    bins = int(duration_s / bin_s)
    return RateEnvelope(
        bin_s=bin_s,
        rate_rps=np.full(bins, rate_rps),
        missing=np.zeros(bins, dtype=np.bool_),
    )


def uniform_trace(rate_rps: float, duration_s: float, tokens: tuple[int, int]) -> RequestTrace:
    n = int(rate_rps * duration_s)
    return RequestTrace(
        arrival_s=np.linspace(0.0, duration_s, n, endpoint=False),
        duration_s=duration_s,
        input_tokens=np.full(n, tokens[0], dtype=np.int64),
        output_tokens=np.full(n, tokens[1], dtype=np.int64),
    )


@pytest.fixture(scope="module")
def conv_scenario() -> Scenario:
    return make_scenario()


@pytest.fixture(scope="module")
def conv_workload(conv_scenario: Scenario) -> Workload:
    return load(conv_scenario)
