"""`planner policies`: every preset with a one-line description and its main parameters.

The parameter values are read from the presets themselves (`policies.registry.PRESETS`),
so the listing cannot drift from what `--policies NAME` runs. A preset added to the
registry without an entry here is still listed, described by its spec's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.cli_app import app, guarded, stdout

#: preset -> (what it does, in one line; the dotted spec fields worth knowing).
DESCRIPTIONS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "hpa": (
        "Kubernetes HPA: replicas = ceil(current x utilisation / target), 10 % tolerance, "
        "300 s scale-down stabilisation",
        ("metric", "target"),
    ),
    "aws-target-tracking": (
        "EC2 Auto Scaling target tracking: CloudWatch-style alarms, instance warm-up, "
        "scale-in cooldown",
        ("target", "scale_out_after_s", "scale_in_after_s", "scale_in_cooldown_s"),
    ),
    "threshold": (
        "utilisation band: add step_out replicas above upper, remove step_in below lower, "
        "with cooldowns",
        ("upper", "lower", "step_out", "step_in", "cooldown_out_s", "cooldown_in_s"),
    ),
    "step": (
        "EC2 step scaling: two alarms (high, low) whose breach size picks the adjustment",
        ("high.threshold", "low.threshold", "instance_warmup_s"),
    ),
    "scheduled": (
        "cron windows that raise the floor or pin capacity, over an inner HPA",
        ("entries", "inner.kind"),
    ),
    "predictive": (
        "forecasts demand (ETS / SARIMAX on the history) and sizes for it by Erlang C, "
        "with a reactive floor",
        ("mode", "quantile", "max_utilisation", "floor_window_s", "min_history_days"),
    ),
    "anomaly": (
        "target tracking that pre-scales when demand leaves the forecast's band",
        ("target_utilisation", "z_threshold", "headroom", "hold_s"),
    ),
    "spillover": (
        "GPU pool sized for the base load, bursts sent to a serverless endpoint "
        "(needs a 'spillover:' pool in the scenario)",
        ("base", "base_quantile", "burst_quantile", "max_provisioned"),
    ),
    "fixed": (
        "a static fleet: fixed:N holds N replicas; plain 'fixed' provisions for peak "
        "(the pool's max_replicas)",
        ("replicas",),
    ),
}


@dataclass(frozen=True)
class CatalogEntry:
    """One preset as `planner policies` lists it."""

    name: str
    kind: str
    description: str
    parameters: dict[str, Any]


def _field(document: Mapping[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value[part]
    return value


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        names = [item.get("name", "?") for item in value if isinstance(item, Mapping)]
        return "[" + ", ".join(names) + "]" if names else f"{len(value)} items"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def catalog() -> list[CatalogEntry]:
    """Every preset of the registry, in its documented order."""
    from policies.registry import PRESETS

    entries = []
    for name, factory in PRESETS.items():
        spec = factory()
        document = spec.model_dump(mode="json")
        known = DESCRIPTIONS.get(name)
        if known is None:
            doc = (type(spec).__doc__ or spec.kind).strip().splitlines()[0]
            skip = {"schema_version", "kind", "name", "hysteresis"}
            fields: tuple[str, ...] = tuple(
                key for key, value in document.items() if key not in skip and _scalar(value)
            )[:5]
            description = doc
        else:
            description, fields = known
        parameters = {dotted: _field(document, dotted) for dotted in fields}
        entries.append(CatalogEntry(name, spec.kind, description, parameters))
    return entries


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@app.command("policies")
@guarded
def list_policies() -> None:
    """List every policy preset with a one-line description and its main parameters."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="policy presets (use with --policies NAME[,NAME...])", title_justify="left")
    for column in ("name", "what it does", "main parameters"):
        table.add_column(column, overflow="fold")
    for entry in catalog():
        shown = ", ".join(f"{key}={_show(value)}" for key, value in entry.parameters.items())
        table.add_row(entry.name, escape(entry.description), escape(shown))
    table.caption = (
        "also: fixed:N (N replicas), bundle:PATH (a bundle from `planner tune`, its folder "
        "or the --out root: the latest version). Tunable kinds: `planner tune --help`."
    )
    stdout.print(table)
