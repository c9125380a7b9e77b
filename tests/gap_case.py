"""Two hours of the bundled ServeGen day at 60 req/s, the traffic stopped 20 minutes at a time.

Shared by the fluid engine's arrival-conservation tests and the oracle's floor tests:
both run it on the fluid engine's production-scale path (no request drawn one by
one, as for any envelope of more than 3 M requests), where a pool scaled in over a
gap and one near saturation behave as on days of traffic.
"""

from __future__ import annotations

from sim.fluid.engine import FluidEngine, FluidSettings
from sim.scenario import BUNDLED_DIR, Scenario
from sim.workload.build import build_workload
from sim.workload.model import Workload

ON_S, OFF_S = 2400.0, 1200.0
INTERVAL_S = 15

GapCase = tuple[Scenario, Workload, FluidEngine]


def gap_scenario() -> Scenario:
    gaps = {"on_s": ON_S, "off_s": OFF_S, "on_factor": 1.0, "off_factor": 0.0}
    return Scenario.model_validate(
        {
            "name": "servegen-gaps",
            "workload": {
                "format": "servegen",
                "path": "package:servegen_m_small_2d",
                "start_h": 20.0,
                "duration_h": 2.0,
                "scale_mean_rps": 60.0,
                "modulate": {"kind": "on-off", "base_rps": 1.0, "duration_h": 2.0, "params": gaps},
            },
            "pool": {
                "kind": "gpu-node-pool",
                "instance_type": "g5.xlarge",
                "min_replicas": 2,
                "max_replicas": 160,
                "initial_replicas": 40,
            },
            "slo": {"latency_s": 25.0, "target_attainment": 0.95},
            "decision_interval_s": INTERVAL_S,
            "seed": 0,
            "base_dir": str(BUNDLED_DIR),
        }
    )


def make_gap_case() -> GapCase:
    """The scenario, its workload (seed 0) and a fluid engine on the envelope path."""
    scenario = gap_scenario()
    workload = build_workload(scenario.workload, scenario.resolve_path, seed=0)
    return scenario, workload, FluidEngine(FluidSettings(exact_sampling_max_requests=0))
