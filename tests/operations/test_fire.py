"""119 dispatch support over the simulated district: the site package and the green wave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock, isoformat
from smartcity.core.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound
from smartcity.operations.incidents import IncidentDraft
from smartcity.operations.police import EscapeRequest
from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from tests.operations.conftest import TENANT, operator
from tests.operations.district import ALLEY_MARKET, load, point
from tests.operations.test_police import agency


def fire_at(platform: Platform, where: tuple[float, float]) -> str:
    draft = IncidentDraft("fire", "critical", "건물 화재", "building", location=point(where))
    return platform.operations.incidents.create(operator(), draft).id


def on_street(link_id: str, share: float) -> tuple[float, float]:
    """Return a position `share` of the way along a road link of the district."""
    link = next(x for x in load_district().links if x.id == link_id)
    (x0, y0), (x1, y1) = link.points[0], link.points[-1]
    return (x0 + share * (x1 - x0), y0 + share * (y1 - y0))


def parked_car(
    platform: Platform, name: str, where: tuple[float, float], at: str, camera: bool = False
) -> None:
    """Write an illegal-parking observation: a report with its time (`observationDateTime`),
    or as an enforcement camera's reading comes through the IoT agent (`observedAt`)."""
    car: dict[str, Any] = {
        "id": f"urn:ngsi-ld:TrafficViolation:{name}",
        "type": "TrafficViolation",
        "titleCode": {"type": "Property", "value": "illegalParking"},
        "location": {"type": "GeoProperty", "value": point(where)},
    }
    if camera:
        car["titleCode"]["observedAt"] = at
    else:
        car["observationDateTime"] = {"type": "Property", "value": at}
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    result, _ = platform.entities.batch_upsert(Caller.system(TENANT), [car], lambda _: ctx)
    assert not result.errors


def test_the_site_package_of_a_market_fire(platform: Platform) -> None:
    load(platform)
    incident = fire_at(platform, ALLEY_MARKET)
    body = platform.operations.fire.preview(operator(), incident)
    building = body["building"]
    assert building["name"] == {"ko": "창동골목시장", "en": "Changdong Alley Market"}
    assert building["fireRiskGrade"]["grade"] == "2"
    assert building["fireRiskGrade"]["ko"] == "2급 소방안전관리대상물"
    assert "market" in building["use"]
    hydrants = body["hydrants"]
    assert hydrants
    assert all(h["distance"] <= 200 for h in hydrants)
    assert [h["distance"] for h in hydrants] == sorted(h["distance"] for h in hydrants)
    assert body["station"]["name"]["ko"] == "창동119안전센터"
    route = body["route"]
    assert route["length"] > 300, "from the station's own road, not the node nearest it"
    assert route["travelSeconds"] == pytest.approx(sum(
        s["length"] / (s["speedLimit"] / 3.6) for s in route["streets"]), rel=0.01)  # fmt: skip
    assert body["signals"], "the route passes a signalised crossing"
    assert all(s["device"].startswith("changdong-signal-") for s in body["signals"])
    assert body["cameras"]


def test_narrow_blocked_and_slow_streets_of_the_access_route(
    platform: Platform, clock: ManualClock
) -> None:
    load(platform)
    scene = on_street("west-3", 0.8)  # a one-lane street west of Changdong Station
    incident = fire_at(platform, scene)
    before = platform.operations.fire.preview(operator(), incident)["route"]
    last = before["streets"][-1]
    assert last["segment"].endswith("west-3")
    assert last["narrow"] is True
    assert "창동 서측 길" in before["narrowStreets"]
    assert before["illegalParking"] == []
    now = clock.now()
    parked_car(platform, "fresh", on_street("west-3", 0.5), isoformat(now - timedelta(minutes=5)))
    parked_car(platform, "stale", on_street("west-3", 0.4), isoformat(now - timedelta(hours=3)))
    parked_car(platform, "elsewhere", on_street("west-2", 0.5), isoformat(now))
    seen = isoformat(now - timedelta(minutes=1))
    parked_car(platform, "camera", on_street("west-3", 0.3), seen, camera=True)
    after = platform.operations.fire.preview(operator(), incident)["route"]
    blocked = [s for s in after["streets"] if s["blockedBy"]]
    cars = ["urn:ngsi-ld:TrafficViolation:camera", "urn:ngsi-ld:TrafficViolation:fresh"]
    assert [sorted(b["blockedBy"]) for b in blocked] == [cars]
    assert sorted(p["id"] for p in after["illegalParking"]) == cars
    assert {p["observedAt"] for p in after["illegalParking"]} == {
        seen,
        isoformat(now - timedelta(minutes=5)),
    }


def test_green_wave_commands_go_to_the_signal_controllers(platform: Platform) -> None:
    load(platform)
    fire, police = agency(platform, "fire"), agency(platform, "police")
    ops = platform.operations
    incident = fire_at(platform, ALLEY_MARKET)
    package = ops.fire.send(operator(), incident, "fire")
    signal = package.body["signals"][0]
    target = {"id": signal["id"], "type": "TrafficSignal", "context": [CHANGDONG_CONTEXT_URL]}
    controller = {
        "id": signal["device"],
        "apiKey": "changdong-signals",
        "entity": target,
        "protocol": "json",
        "transport": "mqtt",
        "commands": ["priority"],
    }
    platform.iot.devices.register(operator(), controller)
    result = ops.fire.green_wave(operator(), incident, package.id)
    first = result["signals"][0]
    assert first["outcome"] == "queued"
    assert result["queued"] == 1
    assert all(s["outcome"] == "failed" for s in result["signals"][1:])
    sent = platform.iot.devices.command_history(operator(), signal["device"], 10)
    assert [c.id for c in sent] == [first["command"]]
    assert sent[0].name == "priority"
    assert sent[0].params["incident"] == incident
    kinds = [e.kind for e in ops.incidents.timeline(operator(), incident)]
    assert kinds[-2:] == ["green-wave-requested", "sop-checked"]
    sop = ops.incidents.get(operator(), incident).sop
    assert sop["send-site-package"].done
    assert sop["request-green-wave"].done
    # The fire agency sees its package; it may not command signals; the police see nothing.
    assert ops.dispatch.package(fire, incident, package.id).kind == "fire-site"
    with pytest.raises(Forbidden):
        ops.fire.green_wave(fire, incident, package.id)
    with pytest.raises(ResourceNotFound):
        ops.dispatch.package(police, incident, package.id)
    escape = ops.police.send(operator(), incident, "police", EscapeRequest(count=1))
    with pytest.raises(Conflict, match="no 119 site package"):
        ops.fire.green_wave(operator(), incident, escape.id)


def test_site_package_refusals(platform: Platform) -> None:
    load(platform)
    agency(platform, "fire")
    ops = platform.operations
    nowhere = ops.incidents.create(operator(), IncidentDraft("fire", "high", "위치 미상"))
    with pytest.raises(Conflict, match="no location"):
        ops.fire.preview(operator(), nowhere.id)
    incident = fire_at(platform, ALLEY_MARKET)
    with pytest.raises(BadRequestData, match="name the fire"):
        ops.fire.send(operator(), incident, "")
    with pytest.raises(BadRequestData, match="no agency"):
        ops.fire.send(operator(), incident, "operator-kim")
    with pytest.raises(ResourceNotFound):
        ops.fire.green_wave(operator(), incident, "0" * 16)


def test_a_district_without_safety_data_gives_an_empty_package(platform: Platform) -> None:
    load(platform, without=frozenset({"Building", "FireHydrant", "FireStation", "TrafficSignal"}))
    incident = fire_at(platform, ALLEY_MARKET)
    body = platform.operations.fire.preview(operator(), incident)
    assert (body["building"], body["hydrants"], body["station"], body["route"]) == (
        None,
        [],
        None,
        None,
    )
    assert body["cameras"]
