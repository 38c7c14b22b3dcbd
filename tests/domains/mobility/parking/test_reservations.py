"""Reservations of shared parking: who may, when, how many, cancelling and no-shows."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from smartcity.auth.principal import Caller, Role
from smartcity.core.clock import ManualClock
from smartcity.core.errors import (
    BadRequestData,
    Conflict,
    Forbidden,
    ResourceNotFound,
    Unauthorized,
)
from smartcity.domains.mobility.parking.entities import TYPE_IRIS
from smartcity.domains.mobility.parking.reservations import NoShowReleaser, ReservationService
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.platform import Platform
from smartcity.storage.accounts import AuditFilter
from tests.domains.mobility.parking.city import lot, make_parking_public, parking

SCHOOL = lot("saesol-elementary-shared")  # 30 spaces, Mo-Fr 18:00-23:00, Sa-Su 08:00-22:00
CHURCH = lot("changdong-hanbit-church-shared")  # 20 spaces, Mo-Sa 08:00-22:00


@pytest.fixture(autouse=True)
def _public_parking(city: Platform) -> None:
    make_parking_public(city)


def person(name: str, *roles: Role) -> Caller:
    """Return a signed-in principal of the default tenant."""
    return Caller(name, "", frozenset(roles or {Role.PUBLIC}), principal_id=f"id-{name}")


def service(city: Platform) -> ReservationService:
    return parking(city).reservations


def window(
    clock: ManualClock, start_minutes: int = 30, hours: float = 2
) -> tuple[datetime, datetime]:
    start = clock.now() + timedelta(minutes=start_minutes)
    return start, start + timedelta(hours=hours)


def test_a_resident_reserves_sees_and_cancels_their_own(city: Platform, clock: ManualClock) -> None:
    kim, lee = person("kim"), person("lee")
    made = service(city).reserve(kim, SCHOOL, *window(clock))
    assert (made.status, made.site_id, made.holder) == ("reserved", SCHOOL, "id-kim")
    assert [r.id for r in service(city).list_for(kim)] == [made.id]
    assert service(city).list_for(lee) == []
    with pytest.raises(ResourceNotFound):
        service(city).get(lee, made.id)
    with pytest.raises(ResourceNotFound):
        service(city).cancel(lee, made.id)
    assert service(city).cancel(kim, made.id).status == "cancelled"
    with pytest.raises(Conflict, match="cancelled"):
        service(city).cancel(kim, made.id)
    records = city.accounts.audit(Caller.system(), AuditFilter("", limit=1000))
    actions = [(r.action, r.principal, r.target) for r in records]
    assert ("parking.reserve", "kim", SCHOOL) in actions
    assert ("parking.cancel", "kim", SCHOOL) in actions


def test_operators_see_and_cancel_everyone_s(city: Platform, clock: ManualClock) -> None:
    made = service(city).reserve(person("kim"), SCHOOL, *window(clock))
    operator = person("op", Role.OPERATOR)
    assert [r.id for r in service(city).list_for(operator)] == [made.id]
    assert service(city).cancel(operator, made.id).status == "cancelled"


def test_who_may_not_reserve(city: Platform, clock: ManualClock) -> None:
    with pytest.raises(Unauthorized):
        service(city).reserve(Caller.anonymous(), SCHOOL, *window(clock))
    with pytest.raises(Forbidden):
        service(city).reserve(person("analyst", Role.ANALYST), SCHOOL, *window(clock))


@pytest.mark.parametrize(
    ("site", "start_minutes", "hours", "message"),
    [
        (SCHOOL, -600, 2, "past"),
        (SCHOOL, 30, 13, "at most 12 hours"),
        (SCHOOL, 60 * 24 * 20, 1, "14 days"),
        (SCHOOL, 60 * 24 * 3 - 8 * 60, 2, "shared windows"),  # Monday 10:00
        (lot("seoul-arena"), 30, 2, "not a shared-parking site"),
    ],
)
def test_reservations_outside_the_rules_are_refused(
    city: Platform, clock: ManualClock, site: str, start_minutes: int, hours: float, message: str
) -> None:
    with pytest.raises(BadRequestData, match=message):
        service(city).reserve(person("kim"), site, *window(clock, start_minutes, hours))


def test_an_unknown_or_unseen_site_is_not_found(city: Platform, clock: ManualClock) -> None:
    with pytest.raises(ResourceNotFound):
        service(city).reserve(person("kim"), lot("nowhere"), *window(clock))
    city.accounts.mark_type(Caller.system(), TYPE_IRIS["OffStreetParking"], "public", on=False)
    city.access.forget_marks("")
    with pytest.raises(ResourceNotFound):
        service(city).reserve(person("kim"), SCHOOL, *window(clock))


def test_a_full_window_refuses_but_another_window_fits(city: Platform, clock: ManualClock) -> None:
    start, end = window(clock, 30, 1)  # 18:30-19:30
    for number in range(20):
        service(city).reserve(person(f"p{number}"), CHURCH, start, end)
    with pytest.raises(Conflict, match="all 20"):
        service(city).reserve(person("late"), CHURCH, start + timedelta(minutes=30), end)
    after = service(city).reserve(person("late"), CHURCH, end, end + timedelta(hours=1))
    assert after.status == "reserved"
    answer = parking(city).guidance(Caller.system(), (127.0478, 37.6526), at=start, limit=25)
    church = next(s for s in answer["sites"] if s["id"] == CHURCH)
    assert church["shared"]["reservable"] == 0
    assert church["group"] == "full"


def test_one_holder_holds_at_most_three_upcoming(city: Platform, clock: ManualClock) -> None:
    kim = person("kim")
    for hour in range(3):
        service(city).reserve(kim, SCHOOL, *window(clock, 30 + hour * 60, 1))
    with pytest.raises(Conflict, match="3 upcoming"):
        service(city).reserve(kim, SCHOOL, *window(clock, 30 + 3 * 60, 1))


def test_no_shows_are_released_after_the_grace_time(city: Platform, clock: ManualClock) -> None:
    kim, lee = person("kim"), person("lee")
    absent = service(city).reserve(kim, SCHOOL, *window(clock, 10))
    present = service(city).reserve(lee, SCHOOL, *window(clock, 10))
    later = service(city).reserve(lee, SCHOOL, *window(clock, 60))
    with pytest.raises(Conflict, match="check-in opens"):
        service(city).check_in(lee, later.id)
    assert service(city).check_in(lee, present.id).status == "checkedIn"
    clock.advance(timedelta(minutes=10 + 14))
    assert service(city).release_no_shows() == 0  # 14 minutes late: still within grace
    clock.advance(timedelta(minutes=2))
    releaser = NoShowReleaser(service(city), interval=0.01)
    stop = asyncio.Event()

    async def one_round() -> None:
        task = asyncio.create_task(releaser.run(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await task

    asyncio.run(one_round())
    assert service(city).get(kim, absent.id).status == "released"
    assert service(city).get(lee, present.id).status == "checkedIn"
    with pytest.raises(Conflict, match="released"):
        service(city).cancel(kim, absent.id)


def test_times_need_a_zone(city: Platform) -> None:
    naive = datetime(2026, 11, 27, 19, 0)
    with pytest.raises(BadRequestData, match="time zone"):
        service(city).reserve(person("kim"), SCHOOL, naive, naive + timedelta(hours=1))
    start = datetime(2026, 11, 27, 19, 0, tzinfo=KST)
    with pytest.raises(BadRequestData, match="after start"):
        service(city).reserve(person("kim"), SCHOOL, start, start)
