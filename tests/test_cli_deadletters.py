"""`smartcity deadletters`: list, show and discard on the database; replay through the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.auth.principal import Caller
from smartcity.cli import main
from smartcity.config import Settings
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.platform import build_platform
from tests.serving import TEST_SECRET, create_admin_key, free_port, running_server


def _record(
    database_url: str, *items: tuple[str, bytes, Rejected], source: str = "mqtt"
) -> list[str]:
    """Record dead letters (tenant, payload, refusal) as ingestion would."""
    platform = build_platform(Settings(database_url=database_url, auth_secret=TEST_SECRET))
    try:
        return platform.deadletters.record_many(
            [
                (
                    RawInput(
                        tenant=tenant,
                        source=source,
                        payload=payload,
                        received_at="2026-11-28T01:00:00Z",
                        device_id="lamp-7",
                        topic="/ul/lamp-7/attrs",
                    ),
                    refusal,
                )
                for tenant, payload, refusal in items
            ]
        )
    finally:
        platform.close()


UNKNOWN = Rejected("unknown-device", "no device lamp-7: register it", stage="authenticate")
SCHEMA = Rejected("schema", "temperature: 'hot' is not a number", stage="validate", path="t")


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", url)
    monkeypatch.setenv("SMARTCITY_AUTH_SECRET", TEST_SECRET)
    return url


def test_help_explains_the_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["deadletters", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for action in ("list", "show", "replay", "discard", "re-map the device"):
        assert action in shown


def test_list_show_and_discard(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, _ = _record(
        database_url,
        ("", b"t|21.5", UNKNOWN),
        ("", b"\xff\xfe", SCHEMA),
        ("dobong", b"t|1", UNKNOWN),
    )
    assert main(["deadletters", "list"]) == 0
    listed = capsys.readouterr().out
    assert first in listed
    assert second in listed
    assert "2 of 2 dead letters (schema 1, unknown-device 1)" in listed
    assert main(["deadletters", "list", "--reason", "schema", "--json"]) == 0
    assert '"payloadEncoding":"base64"' in capsys.readouterr().out
    assert main(["deadletters", "show", first]) == 0
    shown = capsys.readouterr().out
    assert "payload: t|21.5" in shown
    assert "reason: unknown-device" in shown
    assert main(["deadletters", "discard", first]) == 0
    assert "1 of 1 dead letters discarded" in capsys.readouterr().out
    assert main(["deadletters", "discard", first]) == 1
    assert "discarded, not new" in capsys.readouterr().err
    assert main(["deadletters", "list", "--tenant", "dobong"]) == 0
    assert "1 of 1 dead letters" in capsys.readouterr().out
    assert main(["deadletters", "show", first, "--tenant", "dobong"]) == 1
    assert f"no dead letter {first}" in capsys.readouterr().err


def test_replay_needs_a_key_and_the_servers_replayers(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (letter,) = _record(database_url, ("", b"t|21.5", UNKNOWN), source="modbus")
    monkeypatch.delenv("SMARTCITY_API_KEY", raising=False)
    assert main(["deadletters", "replay", letter]) == 1
    assert "SMARTCITY_API_KEY" in capsys.readouterr().err
    assert main(["deadletters", "replay", letter, "--reason", "schema"]) == 2
    key_file = tmp_path / "key"
    key_file.write_text(create_admin_key(database_url) + "\n")
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert (
        main(["deadletters", "replay", letter, "--url", nowhere, "--api-key-file", str(key_file)])
        == 1
    )
    assert "is `smartcity serve` running there?" in capsys.readouterr().err
    with running_server(database_url) as url:
        code = main(
            ["deadletters", "replay", letter, "--url", url, "--api-key-file", str(key_file)]
        )
    # Nothing on this server speaks modbus: nothing can replay the letter, and it says so.
    assert code == 1
    assert "no replayer for source modbus" in capsys.readouterr().err
    platform = build_platform(Settings(database_url=database_url, auth_secret=TEST_SECRET))
    try:
        assert platform.deadletters.get(Caller.system(), letter).attempts == 0
    finally:
        platform.close()


def test_check_reports_a_missing_schema_folder(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "city.toml"
    config.write_text(f'ingest_schema_dirs = ["{tmp_path / "no-such-folder"}"]\n')
    assert main(["--config", str(config), "check"]) == 1
    assert "no-such-folder does not exist" in capsys.readouterr().err
