"""Guidance: "where can I park near X at time T?" — sites ranked for a stay, in Korean or English.

Each site the caller may see is checked for the stay [at, at + duration): open then (opening
hours), open to the public then (a shared site's windows; resident-priority hours exclude a
site while they apply), its live availability, the forecast at arrival when arrival is later
than `NOW_SLACK`, the walk to the destination and the fee. Sites are ranked in groups — space
expected, availability unknown (stale or never reported), full — and by walking distance within
a group. During an event near the destination (a concert at the Seoul Arena), park-and-ride
sites (`transitConnection`) come first and sites close to the venue last (event mode).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from smartcity.core.entity import StoredEntity
from smartcity.domains.mobility.parking.availability import Availability, site_availability
from smartcity.domains.mobility.parking.directory import Event, Snapshot
from smartcity.domains.mobility.parking.entities import Site, value
from smartcity.domains.mobility.parking.fees import estimate_fee, read_tariff
from smartcity.domains.mobility.parking.forecasting import ForecastPoint, ForecastSource
from smartcity.domains.mobility.parking.texts import Lang, note, site_name
from smartcity.domains.mobility.parking.walking import Walk, WalkPlanner, great_circle

NOW_SLACK: Final = timedelta(minutes=5)
Group = Literal["park-and-ride", "space", "unknown", "full", "avoid"]
GROUP_ORDER: Final[dict[str, int]] = {
    "park-and-ride": 0,
    "space": 1,
    "unknown": 2,
    "full": 3,
    "avoid": 4,
}


@dataclass(frozen=True, slots=True)
class GuidanceOptions:
    """What guidance is told by the module's settings."""

    stale_after: Mapping[str, float]
    max_walk: float
    event_radius: float
    """An event within this many metres of the destination turns event mode on."""
    event_avoid_radius: float
    """In event mode, sites this close to the venue are ranked last."""
    event_before: timedelta
    event_after: timedelta
    holidays: Collection[date]
    zone: ZoneInfo
    """Where the clock times of opening hours and windows are (the district's time zone)."""


@dataclass(frozen=True, slots=True)
class GuidanceQuery:
    """A driver's question."""

    tenant: str
    near: tuple[float, float]
    at: datetime
    duration: timedelta
    lang: Lang
    limit: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """One site's answer to a query, before ranking."""

    site: Site
    group: Group
    walk: Walk
    availability: Availability
    forecast: ForecastPoint | None
    fee: int | None
    reservable: int | None
    notes: tuple[dict[str, str], ...]


ReservedPeak = Callable[[str, str, datetime, datetime], int]
"""(tenant, site id, start, end) -> the most reservations in force at once then."""


def active_event(
    events: list[Event], near: tuple[float, float], at: datetime, options: GuidanceOptions
) -> Event | None:
    """Return the event that puts guidance for this place and time into event mode."""
    for event in sorted(events, key=lambda e: e.start):
        if not (event.start - options.event_before <= at <= event.end + options.event_after):
            continue
        if great_circle(event.position, near) <= options.event_radius:
            return event
    return None


def guide(
    query: GuidanceQuery,
    snapshot: Snapshot,
    sites: list[tuple[Site, StoredEntity]],
    now: datetime,
    options: GuidanceOptions,
    forecast: ForecastSource,
    reserved_peak: ReservedPeak,
) -> dict[str, Any]:
    """Answer a guidance query over the sites a caller may see."""
    end = query.at + query.duration
    event = active_event(snapshot.events, query.near, query.at, options)
    planner = snapshot.graph.from_destination(query.near)
    candidates = [
        c
        for site, entity in sites
        if (
            c := _evaluate(
                query,
                site,
                entity,
                snapshot,
                planner,
                now,
                end,
                options,
                event,
                forecast,
                reserved_peak,
            )
        )
        is not None
    ]
    candidates.sort(key=lambda c: (GROUP_ORDER[c.group], c.walk.metres, c.site.id))
    return {
        "near": {"type": "Point", "coordinates": list(query.near)},
        "at": query.at.isoformat(),
        "until": end.isoformat(),
        "lang": query.lang,
        "walking": "network" if planner.node is not None else "detour",
        "eventMode": None if event is None else _event_json(event, query.lang),
        "forecast": forecast.status(query.tenant, now).as_json(),
        "considered": len(sites),
        "sites": [_candidate_json(c, query) for c in candidates[: query.limit]],
    }


def _evaluate(
    query: GuidanceQuery,
    site: Site,
    entity: StoredEntity,
    snapshot: Snapshot,
    planner: WalkPlanner,
    now: datetime,
    end: datetime,
    options: GuidanceOptions,
    event: Event | None,
    forecast: ForecastSource,
    reserved_peak: ReservedPeak,
) -> Candidate | None:
    if site.position is None:
        return None
    lang, start, holidays, zone = query.lang, query.at, options.holidays, options.zone
    walk = planner.walk(site.position)
    park_and_ride = event is not None and bool(site.transit)
    if walk.metres > options.max_walk and not park_and_ride:
        return None
    notes: list[dict[str, str]] = []
    hours = site.opening_hours
    if hours is not None and not hours.covers(start, end, holidays, zone):
        if not hours.is_open(start, holidays, zone):
            return None
        notes.append(note("closes-during-stay", lang))
    reservable: int | None = None
    if site.shared is not None:
        windows = site.shared.windows
        if not windows.is_open(start, holidays, zone):
            return None
        if not windows.covers(start, end, holidays, zone):
            notes.append(note("shared-window-ends", lang))
        taken = reserved_peak(query.tenant, site.id, start, end)
        reservable = max(0, site.shared.spaces - taken)
    if site.resident_hours is not None and any(
        site.resident_hours.intervals(start, end, holidays, zone)
    ):
        return None  # residents' permit hours: visitors may not park then
    availability = snapshot.availability(site.id, now, options.stale_after) or site_availability(
        entity, snapshot.spots.get(site.id, []), now, options.stale_after
    )
    predicted = None
    if query.at - now > NOW_SLACK:
        predicted = forecast.free_spaces_at(query.tenant, site.id, now, query.at)
    expected: float | None = predicted.value if predicted is not None else availability.free
    if predicted is None and query.at - now > NOW_SLACK and availability.free is not None:
        notes.append(note("no-forecast", lang))
    if availability.state == "stale":
        notes.append(note("stale", lang))
    if reservable is not None:
        expected = reservable if expected is None else min(expected, reservable)
    group: Group = "unknown" if expected is None else ("space" if expected >= 1 else "full")
    near_venue = event is not None and (
        great_circle(site.position, event.position) <= options.event_avoid_radius
    )
    if near_venue:
        group = "avoid"
        notes.append(note("event-congestion", lang))
    elif park_and_ride and group != "full":
        group = "park-and-ride"
        notes.append(note("park-and-ride", lang))
    tariff = read_tariff(site.tariff, value(entity, "chargeType"))
    return Candidate(
        site,
        group,
        walk,
        availability,
        predicted,
        estimate_fee(tariff, start, end),
        reservable,
        tuple(notes),
    )


def _event_json(event: Event, lang: Lang) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name if lang == "ko" else event.name_en,
        "type": event.kind,
        "start": event.start.isoformat(),
        "end": event.end.isoformat(),
        "venue": {"type": "Point", "coordinates": list(event.position)},
        "message": note("event-mode", lang)["text"],
    }


def _candidate_json(c: Candidate, query: GuidanceQuery) -> dict[str, Any]:
    site = c.site
    shared = None
    if site.shared is not None:
        shared = {
            "host": site.shared.host,
            "spaces": site.shared.spaces,
            "windows": site.shared.windows.text,
            "reservable": c.reservable,
        }
    return {
        "id": site.id,
        "type": site.type,
        "name": site_name(site, query.lang),
        "operator": site.operator,
        "location": {"type": "Point", "coordinates": list(site.position or ())},
        "group": c.group,
        "walk": {"metres": c.walk.metres, "minutes": c.walk.minutes, "method": c.walk.method},
        "availability": c.availability.as_json(),
        "forecast": None
        if c.forecast is None
        else {
            "at": query.at.isoformat(),
            "free": round(c.forecast.value, 1),
            "low": round(c.forecast.low, 1),
            "high": round(c.forecast.high, 1),
            "model": c.forecast.model,
        },
        "fee": None if c.fee is None else {"amount": c.fee, "currency": "KRW"},
        "openingHours": site.opening_hours.text if site.opening_hours else None,
        "shared": shared,
        "transit": list(site.transit),
        "notes": list(c.notes),
    }
