"""Trace loaders, one module per format; `load_trace` in `sim.workload.build` dispatches."""

from __future__ import annotations

from sim.workload.loaders.azure import load_azure_llm
from sim.workload.loaders.generic import load_rate_csv, load_requests_csv
from sim.workload.loaders.nab import load_nab
from sim.workload.loaders.servegen import load_servegen

__all__ = ["load_azure_llm", "load_nab", "load_rate_csv", "load_requests_csv", "load_servegen"]
