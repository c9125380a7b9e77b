"""Outputs are written atomically and only when published."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planner.atomic import (
    StagedOutputs,
    check_output_dir,
    check_output_file,
    write_bytes_atomic,
)
from sim.errors import UserInputError


def test_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    write_bytes_atomic(target, b"new content")
    assert target.read_text() == "new content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_into_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        write_bytes_atomic(tmp_path / "nope" / "out.json", b"x")
    assert list(tmp_path.iterdir()) == []


def test_staged_outputs_write_nothing_until_published(tmp_path: Path) -> None:
    staged = StagedOutputs()
    staged.directories.append(tmp_path / "plots")
    staged.add_text(tmp_path / "a.txt", "a")
    staged.add(tmp_path / "plots" / "b.png", b"\x89PNG")
    assert list(tmp_path.iterdir()) == []
    written = staged.publish()
    assert sorted(p.name for p in written) == ["a.txt", "b.png"]
    assert (tmp_path / "plots" / "b.png").read_bytes() == b"\x89PNG"


def test_staged_json_is_indented_strict_and_newline_terminated(tmp_path: Path) -> None:
    staged = StagedOutputs()
    staged.add_json(tmp_path / "rows.json", [{"cost_usd": 1.5}])
    staged.publish()
    assert (tmp_path / "rows.json").read_text() == '[\n  {\n    "cost_usd": 1.5\n  }\n]\n'
    with pytest.raises(ValueError, match="Out of range float"):
        staged.add_json(tmp_path / "bad.json", {"x": float("nan")})


def _file(path: Path) -> Path:
    path.write_text("")
    return path


@pytest.mark.parametrize(
    ("make", "check", "fragment"),
    [
        (lambda d: d / "missing" / "x.json", check_output_file, "does not exist"),
        (lambda d: d, check_output_file, "is a directory"),
        (lambda d: _file(d / "f"), check_output_dir, "not a directory"),
    ],
    ids=["file-in-missing-dir", "file-is-dir", "dir-is-file"],
)
def test_output_checks_fail_early(
    tmp_path: Path,
    make: Callable[[Path], Path],
    check: Callable[[Path, str], None],
    fragment: str,
) -> None:
    with pytest.raises(UserInputError, match=fragment):
        check(make(tmp_path), "--opt")
