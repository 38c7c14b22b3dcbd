"""The district's fire and disaster assets as entities: buildings with their fire-safety class,
fire stations, hydrants, traffic signals (with their controllers) and water-level stations.

Read from the district folder's optional `safety.yaml` (buildings are derived from the curated
places it names by kind, hydrants are laid along the roads by rule, signals stand at the
signalised road nodes), so the same file gives the same entities. Types: Smart Data Models
`Building` and `FloodMonitoring`; the platform's own `FireStation`, `FireHydrant` and
`TrafficSignal` (Smart Data Models has none; terms in the Changdong @context, docs/district.md).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import yaml

from smartcity.sim.entities import _entity, _named, geo, point, prop, rel
from smartcity.sim.geodesy import Position, distance
from smartcity.sim.model import District, DistrictError

FILE = "safety.yaml"
NO_HYDRANTS = frozenset({"motorway", "motorway_link", "trunk"})
ENFORCED = frozenset({"residential", "tertiary"})


def read_safety(district: District) -> dict[str, Any]:
    """Return the district's safety.yaml (empty when it has none)."""
    path = district.root / FILE
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise DistrictError(f"{path}: expected a mapping of fire_stations, buildings, ...")
    return document


def _position(raw: Any, where: str) -> Position:
    if not isinstance(raw, list) or len(raw) != 2:
        raise DistrictError(f"{FILE}: {where} needs position: [longitude, latitude]")
    return float(raw[0]), float(raw[1])


def _zone(district: District, position: Position) -> dict[str, Any]:
    zone = district.zone_at(position)
    return {"areaServed": prop(zone.id)} if zone else {}


def building_entities(district: District, safety: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a Building per curated place of a kind with building defaults."""
    defaults = safety.get("building_defaults") or {}
    overrides = safety.get("building_overrides") or {}
    made = []
    for place in district.places:
        if place.kind not in defaults:
            continue
        spec = {**defaults[place.kind], **overrides.get(place.id, {})}
        grade = str(spec.get("grade", ""))
        if grade not in ("special", "1", "2", "3"):
            raise DistrictError(f"{FILE}: {place.id} has grade {grade!r}; use special, 1, 2, 3")
        made.append(
            _entity(
                "Building",
                f"{district.id}-{place.id}",
                **_named(place.name_ko, place.name_en, "Fire data invented for the demo."),
                category=prop(list(spec.get("use", []))),
                fireRiskGrade=prop(grade),
                floorsAboveGround=prop(int(spec.get("floors", 1))),
                floorsBelowGround=prop(int(spec.get("basement", 0))),
                refPointOfInterest=rel(f"urn:ngsi-ld:PointOfInterest:{place.id}"),
                location=geo(point(place.anchor)),
                **_zone(district, place.anchor),
                source=prop(f"district:{district.id}"),
            )
        )
    return made


def station_entities(district: District, safety: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the fire stations."""
    made = []
    for raw in safety.get("fire_stations") or []:
        where = _position(raw.get("position"), f"fire station {raw.get('id')}")
        made.append(
            _entity(
                "FireStation",
                f"{district.id}-{raw['id']}",
                **_named(raw["name_ko"], raw["name_en"], "Position approximate."),
                category=prop(["fireStation"]),
                location=geo(point(where)),
                **_zone(district, where),
                source=prop(f"district:{district.id}"),
            )
        )
    return made


def hydrant_entities(district: District, safety: dict[str, Any]) -> list[dict[str, Any]]:
    """Return hydrants laid along the roads, one each `spacing` metres of every link."""
    rule = safety.get("hydrants") or {}
    spacing = float(rule.get("spacing", 0) or 0)
    if spacing <= 0:
        return []
    broken_every = int(rule.get("out_of_service_every", 0) or 0)
    made = []
    for link in district.links:
        if link.road_class in NO_HYDRANTS:
            continue
        for number, where in enumerate(_along(link.points, spacing), 1):
            local = f"{district.id}-{link.id}-{number}"
            digest = int(hashlib.sha256(local.encode()).hexdigest()[:8], 16)
            broken = broken_every > 0 and digest % broken_every == 0
            underground = link.road_class == "primary"
            made.append(
                _entity(
                    "FireHydrant",
                    local,
                    name=prop(f"{link.name_ko} 소화전 {number}"),
                    alternateName=prop(f"{link.name_en} hydrant {number}"),
                    hydrantType=prop("underground" if underground else "aboveGround"),
                    status=prop("outOfService" if broken else "ok"),
                    location=geo(point(where)),
                    **_zone(district, where),
                    source=prop(f"district:{district.id}:generated"),
                )
            )
    return made


def _along(points: tuple[Position, ...], spacing: float) -> list[Position]:
    """Return positions every `spacing` metres along a line, starting half a spacing in."""
    found = []
    target = spacing / 2
    walked = 0.0
    for a, b in itertools.pairwise(points):
        span = distance(a, b)
        while span > 0 and walked + span >= target:
            t = (target - walked) / span
            found.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
            target += spacing
        walked += span
    return found


def signal_entities(district: District) -> list[dict[str, Any]]:
    """Return a TrafficSignal per signalised road node, naming its controller device."""
    made = []
    for node in district.nodes.values():
        if not node.signalised:
            continue
        name_ko = node.name_ko or node.id
        made.append(
            _entity(
                "TrafficSignal",
                f"{district.id}-{node.id}",
                name=prop(f"{name_ko} 신호기"),
                alternateName=prop(f"{node.name_en or node.id} signal"),
                refDevice=rel(f"urn:ngsi-ld:Device:{signal_device_id(district, node.id)}"),
                location=geo(point(node.position)),
                **_zone(district, node.position),
                source=prop(f"district:{district.id}"),
            )
        )
    return made


def enforcement_points(district: District) -> list[tuple[str, str, Position]]:
    """Return the illegal-parking enforcement cameras: (id, road link id, position), one at
    the middle of every residential and tertiary street (where a parked car blocks a lane)."""
    points = []
    for link in district.links:
        if link.road_class not in ENFORCED:
            continue
        half = _along(link.points, link.length)
        where = half[0] if half else link.points[0]
        points.append((f"{district.id}-{link.id}-enforcement", link.id, where))
    return points


def flood_gauges(district: District) -> list[tuple[str, Position, dict[str, float]]]:
    """Return the water-level stations' gauges: (local id, position, dry, alert and danger
    levels)."""
    gauges = []
    for raw in read_safety(district).get("flood_stations") or []:
        where = _position(raw.get("position"), f"flood station {raw.get('id')}")
        levels = {
            "dry": float(raw.get("current_level", 0.0)),
            "alert": float(raw["alert_level"]),
            "danger": float(raw["danger_level"]),
        }
        gauges.append((f"{district.id}-{raw['id']}", where, levels))
    return gauges


def weather_stations(district: District) -> list[tuple[str, Position, dict[str, str]]]:
    """Return the automatic weather stations: (local id, position, names)."""
    stations = []
    for raw in read_safety(district).get("weather_stations") or []:
        where = _position(raw.get("position"), f"weather station {raw.get('id')}")
        names = {"name_ko": str(raw["name_ko"]), "name_en": str(raw["name_en"])}
        stations.append((f"{district.id}-{raw['id']}", where, names))
    return stations


def wearables(district: District) -> list[dict[str, Any]]:
    """Return the SOS wearables: id, home place, home position, kind, safe-zone radius, and the
    fictional registration of their wearer."""
    places = {place.id: place for place in district.places}
    found = []
    for raw in read_safety(district).get("wearables") or []:
        home = places.get(str(raw.get("home")))
        if home is None:
            raise DistrictError(f"{FILE}: wearable {raw.get('id')} names no place as its home")
        found.append(
            {
                "id": f"{district.id}-{raw['id']}",
                "home": home.id,
                "position": home.anchor,
                "kind": str(raw["kind"]),
                "safe_zone": float(raw.get("safe_zone", 250)),
                "alias": str(raw["alias"]),
                "guardian": str(raw["guardian"]),
                "phone": str(raw["phone"]),
            }
        )
    return found


def safe_zone(centre: Position, radius: float, sides: int = 24) -> dict[str, Any]:
    """Return a GeoJSON polygon of about `radius` metres around a position."""
    lat_step = radius / 111_195.0
    lon_step = lat_step / math.cos(math.radians(centre[1]))
    ring = [
        [
            round(centre[0] + lon_step * math.sin(2 * math.pi * k / sides), 6),
            round(centre[1] + lat_step * math.cos(2 * math.pi * k / sides), 6),
        ]
        for k in range(sides)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def signal_device_id(district: District, node_id: str) -> str:
    """Return the device id of the controller of the signal at a road node."""
    return f"{district.id}-signal-{node_id}"


def flood_entities(district: District, safety: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the water-level stations (FloodMonitoring)."""
    made = []
    for raw in safety.get("flood_stations") or []:
        where = _position(raw.get("position"), f"flood station {raw.get('id')}")
        current = float(raw.get("current_level", 0.0))
        alert, danger = float(raw["alert_level"]), float(raw["danger_level"])
        status = "danger" if current >= danger else "alert" if current >= alert else "normal"
        made.append(
            _entity(
                "FloodMonitoring",
                f"{district.id}-{raw['id']}",
                **_named(raw["name_ko"], raw["name_en"], "Levels invented for the demo."),
                stationID=prop(raw["id"]),
                referenceLevel=prop(float(raw.get("reference_level", 0.0))),
                alertLevel=prop(alert),
                dangerLevel=prop(danger),
                currentLevel=prop(current),
                floodLevelStatus=prop(status),
                location=geo(point(where)),
                **_zone(district, where),
                source=prop(f"district:{district.id}"),
            )
        )
    return made


def safety_entities(district: District) -> list[dict[str, Any]]:
    """Return every fire and disaster entity of a district."""
    safety = read_safety(district)
    if not safety:
        return []
    return [
        *station_entities(district, safety),
        *building_entities(district, safety),
        *hydrant_entities(district, safety),
        *signal_entities(district),
        *flood_entities(district, safety),
    ]
