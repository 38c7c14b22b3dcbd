"""`smartcity incident`: list, show, acknowledge and close on the database."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.cli import main
from smartcity.config import Settings
from smartcity.operations.incidents import IncidentDraft
from smartcity.platform import build_platform
from tests.operations.district import ALLEY_MARKET, load, point
from tests.serving import TEST_SECRET


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", url)
    monkeypatch.setenv("SMARTCITY_AUTH_SECRET", TEST_SECRET)
    return url


def _open(database_url: str) -> str:
    platform = build_platform(Settings(database_url=database_url, auth_secret=TEST_SECRET))
    try:
        draft = IncidentDraft(type="fire", subtype="building", severity="critical", title="화재")
        return platform.operations.incidents.create(Caller.system("dobong"), draft).id
    finally:
        platform.close()


def test_incidents_from_the_command_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = _open(database_url)
    assert main(["incident", "list", "--tenant", "dobong"]) == 0
    listed = capsys.readouterr()
    assert incident_id in listed.out
    assert "1 incident(s)" in listed.err
    assert main(["incident", "list"]) == 0  # another tenant: nothing
    assert incident_id not in capsys.readouterr().out
    assert main(["incident", "ack", incident_id, "--tenant", "dobong", "--actor", "kim"]) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert main(["incident", "close", incident_id, "--tenant", "dobong"]) == 1
    assert "needs a note" in capsys.readouterr().err
    closing = ["incident", "close", incident_id, "--tenant", "dobong", "--note", "진화 완료"]
    assert main(closing) == 0
    capsys.readouterr()
    assert main(["incident", "show", incident_id, "--tenant", "dobong", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["status"] == "closed"
    assert [e["event"] for e in shown["timeline"]] == ["created", "acknowledged", "closed"]
    assert shown["timeline"][1]["actor"] == "cli:kim"
    assert main(["incident", "show", "INC-nope", "--tenant", "dobong"]) == 1


def test_dispatch_packages_from_the_command_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = build_platform(
        Settings(database_url=database_url, auth_secret=TEST_SECRET, context_offline=True)
    )
    try:
        load(platform, "dobong")
        platform.accounts.create_key(Caller.system("dobong"), "fire", ["agency"])
        draft = IncidentDraft(
            "fire", "critical", "시장 화재", "building", location=point(ALLEY_MARKET)
        )
        incident_id = platform.operations.incidents.create(Caller.system("dobong"), draft).id
    finally:
        platform.close()
    tenant = ["--tenant", "dobong", "--actor", "kim"]
    assert main(["incident", "send", incident_id, "fire-site", "--agency", "fire", *tenant]) == 0
    package_id, kind, agency = capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    assert (kind, agency) == ("fire-site", "fire")
    assert main(["incident", "packages", incident_id, "--json", *tenant]) == 0
    listed = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listed["id"] == package_id
    assert listed["body"]["building"]["fireRiskGrade"]["grade"] == "2"
    assert main(["incident", "green-wave", incident_id, package_id, *tenant]) == 0
    assert "failed" in capsys.readouterr().out  # no signal controller is registered here
    assert main(["incident", "send", incident_id, "escape-routes", *tenant]) == 1
    assert "name the police" in capsys.readouterr().err
    assert main(["incident", "send", incident_id, "disaster", "--hazard", "flood", *tenant]) == 1
    assert "disaster incidents" in capsys.readouterr().err
