"""Guidance over the Changdong district: ranking, hours, shared and resident sites, event mode."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.entities import TYPE_IRIS
from smartcity.domains.mobility.parking.forecasting import ForecastPoint, ForecastStatus
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.platform import Platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from tests.domains.mobility.parking.city import ARENA, add_concert, lot, parking, set_free

SYSTEM = Caller.system()
SCHOOL = (127.0436, 37.6548)
RESIDENT_ZONE = (127.0392, 37.6552)
MONDAY = datetime(2026, 11, 30, tzinfo=KST)


def ids(answer: dict[str, Any]) -> list[str]:
    return [site["id"] for site in answer["sites"]]


def by_id(answer: dict[str, Any], site_id: str) -> dict[str, Any]:
    return next(site for site in answer["sites"] if site["id"] == site_id)


def test_sites_with_space_come_first_nearest_first(city: Platform) -> None:
    answer = parking(city).guidance(SYSTEM, ARENA, limit=25)
    assert answer["walking"] == "network"
    assert answer["eventMode"] is None
    sites = answer["sites"]
    assert len(sites) >= 10
    order = {"space": 1, "unknown": 2, "full": 3}
    keys = [(order[s["group"]], s["walk"]["metres"]) for s in sites]
    assert keys == sorted(keys)
    assert all(s["walk"]["metres"] <= 1200 for s in sites)
    arena = by_id(answer, lot("seoul-arena"))
    assert arena["walk"]["method"] == "network"
    assert arena["fee"] == {"amount": 11000, "currency": "KRW"}  # 30 min 2,000 + 9 x 1,000
    assert arena["availability"]["state"] == "live"


def test_a_lot_closed_on_arrival_is_not_offered(city: Platform) -> None:
    evening = parking(city).guidance(SYSTEM, ARENA, limit=25)
    late = parking(city).guidance(
        SYSTEM, ARENA, at=datetime(2026, 11, 27, 22, 30, tzinfo=KST), limit=25
    )
    market = lot("changdong-alley-market")  # Mo-Sa 08:00-22:00
    assert market in ids(evening)
    assert market not in ids(late)
    assert lot("seoul-arena") in ids(late)


def test_a_count_that_stopped_updating_is_stale_never_free(
    city: Platform, clock: ManualClock
) -> None:
    site = lot("changdong-bridge-riverside")
    set_free(city, site, 40, clock.now() - timedelta(minutes=10))  # counter threshold: 5 min
    answer = parking(city).guidance(SYSTEM, ARENA, limit=25)
    stale = by_id(answer, site)
    assert stale["availability"]["state"] == "stale"
    assert stale["availability"]["free"] is None
    assert stale["availability"]["lastFree"] == 40
    assert stale["group"] == "unknown"
    assert "stale" in [n["code"] for n in stale["notes"]]
    set_free(city, site, 0, clock.now())
    full = by_id(parking(city).guidance(SYSTEM, ARENA, limit=25), site)
    assert (full["availability"]["state"], full["group"]) == ("live", "full")
    assert ids(answer).index(site) > max(
        i for i, s in enumerate(answer["sites"]) if s["group"] == "space"
    )


def test_resident_priority_zone_only_outside_permit_hours(city: Platform) -> None:
    zone = lot("chang-2-dong-resident-a", "OnStreetParking")  # permits Mo-Fr 09:00-18:00
    day = parking(city).guidance(SYSTEM, RESIDENT_ZONE, at=MONDAY.replace(hour=10), limit=25)
    night = parking(city).guidance(SYSTEM, RESIDENT_ZONE, at=MONDAY.replace(hour=19), limit=25)
    assert zone not in ids(day)
    assert zone in ids(night)
    always = lot("chang-1-dong-resident-b", "OnStreetParking")  # permits all day, every day
    assert always not in ids(night)
    assert always not in ids(parking(city).guidance(SYSTEM, (127.0442, 37.6492), limit=25))


def test_shared_parking_is_offered_inside_its_windows(city: Platform) -> None:
    school = lot("saesol-elementary-shared")  # Mo-Fr 18:00-23:00, Sa-Su 08:00-22:00
    service = parking(city)
    evening = by_id(service.guidance(SYSTEM, SCHOOL, limit=25), school)
    assert evening["shared"] == {
        "host": "school",
        "spaces": 30,
        "windows": "Mo-Fr 18:00-23:00,Sa-Su 08:00-22:00",
        "reservable": 30,
    }
    assert evening["group"] == "space"
    assert evening["fee"] == {"amount": 2000, "currency": "KRW"}  # 1 h 1,000 + 2 x 30 min 500
    late = service.guidance(SYSTEM, SCHOOL, at=datetime(2026, 11, 27, 22, 0, tzinfo=KST))
    assert "shared-window-ends" in [n["code"] for n in by_id(late, school)["notes"]]
    assert school not in ids(service.guidance(SYSTEM, SCHOOL, at=MONDAY.replace(hour=10)))


def test_forecast_at_arrival_comes_from_the_forecast_source(city: Platform) -> None:
    service = parking(city)
    arrival = service.host.clock.now() + timedelta(hours=1)
    answer = service.guidance(SYSTEM, ARENA, at=arrival, limit=25)
    live = [s for s in answer["sites"] if s["availability"]["state"] == "live"]
    assert live
    assert answer["forecast"] == {"model": "persistence", "trainedAt": None, "reason": "training"}
    for site in live:
        forecast = site["forecast"]
        assert forecast["model"] == "persistence"  # no history here: no model
        assert (
            forecast["low"] <= forecast["free"] == site["availability"]["free"] <= forecast["high"]
        )

    class Emptying:
        """A real, simple model: every site loses half its free spaces an hour."""

        def free_spaces_at(
            self, tenant: str, lot_id: str, now: datetime, at: datetime
        ) -> ForecastPoint | None:
            current = service.availability(Caller.system(tenant), lot_id)["free"]
            if current is None:
                return None
            value = current * 0.5 ** ((at - now).total_seconds() / 3600)
            return ForecastPoint(value, value * 0.8, value * 1.2, "emptying")

        def status(self, tenant: str, now: datetime) -> ForecastStatus:
            return ForecastStatus("emptying")

    service.forecast = Emptying()
    set_free(city, lot("seoul-arena"), 1, service.host.clock.now())
    later = by_id(service.guidance(SYSTEM, ARENA, at=arrival, limit=25), lot("seoul-arena"))
    assert later["forecast"]["free"] == 0.5
    assert later["forecast"]["model"] == "emptying"
    assert later["group"] == "full"  # one space now, half a space expected on arrival


def test_event_mode_steers_to_park_and_ride(city: Platform, clock: ManualClock) -> None:
    add_concert(city, clock.now() + timedelta(minutes=90))
    answer = parking(city).guidance(SYSTEM, ARENA, limit=25)
    assert answer["eventMode"] is not None
    groups = [s["group"] for s in answer["sites"]]
    rides = [s["id"] for s in answer["sites"] if s["group"] == "park-and-ride"]
    assert set(rides) >= {lot("nowon-station-public"), lot("depot-site-temporary")}
    assert groups[: len(rides)] == ["park-and-ride"] * len(rides)
    assert by_id(answer, lot("seoul-arena"))["group"] == "avoid"
    assert groups[-1] == "avoid"
    elsewhere = parking(city).guidance(SYSTEM, (127.0668, 37.6650))
    assert elsewhere["eventMode"] is None


def test_names_and_notes_in_english(city: Platform) -> None:
    answer = parking(city).guidance(SYSTEM, SCHOOL, lang="en", limit=25)
    assert by_id(answer, lot("saesol-elementary-shared"))["name"].startswith("Saesol Elementary")
    korean = parking(city).guidance(SYSTEM, SCHOOL, lang="ko", limit=25)
    assert by_id(korean, lot("saesol-elementary-shared"))["name"].startswith("새솔초등학교")


def test_readers_see_only_the_sites_they_may_see(city: Platform) -> None:
    anonymous = Caller.anonymous()
    assert parking(city).guidance(anonymous, ARENA)["sites"] == []
    city.accounts.mark_type(SYSTEM, TYPE_IRIS["OffStreetParking"], "public")
    city.access.forget_marks("")
    sites = parking(city).guidance(anonymous, ARENA, limit=25)["sites"]
    assert sites
    assert {s["type"] for s in sites} == {"OffStreetParking"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"at": datetime(2026, 11, 27, 12, 0, tzinfo=KST)}, "in the past"),
        ({"at": datetime(2026, 11, 27, 19, 0)}, "time zone"),
        ({"duration": timedelta(hours=30)}, "duration"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_questions_are_refused(city: Platform, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        parking(city).guidance(SYSTEM, ARENA, **changes)


def test_a_parking_group_stands_where_its_lot_stands(city: Platform) -> None:
    emart = lot("emart-changdong")
    group = "urn:ngsi-ld:ParkingGroup:emart-rooftop-shared"
    body = {
        "id": group,
        "type": "ParkingGroup",
        "name": {"type": "Property", "value": "이마트 창동점 옥상 공유주차"},
        "refParkingSite": {"type": "Relationship", "object": emart},
        "totalSpotNumber": {"type": "Property", "value": 50},
        "category": {"type": "Property", "value": ["private"]},
        "sharedParking": {
            "type": "JsonProperty",
            "json": {"host": "other", "spaces": 50, "windows": "Mo-Su 00:00-24:00"},
        },
    }
    city.entities.create(SYSTEM, body, city.contexts.resolve(CHANGDONG_CONTEXT_URL))
    answer = parking(city).guidance(SYSTEM, ARENA, limit=25)
    found = by_id(answer, group)
    assert found["type"] == "ParkingGroup"
    assert found["location"] == by_id(answer, emart)["location"]
    assert found["shared"]["reservable"] == 50
    assert found["group"] == "space"
