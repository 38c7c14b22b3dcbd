"""A tenant's parking sites, spot sensors, walking graph and events, read once per moment.

Guidance asks for every site on each query; reading them from the store each time would cost
tens of milliseconds, so a snapshot is kept per tenant for `cache_seconds` (a count seconds old
is what every sign in the street shows too). Freshness is judged at query time against the
values' own observation times, so a cached snapshot never hides that a source went quiet. The
walking graph is rebuilt only when the number of road segments changes, or after `graph_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from smartcity.core.entity import StoredEntity
from smartcity.domains.mobility.parking.availability import Availability, site_availability
from smartcity.domains.mobility.parking.entities import (
    EVENT_TYPE_IRIS,
    ROAD_SEGMENT_IRI,
    SITE_TYPES,
    SPOT_TYPE,
    TYPE_IRIS,
    Site,
    position,
    read_site,
    value,
)
from smartcity.domains.mobility.parking.walking import WalkingGraph
from smartcity.storage.base import Visibility
from smartcity.storage.sqlbase import SqlEntityStore

GRAPH_SECONDS: Final = 600.0


@dataclass(frozen=True, slots=True)
class Event:
    """A planned event at a venue (a concert at the Seoul Arena), from an `Event` entity."""

    id: str
    name: str
    name_en: str
    kind: str
    start: datetime
    end: datetime
    position: tuple[float, float]
    entity: StoredEntity


@dataclass(slots=True)
class Snapshot:
    """One moment's view of a tenant's parking."""

    taken: float
    sites: list[tuple[Site, StoredEntity]]
    spots: dict[str, list[StoredEntity]]
    """ParkingSpot entities by the site they belong to (refParkingSite)."""
    graph: WalkingGraph
    events: list[Event] = field(default_factory=list)
    _live: dict[tuple[str, datetime], Availability] = field(default_factory=dict)
    _by_id: dict[str, tuple[Site, StoredEntity]] = field(default_factory=dict)

    def availability(
        self, site_id: str, now: datetime, stale_after: Mapping[str, float]
    ) -> Availability | None:
        """Return a site's availability at `now` (worked out once per moment)."""
        key = (site_id, now)
        found = self._live.get(key)
        if found is None:
            pair = self.site(site_id)
            if pair is None:
                return None
            found = site_availability(pair[1], self.spots.get(site_id, []), now, stale_after)
            if len(self._live) > 10_000:
                self._live.clear()
            self._live[key] = found
        return found

    def visible_sites(self, visibility: Visibility) -> list[tuple[Site, StoredEntity]]:
        """Return the sites a reader may see."""
        return [pair for pair in self.sites if visibility.allows(pair[1])]

    def site(self, site_id: str) -> tuple[Site, StoredEntity] | None:
        """Return one site by id."""
        if not self._by_id:
            self._by_id.update((pair[0].id, pair) for pair in self.sites)
        return self._by_id.get(site_id)


class Directory:
    """Snapshots of each tenant's parking, refreshed after `cache_seconds`."""

    def __init__(self, store: SqlEntityStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._snapshots: dict[str, Snapshot] = {}
        self._graphs: dict[str, tuple[float, int, WalkingGraph]] = {}
        self._lock = threading.Lock()

    def snapshot(self, tenant: str, max_age: float | None = None) -> Snapshot:
        """Return the tenant's snapshot, reading it again when older than cache_seconds (or
        `max_age`, for a caller that wants the one a query has just read)."""
        now = time.monotonic()
        limit = self.cache_seconds if max_age is None else max(max_age, self.cache_seconds)
        with self._lock:
            cached = self._snapshots.get(tenant)
            if cached is not None and now - cached.taken < limit:
                return cached
        fresh = self._read(tenant, now)
        with self._lock:
            self._snapshots[tenant] = fresh
        return fresh

    def forget(self, tenant: str) -> None:
        """Drop a tenant's snapshot (after this process changed its sites)."""
        with self._lock:
            self._snapshots.pop(tenant, None)

    def _read(self, tenant: str, now: float) -> Snapshot:
        sites: list[tuple[Site, StoredEntity]] = []
        for name in SITE_TYPES:
            for entity in self.store.entities_of_type(tenant, TYPE_IRIS[name]):
                sites.append((read_site(entity), entity))
        positions = {site.id: site.position for site, _ in sites}
        resolved = []
        for site, entity in sites:  # a ParkingGroup stands where its lot stands
            if site.position is None and site.parent in positions:
                site = replace(site, position=positions[site.parent])
            resolved.append((site, entity))
        spots: dict[str, list[StoredEntity]] = {}
        for spot in self.store.entities_of_type(tenant, TYPE_IRIS[SPOT_TYPE]):
            parent = value(spot, "refParkingSite")
            if isinstance(parent, str):
                spots.setdefault(parent, []).append(spot)
        events = [
            event
            for iri in EVENT_TYPE_IRIS
            for entity in self.store.entities_of_type(tenant, iri)
            if (event := read_event(entity)) is not None
        ]
        return Snapshot(now, resolved, spots, self._graph(tenant, now), events)

    def _graph(self, tenant: str, now: float) -> WalkingGraph:
        segments = self.store.entities_of_type(tenant, ROAD_SEGMENT_IRI)
        with self._lock:
            cached = self._graphs.get(tenant)
        if cached is not None and cached[1] == len(segments) and now - cached[0] < GRAPH_SECONDS:
            return cached[2]
        graph = WalkingGraph.from_entities(segments)
        with self._lock:
            self._graphs[tenant] = (now, len(segments), graph)
        return graph


def read_event(entity: StoredEntity) -> Event | None:
    """Read an `Event` entity (startDate, endDate, location, eventType); None if incomplete."""
    start, end = _time(value(entity, "startDate")), _time(value(entity, "endDate"))
    where = position(entity)
    if start is None or end is None or where is None or end <= start:
        return None
    kind = value(entity, "eventType")
    name = str(value(entity, "name") or entity.id)
    name_en = str(value(entity, "alternateName") or name)
    return Event(entity.id, name, name_en, str(kind or "event"), start, end, where, entity)


def _time(raw: object) -> datetime | None:
    if isinstance(raw, dict):
        raw = raw.get("@value")
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
