"""Atomic output files: write to a temporary sibling, then rename over the target.

A reader never sees a half-written report, and a failed run leaves nothing behind:
`rename` within one directory is atomic on POSIX. `StagedOutputs` collects every
output of a command and publishes them only once the whole run has succeeded.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import UserInputError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory.

    Raises:
        UserInputError: the parent directory does not exist or is not writable.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(
            f"cannot write {path}: directory {parent} does not exist; create it first"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@dataclass
class StagedOutputs:
    """Outputs held in memory until `publish`, so bad input leaves no partial files.

    Targets are checked up front (`check`), before any expensive work, so a typo in
    an output directory fails in milliseconds rather than after the simulation.
    """

    files: dict[Path, bytes] = field(default_factory=dict)
    directories: list[Path] = field(default_factory=list)

    def add(self, path: Path, data: bytes) -> None:
        self.files[path] = data

    def add_text(self, path: Path, text: str) -> None:
        self.add(path, text.encode("utf-8"))

    def add_json(self, path: Path, document: Any) -> None:
        """`document` as indented JSON; NaN or infinity is an error (strict JSON readers)."""
        self.add_text(path, json.dumps(document, indent=2, allow_nan=False) + "\n")

    def publish(self) -> list[Path]:
        """Create requested directories, then write every file atomically."""
        for directory in self.directories:
            directory.mkdir(parents=True, exist_ok=True)
        for path, data in self.files.items():
            write_bytes_atomic(path, data)
        return list(self.files)


def check_output_file(path: Path, option: str) -> None:
    """Fail early when an output file could not be written later."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserInputError(f"{option} {path} is a directory; pass a file path")
    if not parent.is_dir():
        raise UserInputError(
            f"{option} {path}: directory {parent} does not exist; create it or pick another path"
        )


def check_output_dir(path: Path, option: str) -> None:
    """Fail early when an output directory cannot be created later."""
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path} exists and is not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserInputError(f"{option} {path}: {ancestor} is not a directory")
