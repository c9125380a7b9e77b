"""Output files keep the user's umask and an existing file's mode; unwritable targets fail early."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.atomic import check_output_dir, check_output_file, write_bytes_atomic
from sim.errors import UserInputError


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_0666_less_the_umask(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "report.json"
    write_bytes_atomic(target, b"{}")
    assert _mode(target) == 0o644
    os.umask(0o077)
    private = tmp_path / "private.json"
    write_bytes_atomic(private, b"{}")
    assert _mode(private) == 0o600


def test_overwriting_keeps_the_existing_mode(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "shared.html"
    target.write_text("old")
    target.chmod(0o664)
    write_bytes_atomic(target, b"new")
    assert target.read_text() == "new"
    assert _mode(target) == 0o664


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_fails_before_the_run(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(UserInputError, match="cannot write in"):
            check_output_file(locked / "out.json", "--json")
        with pytest.raises(UserInputError, match="cannot write in"):
            check_output_dir(locked / "plots", "--plot-dir")
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_file_fails_before_the_run(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("{}")
    target.chmod(0o444)
    with pytest.raises(UserInputError, match="read-only"):
        check_output_file(target, "--json")


def test_a_file_in_place_of_the_directory_fails_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "plots"
    blocker.write_text("not a directory")
    with pytest.raises(UserInputError, match="not a directory"):
        check_output_dir(blocker / "sub", "--plot-dir")
    with pytest.raises(UserInputError, match="does not exist"):
        check_output_file(blocker / "out.json", "--json")
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]  # the probe left nothing


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_an_unwritable_directory_fails_even_for_root() -> None:
    # sysfs refuses new files to every user, root included: the probe finds it.
    with pytest.raises(UserInputError, match=r"cannot write in /sys"):
        check_output_file(Path("/sys/out.json"), "--json")
