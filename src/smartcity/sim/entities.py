"""Turn a district and its generated assets into NGSI-LD entities of Smart Data Models types.

Names are Korean in `name` and English in `alternateName`; `areaServed` is the id of the zone
(administrative dong) the thing stands in, and `source` tells curated places from generated ones.
Dynamic state (free spots, filling levels, lamp power) starts at a plausible value drawn from the
seed; the simulator and real devices take it from there.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from typing import Any

from smartcity.sim.generate import Asset
from smartcity.sim.geodesy import rounded
from smartcity.sim.model import District, Place
from smartcity.sim.parking_details import detail_attributes

CHANGDONG_CONTEXT_URL = "urn:smartcity:context:changdong"
APPROXIMATE = "Coordinates approximate."
COMPASS = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")
ROAD_CLASSES = {
    "motorway": "motorway",
    "motorway_link": "motorway",
    "trunk": "trunk",
    "trunk_link": "trunk",
    "primary": "primary",
    "primary_link": "primary",
    "secondary": "secondary",
    "secondary_link": "secondary",
    "tertiary": "tertiary",
    "tertiary_link": "tertiary",
    "residential": "residential",
    "living_street": "residential",
    "service": "service",
}

Entity = dict[str, Any]


def prop(value: Any) -> dict[str, Any]:
    """Return a normalized NGSI-LD Property."""
    return {"type": "Property", "value": value}


def geo(geometry: dict[str, Any]) -> dict[str, Any]:
    """Return a normalized NGSI-LD GeoProperty."""
    return {"type": "GeoProperty", "value": geometry}


def rel(target: str) -> dict[str, Any]:
    """Return a normalized NGSI-LD Relationship."""
    return {"type": "Relationship", "object": target}


def point(position: tuple[float, float]) -> dict[str, Any]:
    """Return a GeoJSON Point at a rounded position."""
    return {"type": "Point", "coordinates": list(rounded(position))}


def urn(entity_type: str, local_id: str) -> str:
    """Return the entity id of a thing of a type."""
    return f"urn:ngsi-ld:{entity_type}:{local_id}"


def slug(text: str) -> str:
    """Return a lowercase id fragment for a name ("Dongbu Expressway" -> "dongbu-expressway")."""
    ascii_slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return ascii_slug or "name-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _entity(entity_type: str, local_id: str, **attributes: Any) -> Entity:
    return {
        "@context": CHANGDONG_CONTEXT_URL,
        "id": urn(entity_type, local_id),
        "type": entity_type,
        **attributes,
    }


def _named(name_ko: str, name_en: str, description: str = "") -> dict[str, Any]:
    named = {"name": prop(name_ko), "alternateName": prop(name_en)}
    if description:
        named["description"] = prop(description)
    return named


def place_entity(district: District, place: Place) -> Entity:
    """Return the entity of a curated place: TransportStation or PointOfInterest."""
    description = f"{place.description} {APPROXIMATE}".strip()
    zone = district.zone_at(place.anchor)
    common = {
        **_named(place.name_ko, place.name_en, description),
        "location": geo(place.geometry),
        "source": prop(f"district:{district.id}"),
    }
    if zone is not None:
        common["areaServed"] = prop(zone.id)
    if place.kind == "station":
        kinds = place.extra.get("station_type", ["rail"])
        return _entity("TransportStation", place.id, stationType=prop(kinds), **common)
    extra = {}
    if isinstance(place.extra.get("capacity"), int):
        extra["capacity"] = prop(place.extra["capacity"])
    return _entity("PointOfInterest", place.id, category=prop([place.kind]), **common, **extra)


def parking_entities(district: District, spots: list[Asset]) -> list[Entity]:
    """Return the OffStreetParking lots and the ParkingSpot of each sensed space."""
    rng = random.Random(f"{district.seed}:parking_state")
    lot_names = {lot.id: lot.name_ko for lot in district.parking}
    free_by_lot: dict[str, int] = {}
    entities = []
    for spot in spots:
        lot_id = str(spot.properties["lot"])
        free = spot.properties["status"] == "free"
        free_by_lot[lot_id] = free_by_lot.get(lot_id, 0) + int(free)
        entities.append(
            _entity(
                "ParkingSpot",
                spot.id,
                name=prop(f"{lot_names[lot_id]} {spot.properties['number']}번"),
                status=prop(spot.properties["status"]),
                category=prop(["offStreet"]),
                refParkingSite=rel(urn("OffStreetParking", lot_id)),
                location=geo(point(spot.position)),
                areaServed=prop(spot.zone),
                source=prop(f"district:{district.id}:generated"),
            )
        )
    lots = []
    for lot in district.parking:
        zone = district.zone_at(lot.position)
        available = free_by_lot.get(lot.id, round(lot.total_spots * rng.uniform(0.15, 0.6)))
        lots.append(
            _entity(
                "OffStreetParking",
                lot.id,
                **_named(lot.name_ko, lot.name_en, APPROXIMATE),
                category=prop(list(lot.category)),
                layout=prop([lot.layout]),
                allowedVehicleType=prop(["car"]),
                totalSpotNumber=prop(lot.total_spots),
                availableSpotNumber=prop(available),
                occupancyDetectionType=prop(
                    ["singleSpaceDetection"] if lot.spot_sensors else ["balancing"]
                ),
                location=geo(point(lot.position)),
                **({"areaServed": prop(zone.id)} if zone else {}),
                source=prop(f"district:{district.id}"),
                **_details(district, district_lot_details(district, lot.id)),
            )
        )
    return lots + _detail_sites(district) + entities


def district_lot_details(district: District, lot_id: str) -> dict[str, Any]:
    """Return what the district's parking details say of one lot (empty if nothing)."""
    details = district.parking_details
    return {} if details is None else details.lots.get(lot_id, {})


def _details(district: District, raw: dict[str, Any]) -> dict[str, Any]:
    if district.parking_details is None or not raw:
        return {}
    return detail_attributes(district.parking_details, raw)


def _detail_sites(district: District) -> list[Entity]:
    """Return the shared-parking sites and resident-priority zones of the parking details."""
    details = district.parking_details
    if details is None:
        return []
    sites = []
    for raw in details.sites:
        position = (float(raw["position"][0]), float(raw["position"][1]))
        zone = district.zone_at(position)
        sites.append(
            _entity(
                raw["type"],
                raw["id"],
                **_named(raw["name_ko"], raw["name_en"], "Invented site for the demo."),
                category=prop(list(raw.get("category", []))),
                allowedVehicleType=prop(["car"]),
                totalSpotNumber=prop(raw["total"]),
                location=geo(point(position)),
                **({"areaServed": prop(zone.id)} if zone else {}),
                source=prop(f"district:{district.id}"),
                **detail_attributes(details, raw),
            )
        )
    return sites


def road_entities(district: District) -> list[Entity]:
    """Return a Road per road name and a RoadSegment per link of the road graph."""
    segments = []
    roads: dict[str, list[Any]] = {}
    for link in district.links:
        road_id = f"{district.id}-{slug((link.name_en or link.name_ko).split(' (')[0])}"
        roads.setdefault(road_id, []).append(link)
        category = (["oneway"] if link.oneway else []) + (
            ["link"] if link.road_class.endswith("_link") else []
        )
        segment = _entity(
            "RoadSegment",
            f"{district.id}-{link.id}",
            **_named(link.name_ko, link.name_en),
            refRoad=rel(urn("Road", road_id)),
            startPoint=geo(point(link.points[0])),
            endPoint=geo(point(link.points[-1])),
            allowedVehicleType=prop(["anyVehicle"]),
            totalLaneNumber=prop(link.lanes * (1 if link.oneway else 2)),
            laneUsage=prop(["forward"] if link.oneway else ["forward", "backward"]),
            maximumAllowedSpeed=prop(link.speed_limit),
            length=prop(round(link.length, 1)),
            location=geo(
                {"type": "LineString", "coordinates": [list(rounded(p)) for p in link.points]}
            ),
            source=prop(f"district:{district.id}"),
        )
        if category:
            segment["category"] = prop(category)
        segments.append(segment)
    result = []
    for road_id, links in roads.items():
        first = links[0]
        result.append(
            _entity(
                "Road",
                road_id,
                **_named(first.name_ko.split(" (")[0], first.name_en.split(" (")[0]),
                roadClass=prop(ROAD_CLASSES.get(first.road_class, "unclassified")),
                refRoadSegment=prop([urn("RoadSegment", f"{district.id}-{x.id}") for x in links]),
                length=prop(round(sum(x.length for x in links), 1)),
                source=prop(f"district:{district.id}"),
            )
        )
    return result + segments


def _facing(degrees: float) -> str:
    return COMPASS[int(((degrees % 360) + 22.5) // 45) % 8]


def asset_entity(district: District, asset: Asset, number: int) -> Entity:
    """Return the entity of one generated asset."""
    p = asset.properties
    zone = next(z for z in district.zones if z.id == asset.zone)
    base = {
        "location": geo(point(asset.position)),
        "areaServed": prop(asset.zone),
        "source": prop(f"district:{district.id}:generated"),
    }
    serial = asset.id.upper()
    if asset.kind == "cctv_cameras":
        purpose = {"TRAFFIC": "교통", "ANPR/LPR": "번호판 인식"}.get(p["usage"], "방범")
        return _entity(
            "Camera",
            asset.id,
            name=prop(f"{zone.name_ko} {purpose} CCTV {number:03d}"),
            cameraName=prop(f"{zone.name_ko} {purpose} CCTV {number:03d}"),
            cameraNum=prop(number),
            cameraUsage=prop(p["usage"]),
            cameraType=prop(p["camera_type"]),
            cameraOrientation=prop({"comments": f"facing {_facing(p['view'])} ({p['view']}°)"}),
            viewDirection=prop(p["view"]),
            # The district has no video system: the operations center serves generated stills.
            streamURL=prop(f"demo:{asset.id}"),
            on=prop(True),
            **base,
        )
    if asset.kind == "streetlights":
        return _entity(
            "Streetlight",
            asset.id,
            name=prop(f"{zone.name_ko} 가로등 {number:04d}"),
            status=prop("ok"),
            powerState=prop("off"),
            locationCategory=prop("road"),
            lanternHeight=prop(p["height"]),
            streetPoleNum=prop(serial),
            refRoadSegment=rel(urn("RoadSegment", f"{district.id}-{p['link']}")),
            **base,
        )
    if asset.kind == "security_lights":
        place = next(x for x in district.places if x.id == p["place"])
        return _entity(
            "Streetlight",
            asset.id,
            name=prop(f"{place.name_ko} 보안등 {number:03d}"),
            description=prop(f"Security light by camera {p['camera']} in {place.name_ko}"),
            status=prop("ok"),
            powerState=prop("off"),
            locationCategory=prop("pedestrianPath"),
            lanternHeight=prop(p["height"]),
            streetPoleNum=prop(serial),
            **base,
        )
    if asset.kind == "waste_bins":
        complex_place = next(x for x in district.places if x.id == p["complex"])
        return _entity(
            "WasteContainer",
            asset.id,
            name=prop(f"{complex_place.name_ko} 음식물 종량기 {p['number']}호"),
            description=prop("RFID food-waste bin: residents tag a card and pay by weight."),
            category=prop(["fixed"]),
            storedWasteKind=prop("organic"),
            storedWasteOrigin=prop("household"),
            status=prop("ok"),
            fillingLevel=prop(0.0),
            cargoWeight=prop(0.0),
            binCapacity=prop(60.0),
            serialNumber=prop(serial),
            **base,
        )
    if asset.kind == "points_of_interest":
        return _entity(
            "PointOfInterest",
            asset.id,
            **_named(p["name_ko"], p["name_en"], "Invented name, generated for the demo."),
            category=prop(p["category"]),
            **base,
        )
    device = {
        "traffic_detectors": (
            "차량검지기",
            ["trafficFlow", "speed", "occupancy"],
            "Vehicle loop detector",
        ),
        "environment_sensors": (
            "대기질·소음 센서",
            ["airPollution", "noiseLevel", "temperature", "humidity"],
            "Air quality and noise sensor",
        ),
        "beacons": ("비콘", ["location"], "Bluetooth beacon for wayfinding and crowd counts"),
    }
    label_ko, measured, label_en = device[asset.kind]
    entity = _entity(
        "Device",
        asset.id,
        **_named(f"{zone.name_ko} {label_ko} {number:03d}", f"{label_en} {number:03d}"),
        category=prop(["sensor"]),
        controlledProperty=prop(measured),
        deviceState=prop("ok"),
        serialNumber=prop(serial),
        **base,
    )
    if asset.kind == "traffic_detectors":
        link_id, way = str(p["segment"]).rsplit("-", 1)
        entity["refRoadSegment"] = rel(urn("RoadSegment", f"{district.id}-{link_id}"))
        entity["roadDirection"] = prop(way)
    return entity


def district_entities(district: District, assets: Iterable[Asset]) -> list[Entity]:
    """Return every entity of the district: places, roads, parking, then the generated assets."""
    assets = list(assets)
    spots = [a for a in assets if a.kind == "parking_spots"]
    numbers: dict[str, int] = {}
    generated = []
    for asset in assets:
        if asset.kind == "parking_spots":
            continue
        numbers[asset.kind] = numbers.get(asset.kind, 0) + 1
        generated.append(asset_entity(district, asset, numbers[asset.kind]))
    return [
        *(place_entity(district, place) for place in district.places),
        *road_entities(district),
        *parking_entities(district, spots),
        *generated,
    ]
