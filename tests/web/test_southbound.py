"""The HTTP southbound (/iot/json, /iot/d) and the agent behind it, on both backends: readings
on the bus, refusals as dead letters with the right reason, replay after a fix, device health."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import ManualClock
from smartcity.ingest.readings import Reading
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetter, DeadLetterFilter
from smartcity.web.app import create_app
from tests.iot_support import DEVICE_CONTEXT_LINK, BusTap, air_sensor
from tests.web.conftest import admin_key

T = TypeVar("T")
START = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
KEY = "changdong-weather"


@pytest.fixture
def settings(settings: Settings, shared_data: Path) -> Settings:
    """The web settings, with the Smart Data Models schemas checked."""
    folder = str(shared_data / "smart-data-models")
    return settings.model_copy(update={"ingest_schema_dirs": [folder]})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Platform:
    return build_platform(settings, clock)


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        test_client.headers["X-API-Key"] = admin_key(platform)
        yield test_client


@pytest.fixture
def tap(client: TestClient, platform: Platform) -> BusTap:
    return BusTap(platform.bus, "ingest.readings.>", f"test-{uuid.uuid4().hex}")


def readings(client: TestClient, tap: BusTap, at_least: int) -> list[Reading]:
    assert client.portal is not None
    return client.portal.call(tap.readings, at_least)


def wait_for(probe: Callable[[], T | None], within: float = 10.0) -> T:
    """Return what `probe` gives once it gives something (AssertionError after `within` s)."""
    deadline = time.monotonic() + within
    while (found := probe()) is None or found == []:
        assert time.monotonic() < deadline, "nothing came in time"
        time.sleep(0.05)
    return found


def letters(platform: Platform, **where: str) -> list[DeadLetter]:
    page = platform.deadletters.page(Caller.system(), DeadLetterFilter(**where), limit=100)
    return page.letters


def post(client: TestClient, path: str, body: bytes, key: str = KEY, device: str = "ws-1") -> Any:
    return client.post(
        path, params={"k": key, "i": device}, content=body, headers={"X-API-Key": ""}
    )


def test_json_measures_become_standardized_readings(
    client: TestClient, platform: Platform, tap: BusTap
) -> None:
    assert client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY)).status_code == 201
    body = b'{"t": 21.5, "h": 40, "f": 50, "TimeInstant": "2026-11-28T10:00:00+09:00"}'
    answer = client.post(
        "/iot/json", params={"k": KEY, "i": "ws-1"}, content=body, headers={"X-API-Key": ""}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"readings": 1}
    (reading,) = readings(client, tap, 1)
    assert (reading.entity_id, reading.entity_type) == (
        "urn:ngsi-ld:AirQualityObserved:ws-1",
        "AirQualityObserved",
    )
    assert (reading.source, reading.device_id, reading.tenant) == ("http", "ws-1", "")
    observed = "2026-11-28T01:00:00.000000Z"
    assert reading.attributes == {
        "temperature": {
            "type": "Property",
            "value": 21.5,
            "unitCode": "CEL",
            "observedAt": observed,
        },
        "relativeHumidity": {"type": "Property", "value": 0.4, "observedAt": observed},
        "temperatureF": {"type": "Property", "value": 10.0, "observedAt": observed},
    }
    # The ingest writer stores it: the entity and its temporal history.
    entity_path = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:ws-1"
    stored = wait_for(lambda: client.get(entity_path).json().get("temperature"))
    assert (stored["value"], stored["observedAt"]) == (21.5, observed)
    history = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:ws-1")
    assert [i["value"] for i in history.json()["temperature"]] == [21.5]


def test_ultralight_groups_become_one_reading_each(
    client: TestClient, platform: Platform, tap: BusTap, clock: ManualClock
) -> None:
    client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY, protocol="ul"))
    answer = client.post(
        "/iot/d",
        params={"k": KEY, "i": "ws-1"},
        content=b"2026-11-28T00:59:00Z|t|20.5#t|21|h|41",
        headers={"X-API-Key": ""},
    )
    assert answer.json() == {"readings": 2}
    first, second = readings(client, tap, 2)
    assert first.attributes["temperature"]["observedAt"] == "2026-11-28T00:59:00.000000Z"
    assert first.attributes["temperature"]["value"] == 20.5
    assert second.attributes["temperature"]["observedAt"] == "2026-11-28T01:00:00.000000Z"
    assert second.attributes["relativeHumidity"]["value"] == 0.41


def test_keys_and_devices_answer_401_or_404_and_become_dead_letters(
    client: TestClient, platform: Platform
) -> None:
    client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY))
    anonymous = {"X-API-Key": ""}
    cases = [
        ({"k": "wrong-key", "i": "ws-1"}, 401, "bad-key"),
        ({"k": "wrong-key", "i": "ws-9"}, 401, "unknown-device"),
        ({"k": KEY, "i": "ws-9"}, 404, "unknown-device"),
    ]
    details = set()
    for params, status, reason in cases:
        answer = client.post("/iot/json", params=params, content=b'{"t": 1}', headers=anonymous)
        assert answer.status_code == status
        assert answer.headers["Content-Type"] == "application/problem+json"
        if status == 401:
            details.add(answer.json()["detail"])
        letter = letters(platform, device_id=params["i"], reason=reason)[0]  # the newest
        assert letter.payload == b'{"t": 1}'
        assert letter.source == "http"
        assert letter.stage == "authenticate"
        assert "wrong-key" not in str(letter.meta)
        assert "wrong-key" not in (letter.topic or "")
    assert details == {"unknown device or wrong key"}
    assert client.post("/iot/json", params={"i": "ws-1"}, headers=anonymous).status_code == 401


def test_unusable_payloads_answer_400_with_the_reason_and_are_kept(
    client: TestClient, platform: Platform
) -> None:
    client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY))
    anonymous = {"X-API-Key": ""}
    cases = [
        (b'{"t": 21.5,', "unparsable", "decode"),
        (b'{"x": 1}', "unmapped", "map"),
        (b'{"t": "warm"}', "schema", "validate"),
        (b'{"t": 1, "TimeInstant": "yesterday"}', "time", "normalize"),
        (b'{"f": "hot"}', "conversion", "map"),
    ]
    for payload, reason, stage in cases:
        answer = client.post(
            "/iot/json", params={"k": KEY, "i": "ws-1"}, content=payload, headers=anonymous
        )
        assert answer.status_code == 400, payload
        problem = answer.json()
        assert (problem["reason"], problem["stage"]) == (reason, stage), problem
        (letter,) = letters(platform, reason=reason)
        assert (letter.payload, letter.stage, letter.device_id) == (payload, stage, "ws-1")
        assert letter.message == problem["detail"]


def test_a_dead_letter_is_replayed_once_the_mapping_is_fixed(
    client: TestClient, platform: Platform, tap: BusTap
) -> None:
    client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY))
    answer = client.post(
        "/iot/json",
        params={"k": KEY, "i": "ws-1"},
        content=b'{"temp": 19.0}',
        headers={"X-API-Key": ""},
    )
    assert answer.json()["reason"] == "unmapped"
    (letter,) = letters(platform, reason="unmapped")
    mapping = [{"objectId": "temp", "name": "temperature", "unit": "CEL"}]
    assert client.patch("/iot/v1/devices/ws-1", json={"attributes": mapping}).status_code == 200
    assert client.portal is not None
    report = client.portal.call(
        lambda: platform.deadletters.replay(Caller.system(), ids=[letter.id])
    )
    assert [outcome.outcome for outcome in report.outcomes] == ["replayed"]
    (reading,) = readings(client, tap, 1)
    assert reading.source == "replay"
    assert reading.attributes["temperature"]["value"] == 19.0
    assert reading.attributes["temperature"]["observedAt"] == letter.received_at


def test_devices_are_seen_fall_silent_and_recover(
    client: TestClient, platform: Platform, clock: ManualClock
) -> None:
    client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY))
    events = BusTap(platform.bus, "events.device.>", f"test-{uuid.uuid4().hex}")
    assert client.portal is not None
    portal = client.portal
    clock.advance(timedelta(seconds=91))  # 60 s interval x 1.5 tolerance, never heard from
    (silent,) = portal.call(platform.iot.health.check)
    assert silent.id == "ws-1"
    assert portal.call(platform.iot.health.check) == []  # marked once
    event = orjson.loads(portal.call(events.fetch, 1)[0])
    assert (event["event"], event["deviceId"], event["tenant"]) == ("device.silent", "ws-1", "")
    device_entity = "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:ws-1"
    kv = {"options": "keyValues"}
    link = {"Link": DEVICE_CONTEXT_LINK}
    assert client.get(device_entity, params=kv, headers=link).json()["deviceState"] == "silent"
    assert client.get("/iot/v1/devices/ws-1").json()["health"] == "silent"
    clock.advance(timedelta(seconds=5))
    post_ok = client.post(
        "/iot/json", params={"k": KEY, "i": "ws-1"}, content=b'{"t": 3}', headers={"X-API-Key": ""}
    )
    assert post_ok.status_code == 200
    portal.call(platform.iot.sightings.flush)
    shown = client.get("/iot/v1/devices/ws-1").json()
    assert (shown["health"], shown["lastSeen"]) == ("ok", "2026-11-28T01:01:36.000000Z")
    entity = client.get(device_entity, params=kv, headers=link).json()
    assert entity["deviceState"] == "ok"
    assert entity["dateLastValueReported"] == {
        "@type": "DateTime",
        "@value": "2026-11-28T01:01:36.000000Z",
    }
    recovered = orjson.loads(portal.call(events.fetch, 2)[1])
    assert recovered["event"] == "device.recovered"
    clock.advance(timedelta(seconds=80))
    assert portal.call(platform.iot.health.check) == []  # 80 s < 90 s since the last report


def test_a_device_posting_faster_than_its_limit_is_told_to_wait(
    settings: Settings, clock: ManualClock
) -> None:
    # A token every 20 s: however slow a loaded machine makes the requests, none comes back.
    platform = build_platform(
        settings.model_copy(update={"ingest_http_rate": 0.05, "ingest_http_burst": 2.0}), clock
    )
    with TestClient(create_app(platform)) as client:
        client.headers["X-API-Key"] = admin_key(platform)
        assert client.post("/iot/v1/devices", json=air_sensor("ws-1", KEY)).status_code == 201
        assert client.post("/iot/v1/devices", json=air_sensor("ws-2", KEY)).status_code == 201
        answers = [post(client, "/iot/json", b'{"t": 21.5}') for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        refused = answers[2]
        assert refused.headers["Retry-After"] == "20"
        problem = refused.json()
        assert problem["status"] == 429
        assert "ws-1" in problem["detail"]
        assert 15 < problem["retryAfter"] <= 20
        # Another device of the same key has its own allowance.
        assert post(client, "/iot/json", b'{"t": 3}', device="ws-2").status_code == 200
