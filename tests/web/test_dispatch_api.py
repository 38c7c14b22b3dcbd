"""The linked services over HTTP: packages go to the named agency only, snapshots open for
the package's cameras only, green waves need a command right, SOS and the person registry
keep personal data to operators, and bad input gets a 4xx that says what to fix."""

from __future__ import annotations

from typing import Any

from tests.operations.district import ALLEY_MARKET, load
from tests.web.access_city import City
from tests.web.ops_city import INCIDENTS, camera_id, city, clock, open_incident, platform

__all__ = ["city", "clock", "platform"]
ARENA_SCENE = {"type": "Point", "coordinates": [127.0515, 37.6529]}
WEARABLE = "urn:ngsi-ld:Device:wearable-7"


def packages_of(city: City, who: str, incident: str) -> Any:
    return city.call(who, "GET", f"{INCIDENTS}/{incident}/packages")


def test_a_112_package_reaches_the_police_only(city: City) -> None:
    load(city.platform)
    incident = open_incident(city, location=ARENA_SCENE)["id"]
    path = f"{INCIDENTS}/{incident}/packages/escape-routes"
    dry = city.call("operator", "POST", path, {"dryRun": True, "count": 2})
    assert dry.status_code == 200, dry.text
    assert len(dry.json()["routes"]) == 2
    assert packages_of(city, "operator", incident).json() == []
    sent = city.call("operator", "POST", path, {"agency": "police", "count": 3})
    assert sent.status_code == 201, sent.text
    package = sent.json()
    assert sent.headers["Location"] == f"{INCIDENTS}/{incident}/packages/{package['id']}"
    assert package["kindName"]["ko"].startswith("112")
    assert [p["id"] for p in packages_of(city, "police", incident).json()] == [package["id"]]
    assert city.call("police", "GET", f"{INCIDENTS}/{incident}").status_code == 200
    mine = f"{INCIDENTS}/{incident}/packages/{package['id']}"
    for who, url in (
        ("fire", f"{INCIDENTS}/{incident}/packages"),
        ("fire", mine),
        ("fire", f"{INCIDENTS}/{incident}"),
    ):
        assert city.call(who, "GET", url).status_code == 404, (who, url)
    assert city.call("intruder", "GET", mine, tenant="nowon").status_code == 404
    shot = package["body"]["snapshots"][0]["camera"]
    still = city.call("police", "GET", f"{mine}/snapshots/{shot}")
    assert still.status_code == 200, still.text
    assert still.headers["content-type"].startswith("image/svg+xml")
    assert package["body"]["at"] in still.text
    assert city.call("police", "GET", f"{mine}/snapshots/{camera_id('gate-1')}").status_code == 404
    assert city.call("fire", "GET", f"{mine}/snapshots/{shot}").status_code == 404


def test_package_requests_with_bad_input_get_4xx(city: City) -> None:
    load(city.platform)
    incident = open_incident(city, location=ARENA_SCENE)["id"]
    path = f"{INCIDENTS}/{incident}/packages"
    body: Any
    for body, status in (
        ({"agency": "police", "count": "two"}, 400),
        ({"agency": "police", "count": 0}, 400),
        ({"agency": "police", "mode": "boat"}, 400),
        ({"agency": "nobody"}, 400),
        ({}, 400),
        ([1, 2], 400),
    ):
        response = city.call("operator", "POST", f"{path}/escape-routes", body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
    not_json = city.client.post(f"{path}/escape-routes", content=b"{", headers=city.as_("operator"))
    assert not_json.status_code == 400
    assert (
        city.call("analyst", "POST", f"{path}/escape-routes", {"agency": "police"}).status_code
        == 403
    )
    assert city.call("police", "POST", f"{path}/fire-site", {"agency": "fire"}).status_code == 403
    for hazard in ({"hazard": "volcano"}, {"hazard": "flood", "area": "here"}, {"hazard": 3}):
        refused = city.call("operator", "POST", f"{path}/disaster", hazard)
        assert refused.status_code == 400, hazard
    assert city.call("operator", "GET", f"{path}/0123456789abcdef").status_code == 404
    assert (
        city.call(
            "operator", "POST", f"{INCIDENTS}/INC-x/packages/fire-site", {"agency": "fire"}
        ).status_code
        == 404
    )


def test_a_119_package_and_its_green_wave(city: City) -> None:
    load(city.platform)
    incident = open_incident(
        city,
        type="fire",
        subtype="building",
        location={"type": "Point", "coordinates": list(ALLEY_MARKET)},
    )["id"]
    sent = city.call(
        "operator", "POST", f"{INCIDENTS}/{incident}/packages/fire-site", {"agency": "fire"}
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()["body"]
    assert body["building"]["fireRiskGrade"]["en"] == "Class 2 fire safety object"
    wave = f"{INCIDENTS}/{incident}/packages/{sent.json()['id']}/green-wave"
    assert city.call("fire", "POST", wave).status_code == 403
    asked = city.call("operator", "POST", wave)
    assert asked.status_code == 202, asked.text
    # No signal controller is registered in this tenant: every request says so.
    assert {s["outcome"] for s in asked.json()["signals"]} == {"failed"}
    assert asked.json()["queued"] == 0
    disaster = open_incident(city, type="disaster", subtype="flood", location=ARENA_SCENE)["id"]
    made = city.call(
        "operator",
        "POST",
        f"{INCIDENTS}/{disaster}/packages/disaster",
        {"hazard": "flood", "level": "warning"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["body"]["messages"][0]["channel"] == "cell-broadcast"


def person(**changes: Any) -> dict[str, Any]:
    body = {
        "kind": "dementia",
        "alias": "박○○",
        "wearable": WEARABLE,
        "guardianName": "보호자",
        "guardianPhone": "010-2222-3333",
        "birthYear": 1941,
    }
    return {**body, **changes}


def test_the_registry_and_an_sos(city: City) -> None:
    assert city.call("analyst", "POST", "/ops/v1/persons", person()).status_code == 403
    assert city.call("police", "GET", "/ops/v1/persons").status_code == 403
    bad = city.call("operator", "POST", "/ops/v1/persons", person(birthYear="1941"))
    assert bad.status_code == 400
    made = city.call("operator", "POST", "/ops/v1/persons", person())
    assert made.status_code == 201, made.text
    assert made.json()["guardian"]["phone"] == "010-2222-3333"
    listed = city.call("operator", "GET", "/ops/v1/persons").json()
    assert "guardian" not in listed[0]
    assert city.call("operator", "POST", "/ops/v1/persons", person()).status_code == 409
    sos = {"wearable": WEARABLE, "location": ARENA_SCENE}
    first = city.call("police", "POST", "/ops/v1/sos", sos)
    assert first.status_code == 201, first.text
    again = city.call("police", "POST", "/ops/v1/sos", sos)
    assert (again.status_code, again.json()["incident"]) == (200, first.json()["incident"])
    assert city.call("police", "POST", "/ops/v1/sos", {"wearable": "urn:x"}).status_code == 404
    assert city.call("analyst", "POST", "/ops/v1/sos", sos).status_code == 403
    incident = city.call("operator", "GET", f"{INCIDENTS}/{first.json()['incident']}").json()
    assert incident["subtype"] == "dementia-wandering"
    assert [s["id"] for s in incident["sop"]][:2] == ["check-cameras", "send-trail-police"]
    gone = city.call("operator", "DELETE", f"/ops/v1/persons/{made.json()['id']}")
    assert gone.status_code == 204
    assert city.call("operator", "GET", f"/ops/v1/persons/{made.json()['id']}").status_code == 404
