"""The `smartcity` command: help, check, and configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for command in ("serve", "demo", "check"):
        assert command in shown


def test_check_reaches_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "city.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "city.db"}"\n')
    assert main(["--config", str(config), "check"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_bad_configuration_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "city.toml"
    config.write_text("port = 0\n")
    assert main(["--config", str(config), "check"]) == 2
    assert "port" in capsys.readouterr().err
