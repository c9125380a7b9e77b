"""Write `scaleplan:scaling` into a `Pulumi.<stack>.yaml`, keeping everything else.

A ruamel.yaml round trip: every other key, its formatting and every comment stay as
they are; only the value of `scaleplan:scaling` is replaced (or added at the end of
`config:`). The result is checked before it is returned: parsed again, every other
key must equal the original and the block must equal what was asked for, so a
formatting surprise can never reach the file. Writes are atomic.
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from planner.atomic import write_bytes_atomic
from policies.stack_config import CONFIG_KEY, StackScaling
from sim.errors import StackConfigError

#: Leaf mappings up to this many keys are written on one line (`bounds: {min: 1, max: 4}`).
FLOW_KEYS = 6
#: ... and short enough to read there (a long prometheus query gets its own lines).
FLOW_CHARS = 100


def _yaml() -> YAML:
    handler = YAML()
    handler.preserve_quotes = True
    # Never fold: long image names and flow lists stay on one line, as written.
    handler.width = 4096
    handler.indent(mapping=2, sequence=4, offset=2)
    return handler


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # `target: 70`, not `70.0` (the schema reads both)
    if isinstance(value, str):
        # Quote a string a YAML reader would take for something else ("1", a timestamp).
        try:
            plain_ok = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain_ok = False
        if not plain_ok or any(c in value for c in "{}[],#&*!|>'\"%@`"):
            return DoubleQuotedScalarString(value)
    return value


def _styled(value: Any) -> Any:
    """Plain data -> ruamel nodes: small leaf mappings and scalar lists in flow style."""
    if isinstance(value, dict):
        node = CommentedMap((k, _styled(v)) for k, v in value.items())
        leaf = all(not isinstance(v, dict | list) for v in value.values())
        if leaf and len(value) <= FLOW_KEYS and len(repr(value)) <= FLOW_CHARS:
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_styled(v) for v in value)
        if all(not isinstance(v, dict | list) for v in value):
            seq.fa.set_flow_style()
        return seq
    return _scalar(value)


def render(text: str, scaling: StackScaling, source: str) -> str:
    """`text` (a stack file) with its `scaleplan:scaling` replaced by `scaling`.

    Raises:
        StackConfigError: The file is not a stack file (no `config:` mapping), or the
            round trip would change anything but the block.
    """
    handler = _yaml()
    try:
        doc = handler.load(text)
    except Exception as exc:  # ruamel raises many YAMLError flavours
        raise StackConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise StackConfigError(f"{source}: expected a top-level `config:` mapping")
    value = scaling.to_config()
    doc["config"][CONFIG_KEY] = _styled(value)
    out = io.StringIO()
    handler.dump(doc, out)
    rendered = out.getvalue()
    _check(text, rendered, value, source)
    return rendered


def _check(before: str, after: str, value: dict[str, Any], source: str) -> None:
    old = yaml.safe_load(before)["config"]
    new = yaml.safe_load(after)["config"]
    old.pop(CONFIG_KEY, None)
    written = new.pop(CONFIG_KEY, None)
    if old != new or _plain(written) != _plain(value):
        raise StackConfigError(
            f"{source}: writing {CONFIG_KEY} would change other keys or misstate the block; "
            "nothing written (report this with the file attached)"
        )
    kept = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    missing = [line for line in kept if line not in after.splitlines()]
    if missing:
        raise StackConfigError(f"{source}: writing {CONFIG_KEY} would drop comments: {missing}")


def _plain(value: Any) -> Any:
    # JSON-ish comparison: YAML may read a quoted timestamp back as a string either way.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def unified_diff(before: str, after: str, path: Path) -> str:
    """A `git diff`-style unified diff of the stack file."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path.name}",
            tofile=f"b/{path.name}",
        )
    )


def write(path: Path, text: str) -> None:
    """Replace the stack file atomically (a reader sees the old file or the new one)."""
    write_bytes_atomic(path, text.encode("utf-8"))
