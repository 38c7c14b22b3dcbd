"""The parking entity types and how a stored one reads as a `Site` (lot, street zone or group).

Types and attributes are the Smart Data Models ones (`OffStreetParking`, `OnStreetParking`,
`ParkingGroup`, `ParkingSpot`) with the Korean specifics as extra attributes:

- `category` "public" / "private": who operates it (공영 / 민영); `provider` names the operator.
- `tariff` (JsonProperty): the lot's tariff, as `tariff.py` of this package reads it.
- `openingHours`: schema.org text ("Mo-Fr 09:00-22:00,Sa-Su 10:00-20:00"), as the Seoul
  open-data adapter writes it.
- 거주자우선주차 (resident priority): `requiredPermit` ["residentPermit"] with
  `permitActiveHours` {"residentPermit": "Mo-Fr 09:00-18:00"}: only permit holders park in those
  hours; outside them the spaces are open to all (Seoul's shared resident-priority scheme).
- 공유주차 (shared parking): `sharedParking` (JsonProperty) {"host": "church" | "apartment" |
  "school" | "office", "spaces": 12, "windows": "Mo-Fr 09:00-17:00"}: spaces of a private site
  opened to the public, and reservable, in those windows only.

Stored entities are read by local attribute name in every namespace they come in (the Smart
Data Models context, the district's context, the NGSI-LD default context): the simulator, the
open-data adapters and API clients each write under their own @context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from smartcity.core.entity import (
    DEFAULT_CONTEXT_VOCAB,
    LOCATION,
    NGSI_LD,
    StoredEntity,
    instance_value,
)
from smartcity.domains.mobility.parking.hours import HoursError, WeeklyHours, parse_hours

SDM: Final = "https://smartdatamodels.org/"
SDM_PARKING: Final = SDM + "dataModel.Parking/"
SITE_TYPES: Final = ("OffStreetParking", "OnStreetParking", "ParkingGroup")
SPOT_TYPE: Final = "ParkingSpot"
TYPE_IRIS: Final = {name: SDM_PARKING + name for name in (*SITE_TYPES, SPOT_TYPE)}
EVENT_TYPE_IRIS: Final = (
    DEFAULT_CONTEXT_VOCAB + "Event",
    "urn:smartcity:vocab:Event",
    "https://schema.org/Event",
)
ROAD_SEGMENT_IRI: Final = SDM + "dataModel.Transportation/RoadSegment"
RESIDENT_PERMIT: Final = "residentPermit"
SHARED_HOSTS: Final = frozenset({"apartment", "church", "school", "office", "other"})
_NAMESPACES: Final = (
    SDM_PARKING,
    SDM,
    SDM + "dataModel.Transportation/",
    NGSI_LD,
    DEFAULT_CONTEXT_VOCAB,
    "https://schema.org/",
    "urn:smartcity:vocab:",
)

WRITE_CONTEXT: Final = {
    "@context": {
        "availableSpotNumber": SDM_PARKING + "availableSpotNumber",
        "occupiedSpotNumber": SDM_PARKING + "occupiedSpotNumber",
        "vehicleEntranceCount": SDM_PARKING + "vehicleEntranceCount",
        "vehicleExitCount": SDM_PARKING + "vehicleExitCount",
        "occupancyModified": SDM_PARKING + "occupancyModified",
        "status": NGSI_LD + "status",
    }
}
"""The @context of what this module writes itself (gate counts)."""


def first_instance(entity: StoredEntity, name: str) -> dict[str, Any] | None:
    """Return the default instance of an attribute by local name, whatever its namespace."""
    for namespace in _NAMESPACES:
        instances = entity.attrs.get(namespace + name)
        if instances:
            for instance in instances:
                if "datasetId" not in instance:
                    return instance
            return instances[0]
    return None


def value(entity: StoredEntity, name: str) -> Any:
    """Return an attribute's value by local name (None when absent)."""
    instance = first_instance(entity, name)
    return None if instance is None else instance_value(instance)


def local_type(entity: StoredEntity) -> str:
    """Return the entity's first type as a local name ("OffStreetParking")."""
    return entity.types[0].rsplit("/", 1)[-1].rsplit("#", 1)[-1] if entity.types else ""


def position(entity: StoredEntity) -> tuple[float, float] | None:
    """Return a (longitude, latitude) for the entity: its Point, or its shape's centre."""
    for instance in entity.attrs.get(LOCATION, []):
        geometry = instance.get("value")
        if isinstance(geometry, dict):
            found = _centre(geometry)
            if found is not None:
                return found
    return None


def _centre(geometry: Mapping[str, Any]) -> tuple[float, float] | None:
    points: list[tuple[float, float]] = []

    def walk(node: Any) -> None:
        numbers = isinstance(node, list) and len(node) >= 2
        if numbers and all(isinstance(x, int | float) for x in node[:2]):
            points.append((float(node[0]), float(node[1])))
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(geometry.get("coordinates"))
    if not points:
        return None
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


@dataclass(frozen=True, slots=True)
class SharedParking:
    """Spaces of a private site opened to the public (and reservable) in weekly windows."""

    host: str
    spaces: int
    windows: WeeklyHours


@dataclass(frozen=True, slots=True)
class Site:
    """A place to park as guidance and reservations see it (read from its entity)."""

    id: str
    type: str
    name_ko: str
    name_en: str
    position: tuple[float, float] | None
    operator: str
    """"public" (공영), "private" (민영) or "" when the entity does not say."""
    total: int | None
    categories: tuple[str, ...]
    tariff: Mapping[str, Any] | None
    opening_hours: WeeklyHours | None
    """None: no hours published (treated as always open)."""
    resident_hours: WeeklyHours | None
    """When only resident-permit holders may park (거주자우선주차); None: never restricted."""
    shared: SharedParking | None
    parent: str
    """A ParkingGroup's lot (refParkingSite); '' otherwise."""
    transit: tuple[str, ...]
    """How a park-and-ride site connects onward: "subway:창동", "shuttle:seoul-arena"."""
    problems: tuple[str, ...]
    """What could not be read (bad hours, ...): shown to operators, never fatal."""


def read_site(entity: StoredEntity) -> Site:
    """Read a parking entity as a `Site`; unreadable extras become problems, not errors."""
    problems: list[str] = []
    categories = tuple(str(c) for c in _list(value(entity, "category")))
    operator = next((c for c in categories if c in ("public", "private")), "")
    hours = _hours(value(entity, "openingHours"), "openingHours", problems)
    permits = [str(p) for p in _list(value(entity, "requiredPermit"))]
    resident_hours = None
    if RESIDENT_PERMIT in permits or "forResidents" in categories:
        active = value(entity, "permitActiveHours")
        text = active.get(RESIDENT_PERMIT) if isinstance(active, dict) else active
        resident_hours = _hours(text or "00:00-24:00", "permitActiveHours", problems)
    tariff = value(entity, "tariff")
    name = value(entity, "name")
    alternate = value(entity, "alternateName")
    total = value(entity, "totalSpotNumber")
    parent = value(entity, "refParkingSite")
    return Site(
        id=entity.id,
        type=local_type(entity),
        name_ko=str(name or entity.id),
        name_en=str(alternate or name or entity.id),
        position=position(entity),
        operator=operator,
        total=total if isinstance(total, int) and total >= 0 else None,
        categories=categories,
        tariff=tariff if isinstance(tariff, dict) else None,
        opening_hours=hours,
        resident_hours=resident_hours,
        shared=_shared(value(entity, "sharedParking"), problems),
        parent=parent if isinstance(parent, str) else "",
        transit=tuple(str(t) for t in _list(value(entity, "transitConnection"))),
        problems=tuple(problems),
    )


def _list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]


def _hours(raw: Any, name: str, problems: list[str]) -> WeeklyHours | None:
    if raw in (None, ""):
        return None
    try:
        return parse_hours(str(raw))
    except HoursError as error:
        problems.append(f"{name}: {error}")
        return None


def _shared(raw: Any, problems: list[str]) -> SharedParking | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("sharedParking: must be an object with host, spaces and windows")
        return None
    spaces = raw.get("spaces")
    host = str(raw.get("host", "other"))
    if not isinstance(spaces, int) or spaces < 0:
        problems.append("sharedParking.spaces: must be a whole number of spaces, 0 or more")
        return None
    windows = _hours(raw.get("windows"), "sharedParking.windows", problems)
    if windows is None:
        problems.append("sharedParking.windows: needed, e.g. 'Mo-Fr 09:00-17:00'")
        return None
    return SharedParking(host if host in SHARED_HOSTS else "other", spaces, windows)


def observed_at(instance: Mapping[str, Any] | None) -> datetime | None:
    """Return when an attribute instance was observed (else last modified), if it says."""
    if instance is None:
        return None
    text = instance.get("observedAt") or instance.get("modifiedAt")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
