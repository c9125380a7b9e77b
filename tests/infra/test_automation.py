"""The Automation API path: a clear message when the Pulumi CLI is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import automation
from infra.automation import PulumiCliMissingError, require_cli


def test_missing_cli_message_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(PulumiCliMissingError) as err:
        require_cli(str(tmp_path / "no-pulumi-here"))
    message = str(err.value)
    assert message.startswith("the Pulumi CLI is not installed")
    assert "https://www.pulumi.com/docs/install/" in message


@pytest.mark.parametrize("command", [automation.preview, automation.up], ids=["preview", "up"])
def test_preview_and_up_fail_fast_without_the_cli(
    command: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty PATH: the CLI is missing whatever this machine has installed.
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PulumiCliMissingError, match="Pulumi CLI is not installed"):
        command("dev")  # type: ignore[operator]


def test_an_existing_executable_is_accepted(tmp_path: Path) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\n")
    assert require_cli(str(fake)) == str(fake)
