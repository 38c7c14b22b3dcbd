"""Build a test city: the platform, the Changdong district, and helpers to change its parking."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import Clock, isoformat
from smartcity.domains.mobility.parking.entities import TYPE_IRIS
from smartcity.domains.mobility.parking.forecast_series import STEP, OccupancyHistory, align
from smartcity.domains.mobility.parking.service import ParkingService
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.platform import Platform, build_platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.loader import build_entities
from smartcity.sim.seed import data_path
from tests.conftest import postgres_url
from tests.domains.mobility.parking.forecast_factories import daily_series, write_series

FRIDAY_EVENING = datetime(2026, 11, 27, 18, 0, tzinfo=KST)
ARENA = (127.0515, 37.6512)
SECRET = "test-secret-for-signing-bearer-tokens-0123456789"
PARKING_TYPES = frozenset({"OffStreetParking", "OnStreetParking", "ParkingSpot", "RoadSegment"})


def lot(local_id: str, kind: str = "OffStreetParking") -> str:
    """Return the entity id of a Changdong parking site."""
    return f"urn:ngsi-ld:{kind}:{local_id}"


def city_settings(tmp_path: Path, shared_data: Path, schema: str | None = None) -> Settings:
    """Return settings of a test platform (PostgreSQL when a schema is given)."""
    common = Settings(
        database_url=f"sqlite:///{tmp_path / 'city.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(shared_data / "smart-data-models"),
        auth_secret=SECRET,
        notifications_enabled=False,
        module_settings={"mobility": {"parking_cache_seconds": 0}},
    )
    if schema is None:
        return common
    return common.model_copy(update={"database_url": postgres_url(), "database_schema": schema})


@cache
def parking_entities() -> list[dict[str, Any]]:
    """Return Changdong's parking sites, spots and road segments (what parking reads)."""
    return [e for e in build_entities(load_district()) if e["type"] in PARKING_TYPES]


def city_platform(settings: Settings, clock: Clock) -> Platform:
    """Build the platform and load Changdong's parking and roads into it."""
    platform = build_platform(settings, clock)
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    entities = parking_entities()
    for start in range(0, len(entities), 500):
        result, _ = platform.entities.batch_upsert(
            Caller.system(), copy.deepcopy(entities[start : start + 500]), lambda _: ctx
        )
        assert not result.errors, result.errors[:3]
    return platform


def parking(platform: Platform) -> ParkingService:
    """Return the parking service of a platform."""
    service: Any = platform.services["mobility"]
    parking_service: ParkingService = service.parking
    return parking_service


def set_free(platform: Platform, site: str, free: int, observed: datetime) -> None:
    """Write a site's free-space count as its counter would, observed at a moment."""
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    body = {
        "availableSpotNumber": {
            "type": "Property",
            "value": free,
            "observedAt": isoformat(observed),
        }
    }
    platform.entities.append_attributes(Caller.system(), site, body, ctx)


def add_concert(platform: Platform, start: datetime, hours: float = 3.0) -> str:
    """Write a concert `Event` at the Seoul Arena; return its id."""
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    event_id = f"urn:ngsi-ld:Event:test-{start:%H%M}"
    body = {
        "id": event_id,
        "type": "Event",
        "name": {"type": "Property", "value": "서울아레나 공연"},
        "alternateName": {"type": "Property", "value": "Concert at the Seoul Arena"},
        "eventType": {"type": "Property", "value": "concert"},
        "startDate": {"type": "Property", "value": start.isoformat()},
        "endDate": {"type": "Property", "value": (start + timedelta(hours=hours)).isoformat()},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": list(ARENA)}},
    }
    platform.entities.create(Caller.system(), body, ctx)
    return event_id


def make_parking_public(platform: Platform, tenant: str = "") -> None:
    """Mark the parking site types public in a tenant (as a district's admin would)."""
    for name in ("OffStreetParking", "OnStreetParking", "ParkingGroup"):
        platform.accounts.mark_type(Caller.system(tenant), TYPE_IRIS[name], "public")
    platform.access.forget_marks(tenant)


def write_lot_history(
    platform: Platform,
    now: datetime,
    lots: tuple[str, ...],
    days: int,
    live_at: datetime | None = None,
) -> None:
    """Write `days` of each lot's counter readings up to `now` (a daily wave with noise).

    The counter's live count is its last reading, observed at the last step before `now`, or
    at `live_at` (a test on the system clock: the count must not go stale, 5 minutes after the
    step, while the test runs)."""
    reader = OccupancyHistory(platform.history, platform.store)
    start = align(now - timedelta(days=days)) + STEP
    for number, lot_id in enumerate(lots):
        info = reader.lot_info("", lot_id)
        assert info is not None
        series = replace(daily_series(lot_id, info.capacity, days, seed=number), start=start)
        write_series(platform.history, "", replace(series, lot=info))
        last = int(series.occupied[-1])  # the counter's current value is its last reading
        set_free(platform, lot_id, info.capacity - last, live_at or series.end - STEP)
