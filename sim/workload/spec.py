"""The workload part of a scenario file: where the traffic comes from, which part of it.

Validated by pydantic where a scenario enters; `sim.workload.build` turns a
`WorkloadSpec` into a `Workload`. It lives in `sim.workload` (not `sim.scenario`)
so that building a workload never imports the scenario, which imports it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.workload.formats import TimeUnit, TraceFormat
from sim.workload.model import TokenProfile

SyntheticKind = Literal["diurnal", "weekly", "flash-crowd", "launch-spike", "growth", "on-off"]


class TokenSpec(BaseModel):
    """Request sizes for workloads without per-request token counts.

    Defaults are `TokenProfile`'s: the Azure LLM conv trace fit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_mean: float = Field(default=TokenProfile.input_mean, gt=0.0)
    input_cv: float = Field(default=TokenProfile.input_cv, ge=0.0)
    output_mean: float = Field(default=TokenProfile.output_mean, gt=0.0)
    output_cv: float = Field(default=TokenProfile.output_cv, ge=0.0)


class SyntheticSpec(BaseModel):
    """Parameters of a synthetic generator; unused keys for a kind are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SyntheticKind
    duration_h: float = Field(gt=0.0)
    bin_s: float = Field(default=60.0, gt=0.0)
    base_rps: float = Field(gt=0.0)
    params: dict[str, float] = Field(default_factory=dict)


class WorkloadSpec(BaseModel):
    """Where the traffic comes from and which part of it to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: TraceFormat | Literal["synthetic"]
    path: str | None = None
    bin_s: float | None = Field(default=None, gt=0.0, description="rate-csv / nab bin width")
    time_unit: TimeUnit | None = Field(
        default=None,
        description="unit of numeric timestamps; None reads seconds and refuses values that "
        "look like milliseconds or microseconds",
    )
    synthetic: SyntheticSpec | None = None
    start_h: float = Field(default=0.0, ge=0.0)
    duration_h: float | None = Field(default=None, gt=0.0)
    scale_mean_rps: float | None = Field(default=None, gt=0.0)
    tokens: TokenSpec | None = None
    modulate: SyntheticSpec | None = Field(
        default=None,
        description="multiply the rate by this synthetic shape / its base_rps (a flash crowd "
        "or batch bursts laid over a trace); applied after scale_mean_rps",
    )

    @model_validator(mode="after")
    def _source_present(self) -> WorkloadSpec:
        if self.format == "synthetic" and self.synthetic is None:
            raise ValueError("format 'synthetic' needs a 'synthetic:' block")
        if self.format != "synthetic" and not self.path:
            raise ValueError(f"format {self.format!r} needs 'path' (a file or directory)")
        return self


__all__ = ["SyntheticKind", "SyntheticSpec", "TokenSpec", "WorkloadSpec"]
