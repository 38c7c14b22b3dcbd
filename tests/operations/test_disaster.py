"""Disaster response over the simulated district: the area, what and who is in it, the water
level of Jungnangcheon, and the messages queued for residents."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.errors import BadRequestData, Conflict, Forbidden
from smartcity.operations.disaster import DisasterRequest, circle
from smartcity.operations.incidents import IncidentDraft
from smartcity.operations.places import distance_m
from smartcity.platform import Platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from tests.operations.conftest import TENANT, analyst, operator
from tests.operations.district import ARENA, load, point
from tests.operations.test_police import agency
from tests.operations.test_vulnerable import child

STATION = "urn:ngsi-ld:FloodMonitoring:changdong-jungnangcheon-changdong-bridge"


def flood(platform: Platform) -> str:
    draft = IncidentDraft(
        "disaster", "high", "중랑천 범람 우려", "flood", location=point(ARENA), zone="창동"
    )
    return platform.operations.incidents.create(operator(), draft).id


def wearable_at(platform: Platform, entity_id: str, where: tuple[float, float]) -> None:
    device: dict[str, Any] = {
        "id": entity_id,
        "type": "Device",
        "location": {"type": "GeoProperty", "value": point(where)},
    }
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    result, _ = platform.entities.batch_upsert(Caller.system(TENANT), [device], lambda _: ctx)
    assert not result.errors


def test_a_flood_package_lists_what_floods_who_is_there_and_the_water_level(
    platform: Platform,
) -> None:
    load(platform)
    ops = platform.operations
    ops.vulnerable.register(operator(), child("urn:ngsi-ld:Device:w-near"))
    ops.vulnerable.register(operator(), child("urn:ngsi-ld:Device:w-far", "010-9999-0000"))
    wearable_at(platform, "urn:ngsi-ld:Device:w-near", (ARENA[0] + 0.001, ARENA[1]))
    wearable_at(platform, "urn:ngsi-ld:Device:w-far", (127.10, 37.70))
    incident = flood(platform)
    body = ops.disaster.preview(operator(), incident, DisasterRequest("flood", "warning"))
    assert body["hazardName"] == {"ko": "침수·홍수", "en": "Flood"}
    assert body["area"]["type"] == "Polygon"
    facilities = body["facilities"]
    assert facilities
    for facility in facilities:
        where = facility["location"]["coordinates"]
        assert distance_m(ARENA, (where[0], where[1])) <= 810
        assert facility["reason"]["ko"] in ("지하층 침수 우려", "지하주차장 침수 우려")
    station = next(s for s in body["sensors"] if s["id"] == STATION)
    assert (station["alertLevel"], station["dangerLevel"], station["floodLevelStatus"]) == (
        3.5,
        4.6,
        "normal",
    )
    assert body["people"]["vulnerablePersons"] == {"child": 1}
    channels = [m["channel"] for m in body["messages"]]
    assert channels == ["cell-broadcast", "village-broadcast", "road-sign"]
    assert "창동 침수·홍수 경보" in body["messages"][0]["ko"]
    assert "Flood warning for 창동" in body["messages"][0]["en"]
    assert "18:00" in body["messages"][0]["ko"], "09:00 UTC is 18:00 in Seoul"


def test_an_earthquake_reaches_every_building_and_a_drawn_area_bounds_it(
    platform: Platform,
) -> None:
    load(platform)
    ops = platform.operations
    incident = ops.incidents.create(
        operator(),
        IncidentDraft("disaster", "critical", "지진", "earthquake", location=point(ARENA)),
    ).id
    wide = ops.disaster.preview(operator(), incident, DisasterRequest("earthquake"))
    drawn = ops.disaster.preview(
        operator(), incident, DisasterRequest("earthquake", area=circle(ARENA, 300))
    )
    assert len(drawn["facilities"]) < len(wide["facilities"])
    buildings = [f for f in wide["facilities"] if f["type"] == "Building"]
    assert buildings
    assert all(f["fireRiskGrade"] for f in buildings)
    assert any(f["reason"]["en"] == "outdoor earthquake shelter" for f in wide["facilities"])
    places = wide["people"]["places"]
    assert {"school", "apartment"} <= {c for p in places for c in p["category"]}


def test_sending_queues_the_messages_and_refusals(platform: Platform) -> None:
    load(platform)
    police = agency(platform, "police")
    ops = platform.operations
    incident = flood(platform)
    package = ops.disaster.send(
        operator(), incident, DisasterRequest("heavy-rain", radius=1000, agency="police")
    )
    assert package.kind == "disaster"
    assert ops.dispatch.package(police, incident, package.id).body["hazard"] == "heavy-rain"
    queued = [e for e in ops.incidents.timeline(operator(), incident) if e.kind == "message-queued"]
    assert [e.details["channel"] for e in queued] == [
        "cell-broadcast",
        "village-broadcast",
        "road-sign",
    ]
    assert "호우 주의보" in queued[0].details["ko"]
    for bad in (
        DisasterRequest("volcano"),
        DisasterRequest("flood", level="apocalyptic"),
        DisasterRequest("flood", radius=0),
        DisasterRequest("flood", radius=20_000),
        DisasterRequest("flood", area=point(ARENA)),
        DisasterRequest("flood", area={"type": "Polygon", "coordinates": [[[1, 2]]]}),
    ):
        with pytest.raises(BadRequestData):
            ops.disaster.preview(operator(), incident, bad)
    with pytest.raises(Forbidden):
        ops.disaster.preview(analyst(), incident, DisasterRequest("flood"))
    crime = ops.incidents.create(
        operator(), IncidentDraft("crime", "high", "폭행", location=point(ARENA))
    ).id
    with pytest.raises(Conflict, match="disaster incidents"):
        ops.disaster.send(operator(), crime, DisasterRequest("flood"))
    nowhere = ops.incidents.create(operator(), IncidentDraft("disaster", "high", "호우")).id
    with pytest.raises(Conflict, match="draw the affected area"):
        ops.disaster.preview(operator(), nowhere, DisasterRequest("heavy-rain"))
    drawn = ops.disaster.preview(
        operator(), nowhere, DisasterRequest("heavy-rain", area=circle(ARENA, 500))
    )
    assert drawn["messages"][0]["ko"].count("해당 지역") == 1
