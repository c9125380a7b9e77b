"""From a scenario's `WorkloadSpec` to a `Workload`: load, slice, scale, set tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ScenarioError, TraceFormatError
from sim.workload.formats import FORMATS, TIMESTAMPED_FORMATS, TraceFormat
from sim.workload.loaders import (
    load_azure_llm,
    load_nab,
    load_rate_csv,
    load_requests_csv,
    load_servegen,
)
from sim.workload.memory import check_memory
from sim.workload.model import RateEnvelope, RequestTrace, TokenProfile, Workload
from sim.workload.ops import mean_rps, modulate, observed_s, scale_to_mean, slice_window
from sim.workload.synthetic import generate

if TYPE_CHECKING:
    from sim.workload.spec import WorkloadSpec

HOUR_S = 3600.0


def load_trace(
    path: Path | str,
    fmt: TraceFormat | str,
    bin_s: float | None = None,
    time_unit: str | None = None,
) -> Workload:
    """Load a trace file (or ServeGen directory) in one of `FORMATS`.

    Args:
        path: File, or directory for `servegen`.
        fmt: Format name.
        bin_s: Bin width for `rate-csv` and `nab` (inferred from the timestamps if None).
        time_unit: Unit of numeric timestamps (`s`, `ms`, `us`); None reads seconds
            and refuses timestamps that look like another unit.

    Raises:
        TraceFormatError: Unknown format, the file does not parse as `fmt`, or it
            carries no request at all.
    """
    file = Path(path)
    if bin_s is not None and fmt not in ("rate-csv", "nab"):
        raise TraceFormatError(f"{file}: bin_s applies to rate-csv and nab only, not {fmt!r}")
    if time_unit is not None and fmt not in TIMESTAMPED_FORMATS:
        raise TraceFormatError(
            f"{file}: a time unit applies to {', '.join(TIMESTAMPED_FORMATS)}, not {fmt!r} "
            "(its windows are in seconds); drop --time-unit"
        )
    workload: Workload
    if fmt == "azure-llm":
        workload = load_azure_llm(file, time_unit)
    elif fmt == "servegen":
        workload = load_servegen(file)
    elif fmt == "nab":
        workload = load_nab(file, bin_s, time_unit)
    elif fmt == "requests-csv":
        workload = load_requests_csv(file, time_unit)
    elif fmt == "rate-csv":
        workload = load_rate_csv(file, bin_s, time_unit)
    else:
        raise TraceFormatError(
            f"{file}: unknown trace format {fmt!r}; use one of {', '.join(FORMATS)}"
        )
    if expected_requests(workload) <= 0:
        raise TraceFormatError(
            f"{file}: the trace has no requests (every rate or count in it is 0); "
            "a what-if needs traffic: check that this is the file you meant"
        )
    return workload


def expected_requests(workload: Workload) -> float:
    """Requests a workload carries (expected count for an envelope, over observed time)."""
    if isinstance(workload, RateEnvelope):
        observed = ~workload.missing
        return float(np.sum(workload.rate_rps[observed]) * workload.bin_s)
    return float(workload.n_requests)


def build_workload(
    spec: WorkloadSpec, resolve: Callable[[str], Path], *, seed: int = 0
) -> Workload:
    """The workload a scenario describes.

    Steps, in order: load (or generate) the source; cut `[start_h, start_h +
    duration_h)`; scale to `scale_mean_rps` (mean over observed time); multiply by
    the `modulate` shape (relative to its base_rps); apply the `tokens` override (an
    envelope's profile; a request trace gets fresh tokens drawn from it).

    Args:
        spec: The scenario's workload block.
        resolve: Turns `spec.path` into a filesystem path (`Scenario.resolve_path`).
        seed: Seeds the thinning/replication and token draws of request traces.

    Raises:
        TraceFormatError: The source does not load.
        ScenarioError: The window lies outside the trace, or the window has no data.
    """
    rng = np.random.default_rng(seed)
    if spec.format == "synthetic":
        assert spec.synthetic is not None  # guaranteed by WorkloadSpec's validator
        workload: Workload = generate(spec.synthetic)
        where = "synthetic workload"
    else:
        assert spec.path is not None
        file = resolve(spec.path)
        workload = load_trace(file, spec.format, spec.bin_s, spec.time_unit)
        where = str(file)
    workload = _window(workload, spec, where)
    if spec.scale_mean_rps is not None:
        if observed_s(workload) <= 0 or mean_rps(workload) <= 0:
            raise ScenarioError(
                f"the window [{spec.start_h:g} h, +{_hours(spec.duration_h)}) of {where} has "
                "no requests, so it cannot be rescaled (workload.scale_mean_rps); pick a "
                "start_h/duration_h with traffic"
            )
        check_memory(spec.scale_mean_rps * observed_s(workload), f"scaling {where}")
        workload = scale_to_mean(workload, spec.scale_mean_rps, rng)
    if spec.modulate is not None:
        shape = generate(spec.modulate)
        if shape.duration_s < workload.duration_s * (1 - 1e-9):
            raise ScenarioError(
                f"workload.modulate lasts {spec.modulate.duration_h:g} h but the workload "
                f"lasts {workload.duration_s / HOUR_S:g} h; set modulate.duration_h >= "
                f"{workload.duration_s / HOUR_S:g}"
            )
        multiplier = replace(shape, rate_rps=shape.rate_rps / spec.modulate.base_rps)
        workload = modulate(workload, multiplier, rng)
    # Every engine holds a request trace's requests one by one. An envelope stays a rate
    # here: the fluid engine samples it per second when it is large, and the DES checks
    # before it samples requests (`sim.des.requests.arrivals_from`).
    if isinstance(workload, RequestTrace):
        check_memory(expected_requests(workload), f"running {where}")
    if spec.tokens is not None:
        profile = TokenProfile(**spec.tokens.model_dump())
        if isinstance(workload, RateEnvelope):
            workload = replace(workload, tokens=profile)
        else:
            inputs, outputs = profile.sample(rng, workload.n_requests)
            workload = replace(workload, input_tokens=inputs, output_tokens=outputs)
    return workload


def _hours(duration_h: float | None) -> str:
    return "end" if duration_h is None else f"{duration_h:g} h"


def _window(workload: Workload, spec: WorkloadSpec, where: str) -> Workload:
    span_h = workload.duration_s / HOUR_S
    start_s = spec.start_h * HOUR_S
    end_s = workload.duration_s if spec.duration_h is None else start_s + spec.duration_h * HOUR_S
    if start_s == 0.0 and end_s == workload.duration_s:
        return workload
    if start_s >= workload.duration_s or end_s > workload.duration_s * (1 + 1e-9):
        raise ScenarioError(
            f"workload window [{spec.start_h:g} h, {end_s / HOUR_S:g} h) lies outside "
            f"{where}, which spans [0 h, {span_h:g} h); choose start_h and duration_h "
            "within it"
        )
    return slice_window(workload, start_s, end_s)
