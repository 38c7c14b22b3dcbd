"""The simulator's API: who may control it, and start, jump, pause, re-speed and stop a run.

A run here sends real MQTT to Mosquitto on this test's own topic prefix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.ingest.mqtt import MqttOptions, forget_session
from smartcity.platform import build_platform
from smartcity.web.app import create_app
from tests.conftest import check_service
from tests.web.conftest import TEST_SECRET


def _probe_mosquitto() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}")
    client.connect("127.0.0.1", 1883, keepalive=5)
    client.disconnect()


def _settings(tmp_path: Path, shared_data: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'sim.db'}",
        "context_offline": True,
        "context_preload_smart_data_models": str(shared_data / "smart-data-models"),
        "auth_secret": TEST_SECRET,
        "notifications_enabled": False,
        **changes,
    }
    return Settings.model_validate(values)


def _key(client: TestClient, role: str, tenant: str = "") -> dict[str, str]:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    entities = ["urn:ngsi-ld:Streetlight:x"] if role == "device" else []
    key = platform.accounts.create_key(Caller.system(tenant), name, [role], entities).key
    return {"X-API-Key": key, **({"NGSILD-Tenant": tenant} if tenant else {})}


@pytest.fixture
def disabled(tmp_path: Path, shared_data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(build_platform(_settings(tmp_path, shared_data)))) as client:
        yield client


@pytest.fixture
def enabled(tmp_path: Path, shared_data: Path) -> Iterator[TestClient]:
    check_service("Mosquitto", _probe_mosquitto)
    token = uuid.uuid4().hex[:12]
    settings = _settings(
        tmp_path,
        shared_data,
        sim_enabled=True,
        sim_autostart=False,
        ingest_mqtt_enabled=True,
        ingest_mqtt_client_id=f"test-simapi-{token}",
        ingest_mqtt_topic_prefix=f"/test-simapi-{token}",
        ingest_mqtt_session_expiry=300,
    )
    with TestClient(create_app(build_platform(settings))) as client:
        yield client
    asyncio.run(forget_session(MqttOptions(client_id=settings.ingest_mqtt_client_id)))


def test_a_platform_without_the_simulator_says_so(disabled: TestClient) -> None:
    admin = _key(disabled, "admin")
    assert disabled.get("/sim/v1/status", headers=admin).json() == {
        "enabled": False,
        "state": "idle",
    }
    response = disabled.post("/sim/v1/start", json={"scenario": "concert-night"}, headers=admin)
    assert response.status_code == 409
    assert "not enabled" in response.json()["detail"]
    names = [s["name"] for s in disabled.get("/sim/v1/scenarios", headers=admin).json()]
    assert "concert-night" in names


def test_only_admins_and_operators_control_it_in_its_tenant(enabled: TestClient) -> None:
    start = {"scenario": "concert-night"}
    assert enabled.get("/sim/v1/status").status_code == 401
    assert enabled.post("/sim/v1/start", json=start).status_code == 401
    analyst = _key(enabled, "analyst")
    assert enabled.get("/sim/v1/status", headers=analyst).status_code == 200
    refused = enabled.post("/sim/v1/start", json=start, headers=analyst)
    assert refused.status_code == 403
    assert enabled.post("/sim/v1/stop", headers=_key(enabled, "device")).status_code == 403
    elsewhere = enabled.post("/sim/v1/start", json=start, headers=_key(enabled, "admin", "other"))
    assert elsewhere.status_code == 403
    assert "ask in that tenant" in elsewhere.json()["detail"]
    bad = enabled.post("/sim/v1/start", json={**start, "colour": "red"}, headers=analyst)
    assert bad.status_code in (400, 422)
    missing = enabled.post(
        "/sim/v1/start", json={"scenario": "picnic"}, headers=_key(enabled, "operator")
    )
    assert missing.status_code == 404


def test_an_operator_starts_jumps_pauses_and_stops_a_run(enabled: TestClient) -> None:
    operator = _key(enabled, "operator")
    assert enabled.post("/sim/v1/pause", headers=operator).status_code == 409  # nothing runs
    body = {"scenario": "concert-night", "speed": 60, "seed": 3, "until": "21:00"}
    started = enabled.post("/sim/v1/start", json=body, headers=operator)
    assert started.status_code == 200, started.text
    status = started.json()
    assert (status["state"], status["scenario"], status["devices"]) == (
        "running",
        "concert-night",
        1963,
    )
    assert status["start"] == "2026-11-27T07:00:00.000000Z"
    jumped = enabled.post("/sim/v1/jump", json={"to": "19:00"}, headers=operator)
    assert jumped.status_code == 200, jumped.text
    deadline = time.monotonic() + 30
    while enabled.get("/sim/v1/status", headers=operator).json()["simulatedTime"] < (
        "2026-11-27T10:00:00"
    ):
        assert time.monotonic() < deadline, "the jump did not happen"
        time.sleep(0.1)
    back = enabled.post("/sim/v1/jump", json={"to": "17:00"}, headers=operator)
    assert back.status_code == 400
    assert "cannot go back" in back.json()["detail"]
    paused = enabled.post("/sim/v1/pause", headers=operator).json()
    assert paused["paused"] is True
    resumed = enabled.post("/sim/v1/speed", json={"speed": "max"}, headers=operator).json()
    assert resumed["speed"] == "max"
    enabled.post("/sim/v1/resume", headers=operator)
    deadline = time.monotonic() + 60
    while enabled.get("/sim/v1/status", headers=operator).json()["stats"]["emitted"] < 500:
        assert time.monotonic() < deadline, "nothing was sent"
        time.sleep(0.2)
    stopped = enabled.post("/sim/v1/stop", headers=operator).json()
    assert stopped["state"] == "stopped"
    assert stopped["stats"]["skippedMinutes"] >= 60
    platform = enabled.app.state.platform  # type: ignore[attr-defined]
    assert platform.iot.devices.get(
        Caller.system(), "changdong-detector-0001"
    ).spec.entity.type == ("TrafficFlowObserved")


def _command_status(client: TestClient, device_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        (command,) = client.get(f"/iot/v1/devices/{device_id}/commands", headers=headers).json()
        if command["status"] not in ("pending", "delivered") or time.monotonic() > deadline:
            return dict(command)
        time.sleep(0.2)


def test_simulated_lamps_obey_brighten_through_mosquitto_unless_broken(
    enabled: TestClient,
) -> None:
    operator = _key(enabled, "operator")
    body = {"scenario": "night-assault", "speed": 60, "seed": 1}
    assert enabled.post("/sim/v1/start", json=body, headers=operator).status_code == 200
    simulation = enabled.app.state.simulation.runner.simulation  # type: ignore[attr-defined]
    lamps = sorted(
        (d for d in simulation.devices if d.kind.name == "streetlight"), key=lambda d: d.id
    )
    working = next(d for d in lamps if d.subject not in simulation.broken)
    broken = next(d for d in lamps if d.subject in simulation.broken)
    brighten = {"name": "brighten", "params": {"illuminanceLevel": 1.0, "duration": "PT20M"}}
    for device in (working, broken):
        sent = enabled.post(
            f"/iot/v1/devices/{device.id}/commands", json=brighten, headers=operator
        )
        assert sent.status_code == 202, sent.text
    obeyed = _command_status(enabled, working.id, operator)
    assert obeyed["status"] == "ok", obeyed
    assert str(obeyed["info"]).startswith("on at 100% until ")
    refused = _command_status(enabled, broken.id, operator)
    assert refused["status"] == "error", refused
    assert "defective lamp" in str(refused["info"])
    lamp_entity = f"/ngsi-ld/v1/entities/{working.entity_id}"
    deadline = time.monotonic() + 30
    while True:
        shown = enabled.get(lamp_entity, params={"options": "keyValues"}, headers=operator).json()
        shown = {name.rsplit("/", 1)[-1]: value for name, value in shown.items()}
        if shown.get("illuminanceLevel") == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (shown.get("illuminanceLevel"), shown.get("powerState")) == (1.0, "on")
    assert enabled.post("/sim/v1/stop", headers=operator).status_code == 200
