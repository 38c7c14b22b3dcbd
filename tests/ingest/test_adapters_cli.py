"""`smartcity adapters list|run`: the adapters and a dry poll from a recorded response."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcity.cli import main
from tests.ingest.open_data_server import FIXTURES, open_data_server


@pytest.fixture(autouse=True)
def schemas(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    """Check what a dry run prints against the shared Smart Data Models schemas."""
    folder = shared_data / "smart-data-models"
    monkeypatch.setenv("SMARTCITY_INGEST_SCHEMA_DIRS", json.dumps([str(folder)]))


def test_list_shows_every_adapter_off_and_keyless_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["adapters", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["parking", "subway", "bus", "traffic"]
    assert all(" off " in line and "no key" in line for line in lines)
    assert "도봉구, 노원구" in lines[0]
    assert "창동, 노원" in lines[1]


def test_list_never_shows_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTCITY_ADAPTERS_ENABLED", '["parking"]')
    monkeypatch.setenv("SMARTCITY_SEOUL_OPEN_API_KEY", "SECRET-cli-key-55d1")
    assert main(["adapters", "list"]) == 0
    shown = capsys.readouterr().out
    assert "parking  enabled  key set" in shown
    assert "SECRET-cli-key-55d1" not in shown


def test_enabling_an_adapter_without_its_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTCITY_ADAPTERS_ENABLED", '["parking", "bus"]')
    assert main(["adapters", "list"]) == 2
    problem = capsys.readouterr().err
    assert "parking adapter needs seoul_open_api_key" in problem
    assert "bus adapter needs seoul_bus_api_key" in problem


def test_run_once_from_a_fixture_prints_what_it_would_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTCITY_ADAPTER_PARKING_DISTRICTS", '["노원구"]')
    fixture = FIXTURES / "parking-nowon.json"
    assert main(["adapters", "run", "parking", "--once", "--fixture", str(fixture)]) == 0
    captured = capsys.readouterr()
    (lot,) = json.loads(captured.out)
    assert lot["id"] == "urn:ngsi-ld:OffStreetParking:seoul-1120001"
    assert lot["availableSpotNumber"]["value"] == 55
    assert lot["@context"][0].endswith("dataModel.Parking/master/context.jsonld")
    assert "would be a dead letter (unmapped, map at PKLT_CD)" in captured.err
    assert "1 entity updates, 1 dead letters, 0 failed of 1 requests" in captured.err


def test_run_once_against_a_server_reports_a_failed_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_data_server() as server:
        server.serve(
            "/SECRET-subway-0c/json/realtimeStationArrival/0/20/창동", "subway-bad-key.json"
        )
        monkeypatch.setenv("SMARTCITY_SEOUL_SUBWAY_API_URL", server.base)
        monkeypatch.setenv("SMARTCITY_SEOUL_SUBWAY_API_KEY", "SECRET-subway-0c")
        monkeypatch.setenv("SMARTCITY_ADAPTER_SUBWAY_STATIONS", '{"창동": "changdong"}')
        assert main(["adapters", "run", "subway", "--once"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "request failed (api): INFO-100" in captured.err
    assert "SECRET-subway-0c" not in captured.err + captured.out


def test_a_missing_fixture_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "run", "traffic", "--once", "--fixture", "/nonexistent.xml"]) == 2
    assert "fixture file /nonexistent.xml does not exist" in capsys.readouterr().err
