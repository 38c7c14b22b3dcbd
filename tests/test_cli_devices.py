"""`smartcity device ...`: add, import with a report, list, show and delete."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from smartcity.cli import main

CSV = """id,apiKey,entityId,entityType,attributes,reportingInterval
air-1,changdong-air,urn:ngsi-ld:AirQualityObserved:air-1,AirQualityObserved,t=temperature:CEL,60
air-2,changdong-air,urn:ngsi-ld:AirQualityObserved:air-2,AirQualityObserved,t=temperature:CEL,oft
"""


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", f"sqlite:///{tmp_path / 'city.db'}")
    monkeypatch.setenv("SMARTCITY_AUTH_SECRET", "a-secret-of-at-least-thirty-two-characters")
    monkeypatch.setenv("SMARTCITY_CONTEXT_OFFLINE", "true")


def test_devices_are_imported_listed_shown_and_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices.csv"
    devices.write_text(CSV)
    assert main(["device", "import", str(devices), "--tenant", "dobong"]) == 1
    report = capsys.readouterr().err
    assert "devices.csv: 1 created, 0 updated, 1 failed" in report
    assert "row 2: reportingInterval: 'oft' is not a number of seconds" in report
    assert main(["device", "list", "--tenant", "dobong"]) == 0
    listed = capsys.readouterr().out
    assert "air-1" in listed
    assert "1 device(s)" in listed
    assert main(["device", "show", "air-1", "--tenant", "dobong"]) == 0
    out = capsys.readouterr().out
    shown = orjson.loads(out[out.index("\n{") :])  # after the log lines
    assert shown["attributes"][0]["unit"] == "CEL"
    assert "apiKey" not in shown
    assert main(["device", "show", "air-1"]) == 1  # another tenant
    assert "no device air-1" in capsys.readouterr().err
    assert main(["device", "delete", "air-1", "--tenant", "dobong"]) == 0
    assert main(["device", "list", "--tenant", "dobong"]) == 0
    assert "0 device(s)" in capsys.readouterr().out


def test_a_device_added_without_a_key_gets_one_printed_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = [
        "device",
        "add",
        "lamp-7",
        "--entity-id",
        "urn:ngsi-ld:Streetlight:lamp-7",
        "--entity-type",
        "Streetlight",
        "--attribute",
        "l=illuminanceLevel",
        "--command",
        "dim",
    ]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert len(key) >= 32
    monkeypatch.setattr("sys.stdin", io.StringIO("lamps-of-changdong\n"))
    assert main([*arguments[:2], "lamp-8", *arguments[3:], "--api-key-stdin"]) == 0
    assert "lamps-of-changdong" not in capsys.readouterr().out
