"""The dead-letter API (/ingest/v1/deadletters) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.errors import ResourceNotFound
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.platform import Platform
from smartcity.web.app import create_app

BASE = "/ingest/v1/deadletters"
UNKNOWN = Rejected("unknown-device", "no device lamp-7: register it", stage="authenticate")


@pytest.fixture
def settings(settings: Settings, shared_data: Path) -> Settings:
    """The web tests' settings, with the shared Smart Data Models schemas for ingestion."""
    folder = str(shared_data / "smart-data-models")
    return settings.model_copy(update={"ingest_schema_dirs": [folder]})


def raw(
    tenant: str = "",
    *,
    device: str = "lamp-7",
    payload: bytes = b'{"t": 21.5}',
    source: str = "http",
) -> RawInput:
    return RawInput(
        tenant=tenant,
        source=source,
        payload=payload,
        received_at="2026-11-28T10:00:00+09:00",
        device_id=device,
        topic=f"/iot/json?i={device}",
        content_type="application/json",
    )


def key_client(
    platform: Platform, roles: list[str], tenant: str = "", entities: list[str] | None = None
) -> TestClient:
    name = f"{'-'.join(roles)}-{tenant or 'default'}"
    key = platform.accounts.create_key(Caller.system(tenant), name, roles, entities or []).key
    client = TestClient(create_app(platform))
    client.headers["X-API-Key"] = key
    if tenant:
        client.headers["NGSILD-Tenant"] = tenant
    return client


@dataclass
class Devices:
    """A gateway of a protocol the platform has no agent for (here 'modbus'), replaying the
    way an agent would: a device's mapping, then the real pipeline (decode, standardize
    through the platform's standardizer, write through the broker)."""

    platform: Platform
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)

    async def replay(self, raw_input: RawInput) -> str:
        mapping = self.mappings.get(raw_input.device_id or "")
        if mapping is None:
            raise Rejected(
                "unknown-device", f"no device {raw_input.device_id}", stage="authenticate"
            )
        try:
            fields = orjson.loads(raw_input.payload)
        except orjson.JSONDecodeError as error:
            raise Rejected("unparsable", str(error), stage="decode") from error
        attributes = {
            mapping[name]: {"type": "Property", "value": value, "unitCode": "°F"}
            for name, value in fields.items()
        }
        standardized = self.platform.standardizer.standardize(
            raw_input.tenant, "AirQualityObserved", attributes, []
        )
        entity_id = f"urn:ngsi-ld:AirQualityObserved:{raw_input.device_id}"
        self.platform.entities.create(
            Caller.system(raw_input.tenant),
            {"id": entity_id, "type": "AirQualityObserved", **standardized},
            self.platform.contexts.resolve(None),
        )
        return entity_id


def test_list_count_filter_and_show(platform: Platform, client: TestClient) -> None:
    sink = platform.deadletters
    first = sink.record(raw(device="lamp-1"), UNKNOWN)
    second = sink.record(
        raw(device="lamp-2", payload=b"\x00\xff binary"),
        Rejected("unparsable", "not JSON", stage="decode"),
    )
    sink.record(raw("dobong", device="lamp-3"), UNKNOWN)
    listed = client.get(BASE, params={"count": "true"})
    assert listed.status_code == 200
    assert listed.headers["NGSILD-Results-Count"] == "2"
    assert {item["id"] for item in listed.json()} == {first, second}
    assert "payload" not in listed.json()[0]
    only = client.get(BASE, params={"reason": "unparsable"}).json()
    assert [(item["id"], item["deviceId"], item["payloadBytes"]) for item in only] == [
        (second, "lamp-2", 9)
    ]
    assert client.get(BASE, params={"deviceId": "lamp-1"}).json()[0]["id"] == first
    assert client.get(BASE, params={"since": "2026-11-28T02:00:00Z"}).json() == []
    reasons = client.get(f"{BASE}/reasons").json()
    assert reasons == {"total": 2, "byReason": {"unknown-device": 1, "unparsable": 1}}
    text = client.get(f"{BASE}/{first}").json()
    assert (text["payload"], text["payloadEncoding"]) == ('{"t": 21.5}', "utf-8")
    assert text["receivedAt"] == "2026-11-28T01:00:00.000000Z"
    assert (text["reason"], text["stage"], text["status"]) == (
        "unknown-device",
        "authenticate",
        "new",
    )
    binary = client.get(f"{BASE}/{second}").json()
    assert binary["payloadEncoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == b"\x00\xff binary"


def test_errors_are_problem_details(platform: Platform, client: TestClient) -> None:
    theirs = platform.deadletters.record(raw("dobong"), UNKNOWN)
    missing = client.get(f"{BASE}/{theirs}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("ResourceNotFound")
    assert client.get(BASE, params={"colour": "red"}).status_code == 400
    assert client.get(BASE, params={"status": "lost"}).status_code == 400
    assert client.get(BASE, params={"since": "yesterday"}).status_code == 400
    too_many = client.get(BASE, params={"limit": platform.settings.max_limit + 1})
    assert too_many.status_code == 403
    assert too_many.json()["type"].endswith("TooManyResults")
    both = client.post(f"{BASE}/replay", json={"ids": ["a"], "filter": {}})
    assert both.status_code == 400
    assert client.post(f"{BASE}/replay", json={"ids": ["a"], "colour": 1}).status_code == 400


def test_credentials_roles_and_tenants(platform: Platform, app_client: TestClient) -> None:
    ours = platform.deadletters.record(raw("dobong"), UNKNOWN)
    platform.deadletters.record(raw(""), UNKNOWN)
    anonymous = app_client.get(BASE)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    analyst = key_client(platform, ["analyst"], "dobong")
    listed = analyst.get(BASE, params={"count": "true"})
    assert ([item["id"] for item in listed.json()], listed.headers["NGSILD-Results-Count"]) == (
        [ours],
        "1",
    )
    assert analyst.get(f"{BASE}/{ours}").status_code == 200
    assert analyst.post(f"{BASE}/{ours}/discard").status_code == 403
    assert analyst.post(f"{BASE}/replay", json={"ids": [ours]}).status_code == 403
    device = key_client(platform, ["device"], "dobong", ["urn:ngsi-ld:Streetlight:7"])
    assert device.get(BASE).status_code == 403
    operator = key_client(platform, ["operator"], "dobong")
    assert operator.post(f"{BASE}/{ours}/discard").status_code == 204
    assert operator.get(f"{BASE}/{ours}").json()["status"] == "discarded"
    again = operator.post(f"{BASE}/{ours}/discard")
    assert again.status_code == 400
    assert "discarded" in again.json()["detail"]


def test_fix_the_device_then_replay_over_http(platform: Platform, client: TestClient) -> None:
    no_replayer = platform.deadletters.record(raw(device="aq-1", source="modbus"), UNKNOWN)
    refused = client.post(f"{BASE}/replay", json={"ids": [no_replayer]})
    assert refused.status_code == 422
    assert "no replayer for source modbus" in refused.json()["detail"]
    devices = Devices(platform)
    platform.deadletters.register_replayer("modbus", devices.replay)
    still = client.post(f"{BASE}/replay", json={"filter": {"deviceId": "aq-1"}}).json()
    assert (still["matched"], still["failed"], still["outcomes"][0]["reason"]) == (
        1,
        1,
        "unknown-device",
    )
    devices.mappings["aq-1"] = {"t": "temperature"}
    done = client.post(f"{BASE}/replay", json={"ids": [no_replayer]}).json()
    assert (done["replayed"], done["outcomes"][0]["detail"]) == (
        1,
        "urn:ngsi-ld:AirQualityObserved:aq-1",
    )
    letter = client.get(f"{BASE}/{no_replayer}").json()
    assert (letter["status"], letter["attempts"]) == ("replayed", 2)
    stored = platform.entities.retrieve(Caller.system(), "urn:ngsi-ld:AirQualityObserved:aq-1")
    # 21.5 °F, standardized on the way in.
    temperature = next(iter(stored.attrs.values()))[0]
    assert temperature["value"] == pytest.approx((21.5 - 32) * 5 / 9)
    assert temperature["unitCode"] == "CEL"
    with pytest.raises(ResourceNotFound):
        platform.entities.retrieve(Caller.system("dobong"), "urn:ngsi-ld:AirQualityObserved:aq-1")


def test_a_replay_that_fails_again_records_the_new_reason(
    platform: Platform, client: TestClient
) -> None:
    devices = Devices(platform, {"aq-2": {"h": "relativeHumidity"}})
    platform.deadletters.register_replayer("modbus", devices.replay)
    bad = raw(device="aq-2", payload=b'{"h": 140}', source="modbus")
    letter_id = platform.deadletters.record(bad, UNKNOWN)
    report = client.post(f"{BASE}/replay", json={"ids": [letter_id]}).json()
    assert report["outcomes"][0]["reason"] == "unit"
    letter = client.get(f"{BASE}/{letter_id}").json()
    assert (letter["status"], letter["reason"], letter["stage"], letter["path"]) == (
        "new",
        "unit",
        "normalize",
        "relativeHumidity.unitCode",
    )
    assert letter["lastReplayResult"].startswith("failed: unit at normalize")
