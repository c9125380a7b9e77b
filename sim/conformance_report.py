"""The conformance check's vocabulary: per-field tolerances, mismatches, the report.

`sim.conformance.check_policy` produces a `ConformanceReport`; see that module for
the check itself and the measurements behind `DEFAULT_TOLERANCES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sim.contract import Decision, MetricSample, Observation
from sim.errors import ScaleplanError


@dataclass(frozen=True)
class Tolerance:
    """How far two values of a field may lie apart: `absolute + relative x max(|a|, |b|)`."""

    absolute: float = 0.0
    relative: float = 0.0

    def allows(self, a: float, b: float) -> bool:
        return abs(a - b) <= self.absolute + self.relative * max(abs(a), abs(b))

    def __str__(self) -> str:
        if not self.absolute and not self.relative:
            return "exact"
        rel = f" + {self.relative:.0%}" if self.relative else ""
        return f"{self.absolute:g}{rel}"


EXACT = Tolerance()
#: Tolerance per observation field; see the module docstring for the measurements.
DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "time_s": Tolerance(1e-9),
    "interval_s": EXACT,
    "demand_rps": Tolerance(1e-9),
    "utilisation": Tolerance(0.06),
    "queue_len": Tolerance(5, 0.25),
    "ready": EXACT,
    "pending": EXACT,
    "desired": EXACT,
    "min_replicas": EXACT,
    "max_replicas": EXACT,
    "replica_capacity_rps": EXACT,
    "p95_latency_s": Tolerance(8.0, 0.5),
    "epoch_s": EXACT,
    "spillover_in_flight": Tolerance(10, 0.5),
}
#: The observation fields compared, in `Observation`'s order (history apart).
FIELDS: tuple[str, ...] = tuple(DEFAULT_TOLERANCES)
#: The `MetricSample` fields of a history entry; each uses its observation field's tolerance.
HISTORY_FIELDS: tuple[str, ...] = ("time_s", "demand_rps", "utilisation", "ready", "desired")


class ConformanceError(ScaleplanError):
    """A policy or engine failed the conformance check (`ConformanceReport.raise_on_failure`)."""


@dataclass(frozen=True)
class Step:
    """One decision point as a policy saw it.

    Attributes:
        observation: What the engine observed.
        history: `observation.history` materialised (views go stale after a while).
        decision: What the engine applied (the policy's, or the replayed one).
        own: What the wrapped policy decided itself on this observation.
    """

    observation: Observation
    history: tuple[MetricSample, ...]
    decision: Decision
    own: Decision


@dataclass(frozen=True)
class Mismatch:
    """The first interval where a field of the two streams differs beyond its tolerance."""

    interval: int
    time_s: float
    field: str
    reference: object
    candidate: object
    tolerance: Tolerance

    def __str__(self) -> str:
        return (
            f"interval {self.interval} (t={self.time_s:g} s): {self.field} = "
            f"{show_value(self.reference)} (reference) vs "
            f"{show_value(self.candidate)} (candidate), "
            f"tolerance {self.tolerance}"
        )


@dataclass(frozen=True)
class ContractViolation:
    """A decision-contract property one engine broke, at its first occurrence."""

    engine: str
    interval: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.engine}, interval {self.interval}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class ConformanceReport:
    """What `check_policy` found.

    Attributes:
        policy: The policy's name.
        engines: (reference, candidate) engine names.
        intervals: Decision intervals compared.
        mismatches: The first mismatch of every field that has one, earliest first.
        violations: Contract violations, the first of each rule per engine.
        max_difference: Largest absolute difference per field over the run (history
            entries fold into their field; a None against a value counts as inf).
        decision_differences: Intervals where the policy, fed the candidate's
            observations, decided otherwise than it did on the reference's.
        first_decision_difference: The first such interval, or None.
    """

    policy: str
    engines: tuple[str, str]
    intervals: int
    mismatches: tuple[Mismatch, ...]
    violations: tuple[ContractViolation, ...]
    max_difference: Mapping[str, float]
    decision_differences: int
    first_decision_difference: int | None
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    reference_steps: tuple[Step, ...] = field(default=(), repr=False)
    candidate_steps: tuple[Step, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.violations

    @property
    def first_mismatch(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    def summary(self) -> str:
        """A few lines for a log or an assertion message."""
        reference, candidate = self.engines
        head = (
            f"policy {self.policy!r}, {reference} vs {candidate} (decisions replayed), "
            f"{self.intervals} intervals: {'passed' if self.passed else 'FAILED'}"
        )
        lines = [head]
        lines += [f"  mismatch: {m}" for m in self.mismatches]
        lines += [f"  contract: {v}" for v in self.violations]
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in self.max_difference.items() if v > 0)
        lines.append(f"  max differences: {diffs or 'none'}")
        lines.append(
            f"  decisions that differ on {candidate}'s observations: "
            f"{self.decision_differences}"
            + (
                f" (first at interval {self.first_decision_difference})"
                if self.first_decision_difference is not None
                else ""
            )
        )
        return "\n".join(lines)

    def raise_on_failure(self) -> None:
        """Raise `ConformanceError` with the summary unless the check passed."""
        if not self.passed:
            raise ConformanceError(self.summary())


def difference(a: object, b: object) -> float:
    """|a - b| for numbers; 0 for two Nones (or NaNs); inf for a None against a value."""
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    assert isinstance(a, int | float) and isinstance(b, int | float)
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    return abs(float(a) - float(b))


def show_value(value: object) -> str:
    """A value for a message: numpy floats as plain floats."""
    return repr(float(value)) if isinstance(value, float) else repr(value)
