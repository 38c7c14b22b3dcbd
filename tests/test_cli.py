"""The `smartcity` command: help, check, and configuration errors."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from smartcity.cli import demo_lateness, main


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


def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", f"sqlite:///{tmp_path / 'city.db'}")
    monkeypatch.setenv("SMARTCITY_AUTH_SECRET", "a-secret-of-at-least-thirty-two-characters")


def test_user_add_reads_the_password_from_stdin_never_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(tmp_path, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert (
        main(["user", "add", "kim", "--tenant", "dobong", "--role", "operator", "--password-stdin"])
        == 0
    )
    assert "correct horse battery" not in capsys.readouterr().out
    assert main(["user", "list", "--tenant", "dobong"]) == 0
    assert "kim\tuser\toperator" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["user", "add", "lee", "--role", "admin", "--password", "secret"])
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "add", "lee", "--role", "admin", "--password-stdin"]) == 1
    assert "at least" in capsys.readouterr().err


def test_key_create_prints_the_key_once_then_list_and_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(tmp_path, monkeypatch)
    lamp = "urn:ngsi-ld:Streetlight:lamp-7"
    assert main(["key", "create", "--name", "lamp-7", "--role", "device", "--entity", lamp]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("sck_")
    assert main(["key", "list"]) == 0
    listed = capsys.readouterr().out
    prefix = "_".join(key.split("_", 2)[:2])
    assert prefix in listed
    assert key not in listed
    assert "active" in listed
    assert main(["key", "revoke", prefix]) == 0
    assert main(["key", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["key", "create", "--name", "lamp-8", "--role", "device"]) == 1
    assert "entities it feeds" in capsys.readouterr().err


def test_no_auth_is_refused_outside_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(tmp_path, monkeypatch)
    monkeypatch.setenv("SMARTCITY_ENVIRONMENT", "production")
    monkeypatch.setenv("SMARTCITY_CONTEXT_OFFLINE", "true")
    assert main(["serve", "--no-auth"]) == 2
    assert "development" in capsys.readouterr().err


def test_the_command_manages_principals_of_several_tenants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(tmp_path, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert (
        main(["user", "add", "kim", "--tenant", "dobong", "--role", "operator", "--password-stdin"])
        == 0
    )
    assert main(["user", "grant", "kim", "--tenant", "nowon", "--role", "analyst"]) == 0
    assert "analyst" in capsys.readouterr().out
    # Kim holds roles in two tenants: only the command on the server changes kim's password.
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert main(["user", "password", "kim", "--tenant", "nowon", "--password-stdin"]) == 0
    assert main(["user", "disable", "kim", "--tenant", "dobong"]) == 0
    assert main(["user", "list", "--tenant", "nowon"]) == 0
    assert "kim\tuser\tanalyst (disabled)" in capsys.readouterr().out
    assert main(["user", "revoke", "kim", "--tenant", "nowon", "--role", "analyst"]) == 0
    assert main(["user", "enable", "kim", "--tenant", "nowon"]) == 1
    assert "no principal named" in capsys.readouterr().err
    assert main(["user", "enable", "kim", "--tenant", "dobong"]) == 0


def test_the_demo_waits_for_late_readings_the_same_wall_time_at_any_speed() -> None:
    # At 60x a reading that lags another path's by a second is a minute late in simulated time.
    assert demo_lateness(1.0) == 5.0
    assert demo_lateness(0.5) == 5.0
    assert demo_lateness(60.0) == 300.0
    assert demo_lateness(math.inf) == 3600.0
