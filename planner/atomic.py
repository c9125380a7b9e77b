"""Atomic output files: write to a temporary sibling, then rename over the target.

A reader never sees a half-written report, and a failed run leaves nothing behind:
`rename` within one directory is atomic on POSIX. `StagedOutputs` collects every
output of a command and publishes them only once the whole run has succeeded.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import UserInputError


def _current_umask() -> int:
    # os.umask can only be read by setting it; set it straight back (one thread here).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would leave: the existing file's, else 0666 & ~umask.

    `mkstemp` creates its file 0600 whatever the umask, so without this every output
    was private, and overwriting a 0644 report made it 0600.
    """
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory.

    The file gets the mode a plain write would give it: an existing file keeps its
    mode, a new one gets 0666 less the umask.

    Raises:
        UserInputError: the parent directory does not exist or is not writable.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(
            f"cannot write {path}: directory {parent} does not exist; create it first"
        )
    mode = _target_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        os.fchmod(fd, mode)
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
    """Fail early when an output file could not be written later.

    Checked before the run: a missing or read-only directory, a directory in the
    file's place, or a read-only existing file fails in milliseconds, not after the
    simulation. Writability is probed by creating (and removing) a temporary file,
    which is what the atomic write will do.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserInputError(f"{option} {path} is a directory; pass a file path")
    if not parent.is_dir():
        raise UserInputError(
            f"{option} {path}: directory {parent} does not exist; create it or pick another path"
        )
    _probe_writable(parent, f"{option} {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserInputError(
            f"{option} {path} exists and is read-only; make it writable or pick another path"
        )


def _probe_writable(directory: Path, what: str) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".planner-probe.", dir=directory)
    except OSError as exc:
        raise UserInputError(
            f"{what}: cannot write in {directory} ({exc.strerror}); pick a writable directory"
        ) from None
    os.close(fd)
    Path(name).unlink(missing_ok=True)


def check_output_dir(path: Path, option: str) -> None:
    """Fail early when an output directory cannot be created later."""
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path} exists and is not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserInputError(f"{option} {path}: {ancestor} is not a directory")
    _probe_writable(ancestor, f"{option} {path}")
