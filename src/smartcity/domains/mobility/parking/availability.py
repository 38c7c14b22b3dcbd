"""Live availability of a site from its freshest source, and STALE when that source went quiet.

Three sources feed the free-space count, each with its own freshness threshold:

- `spot-sensors`: one `ParkingSpot` per sensed space (status free/occupied, sent on change and
  as a heartbeat); a spot whose last report is older than the threshold is unknown, and a site
  where fewer than half of its sensors are fresh is stale.
- `counter`: the lot's own `availableSpotNumber`, kept by its gate counter (entries and exits
  from plate recognition, `gate.py`) or its guidance server.
- `seoul-open-data`: the same attribute written by the Seoul GetParkingInfo adapter
  (`source` https://data.seoul.go.kr), whose counts refresh every few minutes.

A stale count is never shown as free: `free` is None and `last_free` keeps what was last known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from smartcity.core.entity import StoredEntity
from smartcity.domains.mobility.parking.entities import first_instance, observed_at, value

Source = Literal["spot-sensors", "counter", "seoul-open-data", "none"]
State = Literal["live", "stale", "unknown"]
SEOUL_SOURCE: Final = "https://data.seoul.go.kr"
DEFAULT_STALE_AFTER: Final[Mapping[str, float]] = {
    "spot-sensors": 1800.0,
    "counter": 300.0,
    "seoul-open-data": 900.0,
}
"""Seconds after which a source's count is stale (sensor heartbeat 10 min; counters each
minute; the city's public service every few minutes)."""
FRESH_SENSOR_SHARE: Final = 0.5


@dataclass(frozen=True, slots=True)
class Availability:
    """How many spaces a site has free now, and how far to trust it."""

    site_id: str
    state: State
    source: Source
    free: int | None
    """Free spaces now; None when stale or unknown."""
    last_free: int | None
    """The last count, whatever its age (shown as 'last known')."""
    total: int | None
    observed_at: datetime | None
    age_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        """Return it as the API shows it."""
        return {
            "state": self.state,
            "source": self.source,
            "free": self.free,
            "lastFree": self.last_free,
            "total": self.total,
            "observedAt": self.observed_at.isoformat() if self.observed_at else None,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds),
        }


def site_availability(
    site: StoredEntity,
    spots: Sequence[StoredEntity],
    now: datetime,
    stale_after: Mapping[str, float] = DEFAULT_STALE_AFTER,
) -> Availability:
    """Return a site's availability from its spot sensors when they are live, else its counter."""
    total = value(site, "totalSpotNumber")
    total = total if isinstance(total, int) else None
    counted = _from_counter(site, now, stale_after, total)
    if not spots:
        return counted
    sensed = _from_spots(site.id, spots, now, stale_after["spot-sensors"], total)
    if sensed.state == "live" or counted.state != "live":
        return sensed
    return counted


def _from_counter(
    site: StoredEntity, now: datetime, stale_after: Mapping[str, float], total: int | None
) -> Availability:
    instance = first_instance(site, "availableSpotNumber")
    source: Source = "seoul-open-data" if value(site, "source") == SEOUL_SOURCE else "counter"
    count = None if instance is None else instance.get("value")
    if not isinstance(count, int):
        return Availability(site.id, "unknown", "none", None, None, total, None, None)
    at = observed_at(instance)
    age = None if at is None else max(0.0, (now - at).total_seconds())
    fresh = age is not None and age <= stale_after[source]
    free = max(0, count)
    return Availability(
        site.id, "live" if fresh else "stale", source, free if fresh else None, free, total, at, age
    )


def _from_spots(
    site_id: str, spots: Sequence[StoredEntity], now: datetime, limit: float, total: int | None
) -> Availability:
    fresh_free = fresh = all_free = 0
    newest: datetime | None = None
    for spot in spots:
        instance = first_instance(spot, "status")
        status = None if instance is None else instance.get("value")
        at = observed_at(instance)
        is_free = status == "free"
        all_free += is_free
        if at is None:
            continue
        newest = at if newest is None or at > newest else newest
        if (now - at).total_seconds() <= limit:
            fresh += 1
            fresh_free += is_free
    total = total if total is not None else len(spots)
    age = None if newest is None else max(0.0, (now - newest).total_seconds())
    if fresh < FRESH_SENSOR_SHARE * len(spots):
        return Availability(site_id, "stale", "spot-sensors", None, all_free, total, newest, age)
    # Unknown (stale) sensors count as taken: never promise a space nobody has seen free.
    return Availability(site_id, "live", "spot-sensors", fresh_free, all_free, total, newest, age)
