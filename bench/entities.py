"""Smart-Data-Models-shaped entities spread over Changdong, in five types of eight attributes.

Every entity is sent as plain JSON under the NGSI-LD core @context (no Link header), so the
broker expands the short names with the core context's default vocabulary; no remote @context.
The generator is deterministic: entity ``n`` of a type always lies at the same place, and its
values are a function of ``(type, n, round)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

Entity = dict[str, Any]

TYPES: tuple[str, ...] = (
    "OffStreetParking",
    "TrafficFlowObserved",
    "AirQualityObserved",
    "WasteContainer",
    "Streetlight",
)
WEST, EAST = 127.03, 127.08
SOUTH, NORTH = 37.63, 37.68
SPOT_VALUES = 1000  # availableSpotNumber is an integer in [0, SPOT_VALUES)
LOCALITIES = ("Chang-dong", "Banghak-dong", "Ssangmun-dong", "Dobong-dong", "Sanggye-dong")
BASE_TIME = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def entity_id(type_name: str, number: int) -> str:
    """Return the id of entity `number` of a type."""
    return f"urn:ngsi-ld:{type_name}:changdong-{number:06d}"


def place(type_name: str, number: int) -> tuple[float, float]:
    """Return the fixed (lon, lat) of an entity, uniform over the Changdong box."""
    rng = random.Random(f"place:{type_name}:{number}")
    return round(rng.uniform(WEST, EAST), 6), round(rng.uniform(SOUTH, NORTH), 6)


def _prop(value: Any, observed: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if observed is not None:
        attribute["observedAt"] = observed
    return attribute


def _datetime(moment: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": moment}}


def _rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _location(type_name: str, number: int) -> dict[str, Any]:
    lon, lat = place(type_name, number)
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _parking(number: int, rng: random.Random, at: str) -> Entity:
    total = rng.randint(50, 1500)
    return {
        "name": _prop(f"Changdong parking {number}"),
        "status": _prop(rng.choice(("open", "open", "open", "full", "closed"))),
        "availableSpotNumber": _prop(rng.randrange(SPOT_VALUES), at),
        "totalSpotNumber": _prop(total),
        "address": _prop(
            {
                "streetAddress": f"{rng.randint(1, 400)} Nohae-ro",
                "addressLocality": LOCALITIES[number % len(LOCALITIES)],
                "addressRegion": "Seoul",
                "postalCode": f"0{rng.randint(1300, 1499)}",
            }
        ),
        "dateObserved": _datetime(at),
        "refPointOfInterest": _rel("urn:ngsi-ld:PointOfInterest:seoul-arena"),
    }


def _traffic(number: int, rng: random.Random, at: str) -> Entity:
    return {
        "laneId": _prop(number % 4 + 1),
        "intensity": _prop(rng.randint(0, 2400), at),
        "averageVehicleSpeed": _prop(round(rng.uniform(5, 80), 1), at),
        "occupancy": _prop(round(rng.random(), 3), at),
        "congested": _prop(rng.random() < 0.2),
        "dateObserved": _datetime(at),
        "refRoadSegment": _rel(f"urn:ngsi-ld:RoadSegment:changdong-{number % 300:03d}"),
    }


def _air(number: int, rng: random.Random, at: str) -> Entity:
    pm10 = rng.randint(5, 150)
    return {
        "pm10": _prop(pm10, at),
        "pm25": _prop(round(pm10 * rng.uniform(0.3, 0.7), 1), at),
        "no2": _prop(round(rng.uniform(5, 80), 1), at),
        "temperature": _prop(round(rng.uniform(-10, 35), 1), at),
        "airQualityLevel": _prop("good" if pm10 < 30 else "moderate" if pm10 < 80 else "poor"),
        "dateObserved": _datetime(at),
        "refDevice": _rel(f"urn:ngsi-ld:Device:aq-{number:06d}"),
    }


def _waste(number: int, rng: random.Random, at: str) -> Entity:
    return {
        "fillingLevel": _prop(round(rng.random(), 2), at),
        "temperature": _prop(round(rng.uniform(-10, 35), 1), at),
        "status": _prop(rng.choice(("ok", "ok", "ok", "lidOpen", "dropped"))),
        "category": _prop(rng.choice(("residual", "recycling", "organic"))),
        "storedWasteCode": _prop(f"20 03 0{rng.randint(1, 9)}"),
        "dateObserved": _datetime(at),
        "refWasteContainerIsle": _rel(f"urn:ngsi-ld:WasteContainerIsle:cd-{number % 500:03d}"),
    }


def _streetlight(number: int, rng: random.Random, at: str) -> Entity:
    return {
        "powerState": _prop(rng.choice(("on", "off"))),
        "illuminanceLevel": _prop(round(rng.random(), 2), at),
        "lanternHeight": _prop(rng.choice((6, 8, 10, 12))),
        "status": _prop(rng.choice(("ok", "ok", "ok", "defectiveLamp"))),
        "circuit": _prop(f"C-{number % 120:03d}"),
        "dateObserved": _datetime(at),
        "refStreetlightGroup": _rel(f"urn:ngsi-ld:StreetlightGroup:cd-{number % 200:03d}"),
    }


_ATTRIBUTES: dict[str, Callable[[int, random.Random, str], Entity]] = {
    "OffStreetParking": _parking,
    "TrafficFlowObserved": _traffic,
    "AirQualityObserved": _air,
    "WasteContainer": _waste,
    "Streetlight": _streetlight,
}


def make_entity(type_name: str, number: int, round_number: int = 0) -> Entity:
    """Return entity `number` of a type as it reads in round `round_number`: 8 attributes."""
    rng = random.Random(f"{type_name}:{number}:{round_number}")
    at = (BASE_TIME + timedelta(minutes=round_number, seconds=number % 60)).isoformat()
    at = at.replace("+00:00", "Z")
    return {
        "id": entity_id(type_name, number),
        "type": type_name,
        **_ATTRIBUTES[type_name](number, rng, at),
        "location": _location(type_name, number),
    }


def mixed_keys(count: int) -> list[tuple[str, int]]:
    """Return `count` (type, number) keys, the types in turn (entity i has type i mod 5)."""
    return [(TYPES[i % len(TYPES)], i // len(TYPES)) for i in range(count)]


def batch_bodies(
    keys: Sequence[tuple[str, int]], round_number: int, batch_size: int
) -> list[bytes]:
    """Return the JSON bodies of upsert batches covering `keys`, in order."""
    bodies = []
    for start in range(0, len(keys), batch_size):
        batch = [make_entity(t, n, round_number) for t, n in keys[start : start + batch_size]]
        bodies.append(orjson.dumps(batch))
    return bodies
