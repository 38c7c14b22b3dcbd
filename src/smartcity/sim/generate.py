"""Place a district's many devices and assets deterministically from its seed.

Each kind of asset draws from its own random stream (seeded with the district seed and the kind),
so changing the count of one kind leaves the others where they were. Nothing depends on dict or
set order or on the hash seed: the same district files and seed give the same assets, and
`assets_geojson` the same bytes.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import Point

from smartcity.sim.geodesy import Position, bearing, moved, point_along, rounded
from smartcity.sim.model import District, DistrictError, Place, polygon_of
from smartcity.sim.poi_names import invent_point_of_interest
from smartcity.sim.roads import RoadGraph

SHORT_OF = {
    "cctv_cameras": "the zones must cover the roads",
    "traffic_detectors": "they need main roads (motorway, primary, secondary, tertiary)",
    "streetlights": "the zones must cover the roads",
    "waste_bins": "they need apartment places (kind: apartment) inside the zones",
    "environment_sensors": "the zones must cover the roads",
    "beacons": "they need landmark, station or culture places inside the zones",
    "points_of_interest": "they need stations, markets or shops inside the zones",
}
"""Why a kind of asset could come short of its count, and what to change."""

MAIN_ROAD_CLASSES = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})


@dataclass(frozen=True, slots=True)
class Asset:
    """One generated device or asset: where it is and what it is."""

    kind: str
    id: str
    position: Position
    zone: str
    properties: dict[str, Any] = field(default_factory=dict)


class _Placer:
    """Collects the assets of one kind, each rounded and given its zone and a numbered id."""

    def __init__(self, district: District, kind: str, short: str) -> None:
        self.district = district
        self.kind = kind
        self.short = short
        self.random = random.Random(f"{district.seed}:{kind}")
        self.assets: list[Asset] = []

    def fits(self, position: Position) -> bool:
        return self.district.zone_at(rounded(position)) is not None

    def add(self, position: Position, **properties: Any) -> bool:
        """Add an asset at a position; refuse (False) a position outside every zone."""
        position = rounded(position)
        zone = self.district.zone_at(position)
        if zone is None:
            return False
        number = len(self.assets) + 1
        identifier = f"{self.district.id}-{self.short}-{number:04d}"
        self.assets.append(Asset(self.kind, identifier, position, zone.id, properties))
        return True


def shares(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into whole shares proportional to `weights` (largest remainder)."""
    weight_sum = sum(weights)
    if total <= 0 or weight_sum <= 0:
        return [0] * len(weights)
    exact = [total * w / weight_sum for w in weights]
    result = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - result[i]), i))
    for i in order[: total - sum(result)]:
        result[i] += 1
    return result


def _near(rng: random.Random, anchor: Position, radius: float) -> Position:
    """Return a random position uniformly within `radius` metres of an anchor."""
    return moved(anchor, rng.uniform(0, 360), radius * rng.random() ** 0.5)


def _inside(rng: random.Random, place: Place) -> Position:
    """Return a random position inside a polygon place (its anchor for other shapes)."""
    if place.geometry["type"] != "Polygon":
        return _near(rng, place.anchor, 25.0)
    polygon = polygon_of(place.geometry)
    west, south, east, north = polygon.bounds
    for _ in range(200):
        candidate = (rng.uniform(west, east), rng.uniform(south, north))
        if polygon.contains(Point(candidate)):
            return candidate
    return place.anchor


def _fill_along_roads(
    placer: _Placer, graph: RoadGraph, count: int, make: Callable[[Position, float, str], None]
) -> None:
    """Add assets at random points of the road links (weighted by length) until `count`."""
    links = graph.district.links
    if not links:
        raise DistrictError(f"cannot place {placer.kind}: the district has no road links")
    lengths = [link.length for link in links]
    attempts = 0
    while len(placer.assets) < count and attempts < count * 20:
        attempts += 1
        link = placer.random.choices(links, weights=lengths)[0]
        position, heading = point_along(link.points, placer.random.uniform(0, link.length))
        side = placer.random.choice((90.0, -90.0))
        position = moved(position, heading + side, 3.5 * link.lanes + 2.0)
        if placer.fits(position):
            make(position, heading, link.id)


def cameras(district: District, graph: RoadGraph) -> list[Asset]:
    """Place CCTV at junction approaches, schools, stations, markets, parks, ramps, streets."""
    target = district.targets["cctv_cameras"]
    placer = _Placer(district, "cctv_cameras", "cctv")

    def add(position: Position, view: float, usage: str, camera_type: str, where: str) -> None:
        if len(placer.assets) < target:
            placer.add(
                position, usage=usage, camera_type=camera_type, view=round(view % 360, 1), at=where
            )

    for node in district.nodes.values():
        if not node.signalised:
            continue
        for neighbour in sorted(set(graph.graph.predecessors(node.id))):
            approach = bearing(node.position, district.nodes[neighbour].position)
            spot = moved(node.position, approach, 12.0)
            add(spot, approach, "TRAFFIC", "FIXED", node.id)
    for place in district.places_of("school", "station", "market", "park", "landmark"):
        for _ in range({"station": 4, "landmark": 4, "park": 3}.get(place.kind, 2)):
            if place.kind == "station":
                position = _near(placer.random, place.anchor, 60.0)
            else:
                position = _inside(placer.random, place)
            add(position, placer.random.uniform(0, 360), "SURVEILLANCE", "DOME", place.id)
    for link in district.links:
        if link.road_class == "motorway_link":
            position, heading = point_along(link.points, link.length / 2)
            add(position, heading + 180, "ANPR/LPR", "BULLET", link.id)

    def along(position: Position, heading: float, link_id: str) -> None:
        view = heading + placer.random.choice((0.0, 180.0)) + placer.random.uniform(-30, 30)
        add(position, view, "SURVEILLANCE", placer.random.choice(("PTZ", "DOME")), link_id)

    _fill_along_roads(placer, graph, target, along)
    return placer.assets


def traffic_detectors(district: District, graph: RoadGraph) -> list[Asset]:
    """Place loop detectors on the main roads, spread over each direction by length."""
    placer = _Placer(district, "traffic_detectors", "detector")
    directed = [d for d in graph.directed.values() if d.link.road_class in MAIN_ROAD_CLASSES]
    counts = shares(district.targets["traffic_detectors"], [d.length for d in directed])
    for link, count in zip(directed, counts, strict=True):
        for index in range(count):
            where, heading = point_along(link.points, link.length * (index + 0.5) / count)
            position = moved(where, heading + 90.0, 1.75 * link.link.lanes)
            if not placer.add(position, segment=link.id, lanes=link.link.lanes):
                placer.add(where, segment=link.id, lanes=link.link.lanes)
    return placer.assets


def streetlights(district: District) -> list[Asset]:
    """Place streetlights at an even spacing along every road link, alternating sides."""
    placer = _Placer(district, "streetlights", "streetlight")
    target = district.targets["streetlights"]
    total = sum(link.length for link in district.links)
    if target == 0 or total == 0:
        return []
    spacing = total / target
    offset = spacing / 2
    for link in district.links:
        height = 12.0 if link.road_class in MAIN_ROAD_CLASSES else 8.0
        while offset < link.length and len(placer.assets) < target:
            where, heading = point_along(link.points, offset)
            side = 90.0 if len(placer.assets) % 2 == 0 else -90.0
            position = moved(where, heading + side, 3.5 * link.lanes + 1.5)
            if not placer.add(position, link=link.id, height=height, spacing=round(spacing, 1)):
                placer.add(where, link=link.id, height=height, spacing=round(spacing, 1))
            offset += spacing
        offset -= link.length
    return placer.assets


def waste_bins(district: District) -> list[Asset]:
    """Place RFID food-waste weighing bins in apartment complexes, by households."""
    placer = _Placer(district, "waste_bins", "foodwaste")
    complexes = district.places_of("apartment")
    counts = shares(district.targets["waste_bins"], [p.extra["households"] for p in complexes])
    for place, count in zip(complexes, counts, strict=True):
        for index in range(count):
            placer.add(_inside(placer.random, place), complex=place.id, number=index + 1)
    return placer.assets


def environment_sensors(district: District, graph: RoadGraph) -> list[Asset]:
    """Place air-quality and noise sensors at stations, schools, markets, then roadsides."""
    placer = _Placer(district, "environment_sensors", "airnoise")
    target = district.targets["environment_sensors"]
    kinds = ("station", "landmark", "school", "market", "park", "office", "development")
    for place in district.places_of(*kinds):
        if len(placer.assets) < target:
            placer.add(_near(placer.random, place.anchor, 30.0), at=place.id)

    def roadside(position: Position, heading: float, link_id: str) -> None:
        placer.add(position, at=link_id)

    _fill_along_roads(placer, graph, target, roadside)
    return placer.assets


def beacons(district: District) -> list[Asset]:
    """Place Bluetooth beacons (wayfinding, crowd counts) mostly around landmarks."""
    placer = _Placer(district, "beacons", "beacon")
    anchors = district.places_of("landmark", "station", "culture")
    weights = [{"landmark": 5.0, "station": 2.0}.get(p.kind, 1.0) for p in anchors]
    for place, count in zip(anchors, shares(district.targets["beacons"], weights), strict=True):
        if place.geometry["type"] == "Polygon":
            ring = polygon_of(place.geometry).exterior
            for index in range(count):
                point = ring.interpolate(ring.length * index / count)
                placer.add((float(point.x), float(point.y)), at=place.id)
        else:
            for _ in range(count):
                placer.add(_near(placer.random, place.anchor, 60.0), at=place.id)
    return placer.assets


def points_of_interest(district: District) -> list[Asset]:
    """Place shops, restaurants and culture spots near stations and markets (invented names)."""
    placer = _Placer(district, "points_of_interest", "poi")
    target = district.targets["points_of_interest"]
    anchors = district.places_of("station", "market", "shopping", "culture")
    if target and not anchors:
        raise DistrictError("points of interest need stations, markets or shops to gather around")
    taken: set[str] = set()
    attempts = 0
    while len(placer.assets) < target and attempts < target * 20:
        attempts += 1
        anchor = anchors[placer.random.randrange(len(anchors))]
        position = _near(placer.random, anchor.anchor, 250.0)
        if not placer.fits(position):
            continue
        invented = invent_point_of_interest(placer.random, anchor, taken)
        placer.add(position, **invented)
    return placer.assets


def parking_spots(district: District) -> list[Asset]:
    """Place one sensed spot per space of each lot with spot sensors, in rows of ten."""
    placer = _Placer(district, "parking_spots", "spot")
    for lot in district.parking:
        if not lot.spot_sensors:
            continue
        for index in range(lot.total_spots):
            row, column = divmod(index, 10)
            east = moved(lot.position, 90.0, (column - 4.5) * 2.5)
            position = moved(east, 180.0, row * 6.0)
            status = "occupied" if placer.random.random() < 0.6 else "free"
            placer.add(position, lot=lot.id, number=index + 1, status=status)
    return placer.assets


SECURITY_LIGHT_DISTANCE = (5.0, 15.0)
"""Metres from its camera within which a security light stands."""


def security_lights(district: District, placed_cameras: Sequence[Asset]) -> list[Asset]:
    """Place a security light (보안등) beside each surveillance camera inside a place.

    Markets, parks, schools and stations light their own lanes, which the road graph (the
    district's streets) does not carry: without these, a camera inside a market has no lamp
    within 50 m for a rule to brighten at night.
    """
    placer = _Placer(district, "security_lights", "securitylight")
    places = {place.id for place in district.places}
    low, high = SECURITY_LIGHT_DISTANCE
    for camera in placed_cameras:
        if camera.properties.get("usage") != "SURVEILLANCE":
            continue
        if camera.properties.get("at") not in places:
            continue
        for _ in range(8):  # a spot inside the district's zones
            spot = moved(
                camera.position, placer.random.uniform(0, 360), placer.random.uniform(low, high)
            )
            if placer.add(spot, height=6.0, camera=camera.id, place=camera.properties["at"]):
                break
    return placer.assets


def generate_assets(district: District, graph: RoadGraph | None = None) -> list[Asset]:
    """Return every generated asset of the district, in a stable order."""
    graph = graph or RoadGraph(district)
    placed_cameras = cameras(district, graph)
    assets = [
        *placed_cameras,
        *traffic_detectors(district, graph),
        *streetlights(district),
        *waste_bins(district),
        *environment_sensors(district, graph),
        *beacons(district),
        *points_of_interest(district),
        *parking_spots(district),
        *security_lights(district, placed_cameras),
    ]
    placed = Counter(asset.kind for asset in assets)
    for kind, target in district.targets.items():
        if placed[kind] < target:
            raise DistrictError(
                f"placed only {placed[kind]} of the {target} {kind.replace('_', ' ')} that "
                f"district.yaml asks for: {SHORT_OF[kind]}; or lower generate.{kind}"
            )
    return assets


def assets_geojson(assets: Sequence[Asset]) -> bytes:
    """Return the assets as a GeoJSON FeatureCollection, byte-for-byte stable."""
    features = [
        {
            "type": "Feature",
            "id": asset.id,
            "geometry": {"type": "Point", "coordinates": list(asset.position)},
            "properties": {"kind": asset.kind, "zone": asset.zone, **asset.properties},
        }
        for asset in assets
    ]
    document = {"type": "FeatureCollection", "features": features}
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def read_assets(path: Path) -> list[Asset]:
    """Read assets written by `assets_geojson` (and perhaps edited since) back."""
    try:
        document = orjson.loads(path.read_bytes())
        assets = []
        for feature in document["features"]:
            properties = dict(feature["properties"])
            longitude, latitude = feature["geometry"]["coordinates"]
            kind, zone = properties.pop("kind"), properties.pop("zone")
            assets.append(Asset(kind, feature["id"], (longitude, latitude), zone, properties))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DistrictError(
            f"{path} is not an asset file (a GeoJSON FeatureCollection of Points, each with "
            f"an id and properties kind and zone): {error!r}"
        ) from error
    return assets
