"""`smartcity simulate`: list and check scenarios, a dry run's digest, a run through Mosquitto."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.cli import main
from smartcity.ingest.mqtt import MqttOptions, forget_session
from smartcity.sim.district import load_district
from smartcity.sim.emission import digest
from smartcity.sim.engine import Simulation
from smartcity.sim.scenario import load_scenario
from tests.conftest import check_service

SEOUL = ZoneInfo("Asia/Seoul")


def test_list_shows_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list"]) == 0
    shown = capsys.readouterr().out
    for name in ("normal-weekday", "concert-night", "heavy-rain", "device-faults"):
        assert name in shown


def test_check_reports_each_problem_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text('name: good\ntitle: Good\ndate: 2026-11-25\nstart: "08:00"\nduration: 1h\n')
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("duration: 1h", "duration: 1h\ndemand: lots"))
    assert main(["simulate", "--check", str(good), str(bad)]) == 1
    shown = capsys.readouterr().err
    assert f"{good}: OK" in shown
    assert "bad.yaml line 6: demand: Input should be a valid number" in shown
    assert "write a factor on the usual demand, e.g. 1.0" in shown


def test_a_dry_run_prints_the_digest_of_what_it_would_send(
    capsys: pytest.CaptureFixture[str],
) -> None:
    arguments = ["simulate", "--scenario", "concert-night", "--seed", "5", "--dry-run"]
    arguments += ["--jump", "19:00", "--until", "19:10"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    shown = re.search(r"emissions: (\d+)  digest: ([0-9a-f]{64})", printed)
    assert shown is not None
    district = load_district()
    simulation = Simulation(district, load_scenario("concert-night", district), 5)
    simulation.skip_to(datetime(2026, 11, 27, 19, 0, tzinfo=SEOUL))
    emitted = [
        e
        for _, batch in simulation.run(datetime(2026, 11, 27, 19, 10, tzinfo=SEOUL))
        for e in batch
    ]
    assert int(shown.group(1)) == len(emitted)
    assert shown.group(2) == digest(emitted)


def _probe_mosquitto() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}")
    client.connect("127.0.0.1", 1883, keepalive=5)
    client.disconnect()


def test_a_run_here_goes_through_mosquitto_into_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check_service("Mosquitto", _probe_mosquitto)
    token = uuid.uuid4().hex[:12]
    client_id = f"test-simcli-{token}"
    monkeypatch.setenv("SMARTCITY_INGEST_MQTT_CLIENT_ID", client_id)
    monkeypatch.setenv("SMARTCITY_INGEST_MQTT_TOPIC_PREFIX", f"/test-simcli-{token}")
    monkeypatch.setenv("SMARTCITY_CONTEXT_OFFLINE", "true")
    monkeypatch.setenv("SMARTCITY_NOTIFICATIONS_ENABLED", "false")
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    arguments = ["simulate", "--scenario", "device-faults", "--speed", "max", "--seed", "2"]
    arguments += ["--jump", "08:30", "--until", "08:33", "--database-url", database]
    try:
        assert main(arguments) == 0
    finally:
        asyncio.run(forget_session(MqttOptions(client_id=client_id)))
    printed = capsys.readouterr().out
    shown = re.search(r"readings stored: ([\d,]+)", printed)
    assert shown is not None
    sent = re.search(r"messages sent: ([\d,]+)", printed)
    assert sent is not None
    refused = re.search(r"expected dead letters\): conversion (\d+), unparsable (\d+)", printed)
    assert refused is not None
    expected = int(sent.group(1).replace(",", "")) - int(refused.group(1)) - int(refused.group(2))
    assert int(shown.group(1).replace(",", "")) == expected
    conversion, unparsable = int(refused.group(1)), int(refused.group(2))
    assert conversion >= 1
    assert unparsable >= 1  # the scenario's faulty devices sent some of each
    wanted = {"conversion": conversion, "unparsable": unparsable}
    assert f"dead letters in the tenant: {wanted}" in printed
