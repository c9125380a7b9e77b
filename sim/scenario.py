"""Scenario files: a workload, a cluster (pool plus optional spillover), an SLO.

A scenario is YAML validated by pydantic. Paths in `workload.path` are relative
to the scenario file; `package:NAME` points at a fixture bundled in
`sim/scenarios/fixtures/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.capacity.pools import Pool, ServerlessEndpoint
from sim.errors import ScenarioError
from sim.workload.spec import WorkloadSpec

PACKAGE_PREFIX = "package:"
BUNDLED_DIR = Path(__file__).parent / "scenarios"


class Slo(BaseModel):
    """A request meets the SLO when its end-to-end latency is at most `latency_s`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_s: float = Field(gt=0.0)
    target_attainment: float = Field(default=0.99, gt=0.0, le=1.0)


class Scenario(BaseModel):
    """Everything a simulation run needs except the policy objects themselves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    workload: WorkloadSpec
    pool: Pool
    spillover: ServerlessEndpoint | None = None
    slo: Slo
    decision_interval_s: float = Field(default=15.0, gt=0.0)
    policies: list[str] = Field(default_factory=lambda: ["hpa"])
    seed: int = Field(default=0, ge=0, description="numpy seeds are non-negative")
    base_dir: str = Field(default=".", description="set by the loader; resolves relative paths")

    @model_validator(mode="after")
    def _spillover_fits_the_pool(self) -> Scenario:
        # Checked here, once, so both engines refuse the same impossible clusters.
        if self.spillover is None:
            return self
        if isinstance(self.pool, ServerlessEndpoint):
            raise ValueError(
                "spillover needs an instance pool as the primary pool (gpu-node-pool or "
                "ec2-asg); remove 'spillover' or change 'pool'"
            )
        if self.spillover.name == self.pool.name:
            raise ValueError(
                f"pool and spillover are both named {self.pool.name!r}; give them distinct 'name's"
            )
        return self

    def resolve_path(self, path: str) -> Path:
        """The file a workload path names, relative to the scenario's directory."""
        if path.startswith(PACKAGE_PREFIX):
            return BUNDLED_DIR / "fixtures" / path[len(PACKAGE_PREFIX) :]
        candidate = Path(path)
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate


def format_validation(error: ValidationError, source: str, what: str = "scenario") -> str:
    """One line per invalid field of a `what` read from `source`: where, and pydantic's message.

    Shared by every YAML file the planner reads (scenarios, sweep files), so they
    report bad fields alike.
    """
    lines = [f"{source}: invalid {what}"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  - {where}: {item['msg']}")
    return "\n".join(lines)


def scenario_from_dict(data: Any, source: str, base_dir: Path) -> Scenario:
    """Validate a parsed scenario mapping; errors name the field and the fix."""
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return Scenario.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ScenarioError(format_validation(exc, source)) from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario YAML file."""
    file = Path(path)
    return scenario_from_dict(read_yaml(file, "scenario"), str(file), file.resolve().parent)


def read_yaml(path: Path, what: str) -> Any:
    """Parse the YAML file `path` (a `what` file, for messages).

    Raises:
        ScenarioError: The file is missing or is not valid YAML.
    """
    if not path.is_file():
        raise ScenarioError(f"{what} file {path} does not exist; pass an existing YAML file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None


def default_scenario_path() -> Path:
    return BUNDLED_DIR / "default.yaml"


def load_default_scenario() -> Scenario:
    """The bundled default scenario, shipped as package data."""
    return load_scenario(default_scenario_path())
