"""Parameter updates on policy specs, with dotted paths into nested blocks.

Sweeps and the tuner both change a few fields of a spec. A top-level name
(`upper`) is the `model_copy(update=...)` case; a dotted name
(`hysteresis.scale_down.stabilization_window_s`) reaches into a nested block,
creating it from its defaults when the spec leaves it out. The result is always
re-validated (`model_copy` alone does not validate), so a bad value or a misspelt
field is a `PolicyError` naming it before anything runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from policies.spec import PolicySpecBase
from sim.errors import PolicyError


def _check_path(model: type[BaseModel], path: str, where: str) -> None:
    current: type[BaseModel] | None = model
    for part in path.split("."):
        if current is None or part not in current.model_fields:
            known = ", ".join(sorted(current.model_fields)) if current is not None else "(none)"
            raise PolicyError(
                f"{where}: {model.__name__} has no field {path!r} (at {part!r}); fields: {known}"
            )
        annotation = current.model_fields[part].annotation
        current = _model_in(annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `X`, `X | None`, or None for a leaf."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def updated_spec(spec: PolicySpecBase, params: dict[str, Any], where: str) -> PolicySpecBase:
    """`spec` with `params` (top-level or dotted names) applied and validated.

    Raises:
        PolicyError: A name is not a field of the spec, or a value is invalid.
    """
    flat = {name: value for name, value in params.items() if "." not in name}
    nested = {name: value for name, value in params.items() if "." in name}
    for name in params:
        _check_path(type(spec), name, where)
    # exclude_unset keeps "which fields did the user set", which some validators read
    # (e.g. a predictive spec's bin_s in AWS mode); model_copy marks updates as set.
    data = spec.model_copy(update=flat).model_dump(exclude_unset=True)
    for dotted, value in nested.items():
        *parents, leaf = dotted.split(".")
        node, live = data, spec
        for part in parents:
            live = getattr(live, part) if live is not None else None
            if node.get(part) is None:
                # A block left at its default: start from the default's full content
                # (its required fields), or from {} when the default is None.
                node[part] = live.model_dump() if isinstance(live, BaseModel) else {}
            node = node[part]
        node[leaf] = value
    try:
        return type(spec).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in exc.errors()
        )
        raise PolicyError(f"{where}: invalid parameters {params}: {problems}") from None
