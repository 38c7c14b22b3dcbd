"""The device registry API (/iot/v1/devices) on both backends: CRUD, roles, tenants, import,
the Device entities it keeps, and commands."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.platform import Platform

DEVICE_CONTEXT = '<urn:smartcity:context:iot-devices>; rel="http://www.w3.org/ns/json-ld#context"'


def make_device(device_id: str = "lamp-1", **overrides: Any) -> dict[str, Any]:
    """A streetlight controller as an operator registers it."""
    device: dict[str, Any] = {
        "id": device_id,
        "apiKey": "changdong-lights",
        "entity": {"id": f"urn:ngsi-ld:Streetlight:{device_id}", "type": "Streetlight"},
        "attributes": [
            {"objectId": "l", "name": "illuminanceLevel", "scale": 0.01},
            {"objectId": "p", "name": "powerState", "valueType": "text"},
        ],
        "protocol": "ul",
        "commands": ["dim", "switch"],
        "reportingInterval": 60,
        "name": "창동역 1번 출구 가로등",
    }
    device.update(overrides)
    return device


def key_for(platform: Platform, role: str, tenant: str = "") -> dict[str, str]:
    created = platform.accounts.create_key(Caller.system(tenant), f"{role}-{tenant}-key", [role])
    return {"X-API-Key": created.key}


def test_a_device_is_registered_shown_without_its_key_and_has_a_device_entity(
    client: TestClient,
) -> None:
    created = client.post("/iot/v1/devices", json=make_device())
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/iot/v1/devices/lamp-1"
    assert "apiKey" not in created.json()
    shown = client.get("/iot/v1/devices/lamp-1").json()
    assert "apiKey" not in shown
    assert shown["health"] == "unknown"
    assert shown["deviceEntityId"] == "urn:ngsi-ld:Device:lamp-1"
    assert shown["attributes"][0] == {
        "objectId": "l",
        "name": "illuminanceLevel",
        "kind": "Property",
        "valueType": "auto",
        "unit": None,
        "scale": 0.01,
        "offset": None,
        "expression": None,
        "coordinates": "lon,lat",
    }
    entity = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:lamp-1",
        params={"options": "keyValues"},
        headers={"Link": DEVICE_CONTEXT},
    ).json()
    assert entity["type"] == "Device"
    assert entity["controlledProperty"] == ["illuminanceLevel", "powerState"]
    assert entity["controlledAsset"] == "urn:ngsi-ld:Streetlight:lamp-1"
    assert entity["deviceState"] == "unknown"
    assert entity["deviceCategory"] == ["sensor", "actuator"]


def test_a_key_is_made_when_none_is_given_and_shown_once(client: TestClient) -> None:
    body = make_device()
    del body["apiKey"]
    created = client.post("/iot/v1/devices", json=body).json()
    assert len(created["apiKey"]) >= 32
    assert "apiKey" not in client.get("/iot/v1/devices/lamp-1").json()


def test_bad_devices_are_refused_with_what_to_fix(client: TestClient) -> None:
    assert client.post("/iot/v1/devices", json=make_device()).status_code == 201
    again = client.post("/iot/v1/devices", json=make_device())
    assert again.status_code == 409
    assert "registered already" in again.json()["detail"]
    problems = {
        "id": ("lamp/1", "id: String should match pattern"),
        "entity": ({"id": "Streetlight 1", "type": "Streetlight"}, "must be a URI"),
        "attributes": (
            [{"objectId": "l", "name": "level", "expression": "value +"}],
            "expression 'value +' is not valid",
        ),
        "protocol": ("xml", "protocol: Input should be 'json' or 'ul'"),
        "apiKey": ("a/b", "part of MQTT topics"),
    }
    for member, (value, says) in problems.items():
        answer = client.post("/iot/v1/devices", json=make_device("lamp-9", **{member: value}))
        assert answer.status_code == 400, member
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert says in answer.json()["detail"], answer.json()["detail"]
    twice = [{"objectId": "l", "name": "a"}, {"objectId": "l", "name": "b"}]
    answer = client.post("/iot/v1/devices", json=make_device("lamp-9", attributes=twice))
    assert "fields mapped twice: l" in answer.json()["detail"]


def test_roles_and_tenants(client: TestClient, platform: Platform) -> None:
    assert client.post("/iot/v1/devices", json=make_device()).status_code == 201
    anonymous = {"X-API-Key": ""}
    analyst = key_for(platform, "analyst")
    operator = key_for(platform, "operator")
    outsider = {**key_for(platform, "admin", "nowon"), "NGSILD-Tenant": "nowon"}
    assert client.get("/iot/v1/devices", headers=anonymous).status_code == 401
    assert client.get("/iot/v1/devices/lamp-1", headers=analyst).status_code == 200
    refused = client.post("/iot/v1/devices", json=make_device("lamp-2"), headers=analyst)
    assert refused.status_code == 403
    command = {"name": "dim", "params": {"level": 30}}
    assert (
        client.post("/iot/v1/devices/lamp-1/commands", json=command, headers=analyst).status_code
        == 403
    )
    assert client.delete("/iot/v1/devices/lamp-1", headers=analyst).status_code == 403
    accepted = client.post("/iot/v1/devices", json=make_device("lamp-2"), headers=operator)
    assert accepted.status_code == 201
    assert client.get("/iot/v1/devices/lamp-1", headers=outsider).status_code == 404
    listed = client.get("/iot/v1/devices", headers=outsider)
    assert (listed.json(), listed.headers["NGSILD-Results-Count"]) == ([], "0")
    listed = client.get("/iot/v1/devices", params={"limit": 1, "offset": 1})
    assert [d["id"] for d in listed.json()] == ["lamp-2"]
    assert listed.headers["NGSILD-Results-Count"] == "2"


def test_a_device_is_changed_and_deleted_with_its_device_entity(client: TestClient) -> None:
    client.post("/iot/v1/devices", json=make_device())
    changed = client.patch(
        "/iot/v1/devices/lamp-1",
        json={"attributes": [{"objectId": "l", "name": "illuminanceLevel"}], "commands": []},
    )
    assert changed.status_code == 200, changed.text
    assert [a["name"] for a in changed.json()["attributes"]] == ["illuminanceLevel"]
    assert client.patch("/iot/v1/devices/lamp-1", json={"id": "lamp-2"}).status_code == 400
    assert client.patch("/iot/v1/devices/lamp-9", json={}).status_code == 404
    entity = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:lamp-1",
        params={"options": "keyValues"},
        headers={"Link": DEVICE_CONTEXT},
    ).json()
    assert (entity["controlledProperty"], entity["deviceCategory"]) == (
        ["illuminanceLevel"],
        ["sensor"],
    )
    assert client.delete("/iot/v1/devices/lamp-1").status_code == 204
    assert client.get("/iot/v1/devices/lamp-1").status_code == 404
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:lamp-1").status_code == 404
    assert client.delete("/iot/v1/devices/lamp-1").status_code == 404


def test_static_attributes_are_standardized_and_written_on_the_entity(client: TestClient) -> None:
    location = {"type": "Point", "coordinates": [127.0477, 37.6531]}
    device = make_device(staticAttributes={"location": location, "circuit": "C-12"})
    assert client.post("/iot/v1/devices", json=device).status_code == 201
    entity = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:lamp-1", params={"options": "keyValues"}
    ).json()
    assert entity["location"] == location
    assert entity["circuit"] == "C-12"
    bad = make_device(
        "lamp-2", staticAttributes={"location": {"type": "Point", "coordinates": [500, 1]}}
    )
    answer = client.post("/iot/v1/devices", json=bad)
    assert answer.status_code == 400
    assert "static attributes" in answer.json()["detail"]
    assert client.get("/iot/v1/devices/lamp-2").status_code == 404


AIR = "AirQualityObserved"
NO2 = '"[{""objectId"": ""no2"", ""name"": ""no2"", ""unit"": ""GQ""}]"'
CSV = f"""id,apiKey,entityId,entityType,attributes,commands,reportingInterval
env-1,changdong-env,urn:ngsi-ld:{AIR}:env-1,{AIR},t=temperature:CEL;h=relativeHumidity,,300
env-2,changdong-env,urn:ngsi-ld:{AIR}:env-2,{AIR},{NO2},,300
env-3,changdong-env,not a uri,{AIR},t=temperature,,300
env-4,changdong-env,urn:ngsi-ld:{AIR}:env-4,{AIR},t,,300
"""


def test_devices_are_imported_from_csv_and_json_each_on_its_own(client: TestClient) -> None:
    answer = client.post(
        "/iot/v1/devices/import", content=CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["created"] == ["env-1", "env-2"]
    assert [(f["item"], f["id"]) for f in report["failed"]] == [(3, "env-3"), (4, "")]
    assert "must be a URI" in report["failed"][0]["detail"]
    assert "row 4: attributes: 't' is not field=attribute" in report["failed"][1]["detail"]
    shown = client.get("/iot/v1/devices/env-1").json()
    assert shown["attributes"][0]["unit"] == "CEL"
    assert shown["reportingInterval"] == 300
    replace = [make_device("env-1", apiKey="changdong-env", entity=shown["entity"], commands=[])]
    answer = client.post("/iot/v1/devices/import", params={"replace": "true"}, json=replace).json()
    assert (answer["created"], answer["updated"]) == ([], ["env-1"])
    fiware = {"devices": [make_device("lamp-5"), {"id": "lamp-6"}]}
    answer = client.post("/iot/v1/devices", json=fiware)
    assert answer.status_code == 201
    assert answer.json()["created"] == ["lamp-5"]
    assert "entity: Field required" in answer.json()["failed"][0]["detail"]


def test_commands_are_queued_listed_and_shown_on_the_device_entity(
    client: TestClient,
) -> None:
    client.post("/iot/v1/devices", json=make_device())
    sent = client.post(
        "/iot/v1/devices/lamp-1/commands", json={"name": "dim", "params": {"level": 30}}
    )
    assert sent.status_code == 202, sent.text
    command = sent.json()
    assert (command["name"], command["status"], command["params"]) == (
        "dim",
        "pending",
        {"level": 30},
    )
    listed = client.get("/iot/v1/devices/lamp-1/commands").json()
    assert [c["id"] for c in listed] == [command["id"]]
    entity = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:lamp-1",
        params={"options": "keyValues"},
        headers={"Link": DEVICE_CONTEXT},
    ).json()
    assert entity["dim_status"] == "PENDING"
    unknown = client.post("/iot/v1/devices/lamp-1/commands", json={"name": "open"})
    assert unknown.status_code == 400
    assert "accepts: dim, switch" in unknown.json()["detail"]
    separator = client.post(
        "/iot/v1/devices/lamp-1/commands", json={"name": "dim", "params": ["a|b"]}
    )
    assert separator.status_code == 400
    client.post("/iot/v1/devices", json=make_device("lamp-2", transport="http"))
    over_http = client.post("/iot/v1/devices/lamp-2/commands", json={"name": "dim"})
    assert over_http.status_code == 422
