"""Live availability per source, and STALE when a source stops updating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smartcity.core.clock import isoformat
from smartcity.core.entity import NGSI_LD, StoredEntity
from smartcity.domains.mobility.parking.availability import DEFAULT_STALE_AFTER, site_availability
from smartcity.domains.mobility.parking.entities import SDM, SDM_PARKING

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def prop(value: Any, observed: datetime | None = None) -> list[dict[str, Any]]:
    instance: dict[str, Any] = {"type": "Property", "value": value}
    if observed is not None:
        instance["observedAt"] = isoformat(observed)
    return [instance]


def make_lot(
    free: int | None = None, observed: datetime | None = None, **extra: Any
) -> StoredEntity:
    attrs = {SDM_PARKING + "totalSpotNumber": prop(10)}
    if free is not None:
        attrs[SDM_PARKING + "availableSpotNumber"] = prop(free, observed)
    for name, value in extra.items():
        attrs[SDM + name] = prop(value)
    return StoredEntity("urn:ngsi-ld:OffStreetParking:a", [SDM_PARKING + "OffStreetParking"], attrs)


def make_spot(number: int, status: str, observed: datetime) -> StoredEntity:
    attrs = {NGSI_LD + "status": prop(status, observed)}
    return StoredEntity(f"urn:ngsi-ld:ParkingSpot:{number}", [SDM_PARKING + "ParkingSpot"], attrs)


def test_a_fresh_counter_is_live_and_an_old_one_stale() -> None:
    live = site_availability(make_lot(4, NOW - timedelta(minutes=4)), [], NOW)
    assert (live.state, live.source, live.free, live.total) == ("live", "counter", 4, 10)
    stale = site_availability(make_lot(4, NOW - timedelta(minutes=6)), [], NOW)
    assert (stale.state, stale.free, stale.last_free) == ("stale", None, 4)
    assert stale.age_seconds == 360


def test_the_seoul_service_has_its_own_threshold() -> None:
    lot = make_lot(4, NOW - timedelta(minutes=12), source="https://data.seoul.go.kr")
    assert site_availability(lot, [], NOW).source == "seoul-open-data"
    assert site_availability(lot, [], NOW).state == "live"  # 15 minutes for the city's counts
    thresholds = {**DEFAULT_STALE_AFTER, "seoul-open-data": 600.0}
    assert site_availability(lot, [], NOW, thresholds).state == "stale"


def test_without_a_count_availability_is_unknown() -> None:
    unknown = site_availability(make_lot(), [], NOW)
    assert (unknown.state, unknown.source, unknown.free) == ("unknown", "none", None)


def test_spot_sensors_count_fresh_free_spots_and_stale_ones_as_taken() -> None:
    fresh = NOW - timedelta(minutes=5)
    old = NOW - timedelta(hours=2)
    spots = [
        make_spot(1, "free", fresh),
        make_spot(2, "free", fresh),
        make_spot(3, "occupied", fresh),
        make_spot(4, "free", old),
    ]
    seen = site_availability(make_lot(), spots, NOW)
    assert (seen.state, seen.source, seen.free, seen.last_free) == ("live", "spot-sensors", 2, 3)


def test_mostly_silent_sensors_fall_back_to_a_live_counter_or_are_stale() -> None:
    old = NOW - timedelta(hours=2)
    spots = [make_spot(n, "free", old) for n in range(4)]
    counted = site_availability(make_lot(7, NOW - timedelta(minutes=1)), spots, NOW)
    assert (counted.state, counted.source, counted.free) == ("live", "counter", 7)
    silent = site_availability(make_lot(), spots, NOW)
    assert (silent.state, silent.source, silent.free, silent.last_free) == (
        "stale", "spot-sensors", None, 4,
    )  # fmt: skip
