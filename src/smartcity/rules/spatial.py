"""Where things are, for rules: entity positions, zones, grid cells and a grid index for "near".

Distances are measured on a local plane around the rule set's location (an equirectangular
projection): within a district of a few kilometres it is within 0.1% of the geodesic distance,
and it keeps "near" cheap enough to run on every change.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Final

import shapely
from shapely.geometry import shape

from smartcity.core.entity import StoredEntity
from smartcity.rules.names import NameMap

EARTH_RADIUS: Final = 6_371_008.8
Point = tuple[float, float]
_BAD_GEOMETRY = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    shapely.errors.ShapelyError,
)
"""What shapely raises for GeoJSON that is not a geometry (data from devices is not trusted)."""


class Plane:
    """A flat projection around an origin, in metres east and north."""

    def __init__(self, origin: Point) -> None:
        self.origin = origin
        self.x_scale = math.radians(1.0) * EARTH_RADIUS * math.cos(math.radians(origin[1]))
        self.y_scale = math.radians(1.0) * EARTH_RADIUS

    def xy(self, point: Point) -> tuple[float, float]:
        """Return a position in metres from the origin."""
        return (
            (point[0] - self.origin[0]) * self.x_scale,
            (point[1] - self.origin[1]) * self.y_scale,
        )

    def lonlat(self, x: float, y: float) -> Point:
        """Return the position of a point of the plane."""
        return (self.origin[0] + x / self.x_scale, self.origin[1] + y / self.y_scale)

    def distance(self, a: Point, b: Point) -> float:
        """Return the distance between two positions in metres."""
        return math.hypot((a[0] - b[0]) * self.x_scale, (a[1] - b[1]) * self.y_scale)


def safe_shape(geometry: Any) -> Any:
    """Return a GeoJSON geometry as a shapely one, None if it is not one (quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN coordinates warn in numpy
        try:
            return shape(geometry)
        except _BAD_GEOMETRY:
            return None


def geometry_point(geometry: Any) -> Point | None:
    """Return a representative position of a GeoJSON geometry (a Point's own, else a centroid)."""
    if not isinstance(geometry, dict):
        return None
    if geometry.get("type") == "Point":
        coordinates: Any = geometry.get("coordinates")
        if type(coordinates) in (list, tuple) and len(coordinates) >= 2:
            x, y = coordinates[0], coordinates[1]
            if type(x) is float and type(y) is float:  # most positions: compared unboxed
                if -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0:
                    return (x, y)
            elif (
                type(x) in (float, int)
                and type(y) in (float, int)
                and -180.0 <= x <= 180.0
                and -90.0 <= y <= 90.0
            ):
                return (float(x), float(y))
        return None
    made = safe_shape(geometry)
    if made is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            centroid = made.centroid
        except _BAD_GEOMETRY:
            return None
    if centroid.is_empty:
        return None
    x, y = float(centroid.x), float(centroid.y)
    return (x, y) if -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0 else None


def entity_point(entity: StoredEntity, names: NameMap, attribute: str = "location") -> Point | None:
    """Return where an entity is (its location, or another GeoProperty)."""
    iri = names.get(attribute)
    if iri is None:
        return None
    instances = entity.attrs.get(iri)
    if instances is None:
        return None
    for instance in instances:
        if instance.get("type") == "GeoProperty":
            point = geometry_point(instance.get("value"))
            if point is not None:
                return point
    return None


def entity_geometry(entity: StoredEntity, names: NameMap, attribute: str) -> Any:
    """Return a GeoProperty of an entity as a shapely geometry, None if it has none."""
    iri = names.get(attribute)
    for instance in entity.attrs.get(iri, ()) if iri else ():
        if instance.get("type") == "GeoProperty" and isinstance(instance.get("value"), dict):
            return safe_shape(instance["value"])
    return None


class _Zone:
    """One zone as `Zones.contains` tests it: its bounds, its prepared shape, its answers."""

    __slots__ = ("east", "known", "north", "shape", "south", "west")

    def __init__(self, geometry: Any) -> None:
        west, south, east, north = geometry.bounds  # (as floats: compiled, compared unboxed)
        self.west = float(west)
        self.south = float(south)
        self.east = float(east)
        self.north = float(north)
        self.shape = geometry
        self.known: dict[Point, bool] = {}
        """Answers by position (the position's own tuple: no key to make)."""


class Zones:
    """Named polygons, tested with a bounding-box check first, then the prepared geometry."""

    def __init__(self, geometries: dict[str, dict[str, Any]]) -> None:
        self.geojson = dict(geometries)
        self.shapes = {name: shape(geometry) for name, geometry in geometries.items()}
        for geometry in self.shapes.values():
            shapely.prepare(geometry)
        self.names = list(geometries)
        self._zones = {name: _Zone(geometry) for name, geometry in self.shapes.items()}
        """Each zone's test, found with one look-up."""

    def contains(self, name: str, point: Point) -> bool:
        """Tell whether a zone holds a position (on its edge counts).

        Answers are remembered: most things that report stand still (a detector, a camera).
        """
        x, y = point
        zone = self._zones[name]
        if x < zone.west or x > zone.east or y < zone.south or y > zone.north:
            return False
        known = zone.known
        found = known.get(point)
        if found is None:
            if len(known) > 100_000:
                known.clear()
            found = known[point] = bool(shapely.intersects_xy(zone.shape, x, y))
        return found

    def zone_of(self, point: Point, names: Iterable[str]) -> str | None:
        """Return the first of the zones that holds a position."""
        for name in names:
            if self.contains(name, point):
                return name
        return None


def valid_zone(geometry: Any) -> str | None:
    """Return what is wrong with a zone's geometry, None if it is a usable polygon."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return "a zone is a GeoJSON Polygon or MultiPolygon ({type: Polygon, coordinates: ...})"
    polygon = safe_shape(geometry)
    if polygon is None:
        return "not a usable polygon: coordinates are [[[lon, lat], ...]] with the ring closed"
    if polygon.is_empty or not polygon.is_valid:
        return "the polygon is empty or crosses itself; close the ring and keep it simple"
    return None


class GridIndex:
    """Positions of entities in square cells, so "near" looks only at the cells around."""

    def __init__(self, plane: Plane, cell: float = 100.0) -> None:
        self.plane = plane
        self.cell = cell
        self.cells: dict[tuple[int, int], dict[str, Point]] = {}
        self.where: dict[str, tuple[tuple[int, int], Point]] = {}

    def _cell(self, point: Point) -> tuple[int, int]:
        x, y = self.plane.xy(point)
        return (math.floor(x / self.cell), math.floor(y / self.cell))

    def put(self, entity_id: str, point: Point | None) -> None:
        """Place (or move, or with None remove) an entity."""
        old = self.where.get(entity_id)
        if old is not None and old[1] == point:
            return  # it did not move (most things that report stand still)
        self.where.pop(entity_id, None)
        if old is not None:
            bucket = self.cells.get(old[0])
            if bucket is not None:
                bucket.pop(entity_id, None)
                if not bucket:
                    del self.cells[old[0]]
        if point is not None:
            cell = self._cell(point)
            self.cells.setdefault(cell, {})[entity_id] = point
            self.where[entity_id] = (cell, point)

    def near(self, point: Point, metres: float) -> list[tuple[float, str]]:
        """Return (distance, id) of the entities within a distance, nearest first."""
        cx, cy = self._cell(point)
        reach = math.ceil(metres / self.cell)
        found = []
        distance = self.plane.distance
        for x in range(cx - reach, cx + reach + 1):
            for y in range(cy - reach, cy + reach + 1):
                for entity_id, where in self.cells.get((x, y), {}).items():
                    metres_away = distance(point, where)
                    if metres_away <= metres:
                        found.append((metres_away, entity_id))
        found.sort()
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.where))


def grid_cell(plane: Plane, point: Point, size: float) -> tuple[str, dict[str, Any]]:
    """Return the key of the grid cell that holds a position, and the cell as a GeoJSON polygon."""
    x, y = plane.xy(point)
    cx, cy = math.floor(x / size), math.floor(y / size)
    corners = [
        plane.lonlat(cx * size, cy * size),
        plane.lonlat((cx + 1) * size, cy * size),
        plane.lonlat((cx + 1) * size, (cy + 1) * size),
        plane.lonlat(cx * size, (cy + 1) * size),
    ]
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in [*corners, corners[0]]]
    return f"grid:{size:g}:{cx}:{cy}", {"type": "Polygon", "coordinates": [ring]}
