"""112 dispatch support over the simulated district: escape routes, cameras along them,
snapshots, and who may see the package."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.core.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound
from smartcity.operations.facts import FactPublisher
from smartcity.operations.incidents import IncidentDraft
from smartcity.operations.places import distance_m
from smartcity.operations.police import EscapeRequest
from smartcity.platform import Platform
from tests.operations.conftest import TENANT, analyst, operator
from tests.operations.district import ARENA, load, point


def agency(platform: Platform, name: str) -> Caller:
    key = platform.accounts.create_key(Caller.system(TENANT), name, ["agency"]).key
    caller = platform.accounts.caller_for_key(key, TENANT)
    assert caller is not None
    return caller


def assault(platform: Platform, where: tuple[float, float] = ARENA) -> str:
    draft = IncidentDraft("crime", "high", "서울아레나 앞 폭행", "assault", location=point(where))
    return platform.operations.incidents.create(operator(), draft).id


def test_escape_routes_run_out_of_the_scene_fastest_first(platform: Platform) -> None:
    load(platform)
    incident = assault(platform)
    body = platform.operations.police.preview(operator(), incident, EscapeRequest())
    routes = body["routes"]
    assert 2 <= len(routes) <= 4
    times = [r["travelSeconds"] for r in routes]
    assert times == sorted(times)
    for route in routes:
        line = route["geometry"]["coordinates"]
        assert distance_m(tuple(line[0]), ARENA) < 200, "a route starts at the scene's road"
        assert route["length"] >= 1500 or route["leavesDistrict"]
        cameras = route["cameras"]
        assert cameras, "the district's cameras watch every way out"
        assert all(c["distanceFromRoute"] <= 50 for c in cameras)
        along = [c["alongRoute"] for c in cameras]
        assert along == sorted(along)
    # Distinct: no two routes share more than half the road of the later one.
    for later, route in enumerate(routes):
        for earlier in routes[:later]:
            shared = set(route["segments"]) & set(earlier["segments"])
            assert len(shared) < len(route["segments"])
    assert body["snapshots"]
    assert len(body["snapshots"]) <= 4
    assert all(s["distance"] <= 300 for s in body["snapshots"])


def test_on_foot_a_one_way_street_goes_both_ways(platform: Platform) -> None:
    load(platform)
    incident = assault(platform)
    by_car = platform.operations.police.preview(operator(), incident, EscapeRequest(count=1))
    on_foot = platform.operations.police.preview(
        operator(), incident, EscapeRequest(count=1, mode="foot")
    )
    assert on_foot["routes"][0]["travelSeconds"] > by_car["routes"][0]["travelSeconds"]


def test_the_police_see_their_package_and_no_other_agency_does(platform: Platform) -> None:
    load(platform)
    police, fire = agency(platform, "police"), agency(platform, "fire")
    ops = platform.operations
    incident = assault(platform)
    with pytest.raises(ResourceNotFound):
        ops.incidents.get(police, incident)
    package = ops.police.send(operator(), incident, "police", EscapeRequest(count=2))
    assert package.kind == "escape-routes"
    assert len(package.body["routes"]) == 2
    assert ops.incidents.get(police, incident).id == incident
    assert [p.id for p in ops.dispatch.packages(police, incident)] == [package.id]
    assert ops.dispatch.package(police, incident, package.id).body == package.body
    assert [p.id for p in ops.dispatch.packages(analyst(), incident)] == [package.id]
    for attempt in (
        lambda: ops.incidents.get(fire, incident),
        lambda: ops.dispatch.packages(fire, incident),
        lambda: ops.dispatch.package(fire, incident, package.id),
        lambda: ops.dispatch.package(police, incident, "0" * 16),
    ):
        with pytest.raises(ResourceNotFound):
            attempt()
    step = ops.incidents.get(operator(), incident).sop["send-escape-routes"]
    assert (step.done, step.by, step.note) == (True, "kim", f"package {package.id}")
    sent = [e for e in ops.incidents.timeline(operator(), incident) if e.kind == "package-sent"]
    assert sent[0].details["agency"] == "police"
    assert sent[0].details["packageKind"] == "escape-routes"
    assert [e.kind for e in ops.incidents.timeline(police, incident)].count("package-sent") == 1


def test_snapshots_open_only_for_the_package_cameras(platform: Platform) -> None:
    load(platform)
    police, fire = agency(platform, "police"), agency(platform, "fire")
    ops = platform.operations
    incident = assault(platform)
    package = ops.police.send(operator(), incident, "police", EscapeRequest(count=1))
    shot = package.body["snapshots"][0]["camera"]
    camera, at, _ = ops.police.snapshot(police, incident, package.id, shot)
    assert camera.id == shot
    assert at == package.body["at"]
    along = package.body["routes"][0]["cameras"][-1]["id"]
    if along not in {s["camera"] for s in package.body["snapshots"]}:
        with pytest.raises(ResourceNotFound):
            ops.police.snapshot(police, incident, package.id, along)
    with pytest.raises(ResourceNotFound):
        ops.police.snapshot(fire, incident, package.id, shot)
    viewed = [e for e in ops.incidents.timeline(operator(), incident) if e.kind == "camera-viewed"]
    assert viewed[0].details["mode"] == "snapshot"
    assert viewed[0].actor == "police"


def test_bad_requests_say_what_to_fix(platform: Platform) -> None:
    load(platform)
    agency(platform, "police")
    ops = platform.operations
    incident = assault(platform)
    for request in (
        EscapeRequest(count=0),
        EscapeRequest(count=11),
        EscapeRequest(distance=50),
        EscapeRequest(distance=50_000),
        EscapeRequest(mode="helicopter"),
    ):
        with pytest.raises(BadRequestData):
            ops.police.preview(operator(), incident, request)
    with pytest.raises(BadRequestData, match="no agency principal"):
        ops.police.send(operator(), incident, "nobody", EscapeRequest())
    with pytest.raises(BadRequestData, match="name the police"):
        ops.police.send(operator(), incident, "", EscapeRequest())
    with pytest.raises(Forbidden):
        ops.police.send(analyst(), incident, "police", EscapeRequest())
    nowhere = ops.incidents.create(operator(), IncidentDraft("crime", "high", "위치 미상"))
    with pytest.raises(Conflict, match="no location"):
        ops.police.preview(operator(), nowhere.id, EscapeRequest())
    far_away = assault(platform, (126.9780, 37.5665))  # Seoul City Hall: off the district's map
    with pytest.raises(Conflict, match="road network"):
        ops.police.preview(operator(), far_away, EscapeRequest())
    ops.transition(operator(), incident, "close", note="false alarm")
    with pytest.raises(Conflict, match="closed"):
        ops.police.send(operator(), incident, "police", EscapeRequest())


def test_sending_a_package_is_a_fact_on_the_bus(platform: Platform) -> None:
    load(platform)
    agency(platform, "police")
    ops = platform.operations
    incident = assault(platform)
    package = ops.police.send(operator(), incident, "police", EscapeRequest(count=1))

    async def run() -> list[tuple[str, dict[str, Any]]]:
        bus = InProcessBus()
        consumer = await bus.consumer("operations.incident.>", "test")
        await FactPublisher(ops.store, bus, 0.1).publish_pending()
        received = await consumer.fetch(10, 0.5)
        return [(m.subject, orjson.loads(m.data)) for m in received]

    facts = dict(asyncio.run(run()))
    sent = facts["operations.incident.package-sent.dobong"]
    assert sent["details"]["package"] == package.id
    assert sent["details"]["agency"] == "police"
    assert "operations.incident.sop-checked.dobong" in facts
