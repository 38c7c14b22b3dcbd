"""Vulnerable-person support: the registry (operators only), an SOS from a wearable with its
trail from the location history, the guardian and police told, a second SOS joining."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.config import Settings
from smartcity.core.clock import ManualClock, isoformat
from smartcity.core.errors import AlreadyExists, BadRequestData, Forbidden, ResourceNotFound
from smartcity.operations.consumer import AlertConsumer
from smartcity.operations.vulnerable import PersonDraft, masked
from smartcity.platform import Platform, build_platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from tests.operations.conftest import TENANT, analyst, operator
from tests.operations.district import ARENA, load, point
from tests.operations.test_police import agency

WEARABLE = "urn:ngsi-ld:Device:wearable-0042"


@pytest.fixture
def sos_platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    built = build_platform(settings.model_copy(update={"ops_sos_agency": "police"}), clock)
    yield built
    built.close()


def child(wearable: str = WEARABLE, phone: str = "010-1234-5678") -> PersonDraft:
    return PersonDraft(
        kind="child",
        alias="김○○",
        wearable=wearable,
        guardian_name="보호자",
        guardian_phone=phone,
        birth_year=2018,
        description="노란 우비, 120 cm",
    )


def walk(platform: Platform, clock: ManualClock, steps: int) -> list[tuple[float, float]]:
    """Move the wearable north from the arena, one report a minute; return where it was."""
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    places = []
    for step in range(steps):
        where = (ARENA[0], round(ARENA[1] + step * 0.00002, 6))
        places.append(where)
        wearable: dict[str, Any] = {
            "id": WEARABLE,
            "type": "Device",
            "location": {
                "type": "GeoProperty",
                "value": point(where),
                "observedAt": isoformat(clock.now()),
            },
        }
        result, _ = platform.entities.batch_upsert(Caller.system(TENANT), [wearable], lambda _: ctx)
        assert not result.errors
        clock.advance(timedelta(minutes=1))
    return places


def test_only_operators_keep_the_registry(platform: Platform) -> None:
    support = platform.operations.vulnerable
    person = support.register(operator(), child())
    assert person.id.startswith("VP-")
    assert [p.id for p in support.registered(operator())] == [person.id]
    police = agency(platform, "police")
    for who in (analyst(), police):
        with pytest.raises(Forbidden):
            support.registered(who)
        with pytest.raises(Forbidden):
            support.get(who, person.id)
        with pytest.raises(Forbidden):
            support.register(who, child("urn:ngsi-ld:Device:other"))
    with pytest.raises(AlreadyExists):
        support.register(operator(), child())
    for bad in (
        PersonDraft("adult", "이○○", "urn:x:1", "보호자", "010-1111-2222"),
        PersonDraft("child", " ", "urn:x:2", "보호자", "010-1111-2222"),
        PersonDraft("child", "이○○", "", "보호자", "010-1111-2222"),
        PersonDraft("child", "이○○", "urn:x:3", "보호자", "call me"),
        PersonDraft("child", "이○○", "urn:x:4", "보호자", "010-1111-2222", birth_year=1800),
    ):
        with pytest.raises(BadRequestData):
            support.register(operator(), bad)
    support.remove(operator(), person.id)
    with pytest.raises(ResourceNotFound):
        support.get(operator(), person.id)
    assert masked("010-1234-5678") == "*******5678"


def test_an_sos_opens_an_incident_with_the_trail_and_tells_police_and_guardian(
    sos_platform: Platform, clock: ManualClock
) -> None:
    platform = sos_platform
    load(platform)
    police, fire = agency(platform, "police"), agency(platform, "fire")
    ops = platform.operations
    person = ops.vulnerable.register(operator(), child())
    clock.advance(timedelta(minutes=-90))
    places = walk(platform, clock, 90)  # 90 reports: the last hour of them is the trail
    gateway = agency(platform, "wearable-service")
    incident, outcome = ops.vulnerable.sos(gateway, WEARABLE)
    assert outcome == "created"
    assert (incident.type, incident.subtype, incident.severity) == (
        "vulnerable-person",
        "missing-child",
        "high",
    )
    assert incident.location == point(places[-1])
    package = ops.dispatch.packages(police, incident.id)[0]
    trail = package.body["trail"]
    assert len(trail) == 60
    assert [p["coordinates"] for p in trail] == [list(p) for p in places[-60:]]
    assert package.body["person"]["alias"] == "김○○"
    assert "guardian" not in package.body["person"]
    assert package.body["cameras"]
    timeline = ops.incidents.timeline(operator(), incident.id)
    told = next(e for e in timeline if e.kind == "guardian-notified")
    assert told.details["to"] == "*******5678"
    assert told.details["person"] == person.id
    assert "010-1234-5678" not in str([e.details for e in timeline])
    assert ops.dispatch.packages(analyst(), incident.id) == []  # a person's data
    # The wearable service reported nothing it may read; other agencies see nothing.
    for outsider in (gateway, fire):
        with pytest.raises(ResourceNotFound):
            ops.incidents.get(outsider, incident.id)
    again, outcome = ops.vulnerable.sos(gateway, WEARABLE, point((127.05, 37.66)))
    assert (again.id, outcome) == (incident.id, "joined")
    assert ops.incidents.timeline(operator(), incident.id)[-1].kind == "sos-received"
    resent = ops.vulnerable.send(operator(), incident.id, "fire")
    assert ops.dispatch.package(fire, incident.id, resent.id).kind == "vulnerable-person"


def test_an_sos_from_an_unknown_wearable_or_caller_is_refused(platform: Platform) -> None:
    support = platform.operations.vulnerable
    with pytest.raises(ResourceNotFound):
        support.sos(operator(), "urn:ngsi-ld:Device:nobody")
    support.register(operator(), child())
    with pytest.raises(Forbidden):
        support.sos(analyst(), WEARABLE)
    with pytest.raises(BadRequestData, match="ISO 8601"):
        support.sos(operator(), WEARABLE, point(ARENA), at="yesterday")
    incident, _ = support.sos(operator(), WEARABLE, point(ARENA))
    # No agency is set for SOS here: the package is kept for the operators to send.
    kept = platform.operations.dispatch.packages(operator(), incident.id)
    assert [p.principal_name for p in kept] == [""]
    assert kept[0].body["trail"] == []


def test_a_rule_alert_about_a_registered_wearable_is_its_sos(
    sos_platform: Platform, clock: ManualClock
) -> None:
    platform = sos_platform
    load(platform)
    agency(platform, "police")
    ops = platform.operations
    ops.vulnerable.register(operator(), child())
    clock.advance(timedelta(minutes=-10))
    walk(platform, clock, 10)
    consumer = AlertConsumer(
        InProcessBus(), "rules.alerts.>", ops.intake, platform.deadletters, clock,
        ops.vulnerable.take_alert,
    )  # fmt: skip

    def fact(alert_id: str, related: list[str]) -> bytes:
        body = {
            "alertId": alert_id,
            "severity": "high",
            "observedAt": isoformat(clock.now()),
            "category": "security",
            "subCategory": "suspiciousAction",
            "ruleId": "vulnerable-person-left-safe-zone",
            "related": related,
            "location": point(ARENA),
        }
        return orjson.dumps(body)

    taken = consumer.take("rules.alerts.dobong", fact("left-1", [WEARABLE]))
    assert taken is not None
    assert taken.outcome == "created"
    assert (taken.incident.source, taken.incident.subtype) == ("sos", "missing-child")
    kept = ops.dispatch.packages(operator(), taken.incident.id)
    assert [p.principal_name for p in kept] == ["police"]
    assert len(kept[0].body["trail"]) == 10
    again = consumer.take("rules.alerts.dobong", fact("sos-1", [WEARABLE]))
    assert again is not None
    assert (again.incident.id, again.outcome) == (taken.incident.id, "merged")
    other = consumer.take("rules.alerts.dobong", fact("x-1", ["urn:ngsi-ld:Camera:c1"]))
    assert other is not None
    assert other.incident.source == "alert"
