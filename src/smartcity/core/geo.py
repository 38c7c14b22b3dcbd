"""Parse and evaluate NGSI-LD geo-queries (ETSI GS CIM 009 clause 4.10).

Geometries are GeoJSON in WGS84 longitude/latitude. The topological relations (within, contains,
intersects, equals, disjoint, overlaps) follow shapely on the plane of longitude and latitude, as
GeoJSON does. Distances for ``near`` are in metres on the WGS84 ellipsoid: geodesic between two
points, otherwise measured in an azimuthal-equidistant projection centred on the reference
geometry (exact from the centre; off by a few parts per million 50 km from it).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import shapely
from pyproj import Geod, Transformer
from pyproj.exceptions import ProjError
from shapely.errors import ShapelyError
from shapely.geometry import shape

from smartcity.core.errors import BadRequestData

BoundingBox = tuple[float, float, float, float]

GEOMETRY_TYPES: Final = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
)
GEORELS: Final = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")

_WGS84: Final = Geod(ellps="WGS84")
# Below every radius of curvature of the WGS84 ellipsoid (the least, 6 335 439 m, is the
# meridian's at the equator), so a circle of it in degrees encloses the ellipsoid's circle.
_EARTH_RADIUS_LOWER_BOUND: Final = 6_335_000.0
_BOX_MARGIN: Final = 1.01
_DISTANCE = re.compile(r"(maxDistance|minDistance)==(.*)")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _Invalid(ValueError):
    """A geometry is not acceptable; the message says why."""


@dataclass(frozen=True)
class GeoQuery:
    """One geo-query: a relation to a reference geometry, tested on one GeoProperty."""

    georel: str
    geometry: dict[str, Any]
    geoproperty: str
    max_distance: float | None = None
    min_distance: float | None = None


def parse_geometry(obj: object) -> dict[str, Any]:
    """Return a GeoJSON geometry unchanged once checked; raise BadRequestData if it is invalid."""
    try:
        if isinstance(obj, dict) and obj.get("type") == "Point" and "coordinates" in obj:
            # Most things in a city are points: checking one needs no geometry library.
            _position(obj["coordinates"])
            return obj
        _checked_shape(obj)
    except _Invalid as error:
        raise BadRequestData(f"invalid GeoJSON geometry: {error}") from None
    assert isinstance(obj, dict)
    return obj


def geometry_bbox(geometry: dict[str, Any]) -> BoundingBox:
    """Return the (min lon, min lat, max lon, max lat) box of a GeoJSON geometry."""
    coordinates = geometry.get("coordinates")
    if geometry.get("type") == "Point" and isinstance(coordinates, list) and len(coordinates) >= 2:
        # Most things in a city are points: their box needs no geometry library.
        lon, lat = coordinates[0], coordinates[1]
        if (
            isinstance(lon, int | float)
            and isinstance(lat, int | float)
            and -180 <= lon <= 180
            and -90 <= lat <= 90
        ):
            return (float(lon), float(lat), float(lon), float(lat))
    try:
        minx, miny, maxx, maxy = _checked_shape(geometry).bounds
    except _Invalid as error:
        raise BadRequestData(f"invalid GeoJSON geometry: {error}") from None
    return (float(minx), float(miny), float(maxx), float(maxy))


def parse_geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: str | list[Any] | None,
    geoproperty: str,
) -> GeoQuery | None:
    """Return the geo-query of the HTTP query parameters, or None when none of them is given."""
    given = {"georel": georel, "geometry": geometry, "coordinates": coordinates}
    if all(value is None for value in given.values()):
        return None
    if georel is None or geometry is None or coordinates is None:
        missing = [name for name, value in given.items() if value is None]
        raise BadRequestData(
            "a geo-query needs georel, geometry and coordinates together; missing: "
            + ", ".join(missing)
        )
    return _geo_query(georel, geometry, coordinates, geoproperty)


def geo_query_from_json(obj: dict[str, Any], geoproperty_default: str) -> GeoQuery:
    """Return the geo-query of a ``geoQ`` member; ``geoproperty`` is kept as written."""
    if not isinstance(obj, dict):
        raise BadRequestData("geoQ must be a JSON object with georel, geometry and coordinates")
    missing = [name for name in ("georel", "geometry", "coordinates") if obj.get(name) is None]
    if missing:
        raise BadRequestData("geoQ lacks " + ", ".join(missing))
    unknown = sorted(set(obj) - {"georel", "geometry", "coordinates", "geoproperty"})
    if unknown:
        raise BadRequestData("geoQ has unknown members: " + ", ".join(unknown))
    georel, geometry, coordinates = obj["georel"], obj["geometry"], obj["coordinates"]
    geoproperty = obj.get("geoproperty", geoproperty_default)
    for name, value in (("georel", georel), ("geometry", geometry), ("geoproperty", geoproperty)):
        if not isinstance(value, str):
            raise BadRequestData(f"geoQ.{name} must be a string, got {_show(value)}")
    if not isinstance(coordinates, str | list):
        raise BadRequestData(f"geoQ.coordinates must be an array, got {_show(coordinates)}")
    return _geo_query(georel, geometry, coordinates, geoproperty)


def _geo_query(
    georel: str, geometry: str, coordinates: str | list[Any], geoproperty: str
) -> GeoQuery:
    """Check each part of a geo-query and put them together."""
    if not geoproperty:
        raise BadRequestData("geoproperty must not be empty")
    relation, max_distance, min_distance = _parse_georel(georel)
    if geometry not in GEOMETRY_TYPES:
        raise BadRequestData(
            f"geometry {_show(geometry)} is not supported; use one of " + ", ".join(GEOMETRY_TYPES)
        )
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates)
        except (ValueError, RecursionError):
            raise BadRequestData(
                f"coordinates must be a JSON array such as [127.05,37.65], got {_show(coordinates)}"
            ) from None
    try:
        _checked_shape({"type": geometry, "coordinates": coordinates})
    except _Invalid as error:
        raise BadRequestData(f"coordinates do not make a valid {geometry}: {error}") from None
    return GeoQuery(
        georel=relation,
        geometry={"type": geometry, "coordinates": coordinates},
        geoproperty=geoproperty,
        max_distance=max_distance,
        min_distance=min_distance,
    )


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    """Return the relation and the max and min distances of a ``georel`` value."""
    relation, *modifiers = georel.split(";")
    if relation not in GEORELS:
        raise BadRequestData(
            f"georel {_show(georel)} is not supported; use one of " + ", ".join(GEORELS)
        )
    if relation != "near":
        if modifiers:
            raise BadRequestData(f"georel {relation} takes no distance, got {_show(georel)}")
        return relation, None, None
    distances: dict[str, float] = {}
    for modifier in modifiers:
        found = _DISTANCE.fullmatch(modifier)
        if found is None:
            raise BadRequestData(
                f"georel near expects maxDistance==<metres> or minDistance==<metres>, "
                f"got {_show(modifier)}"
            )
        name, text = found.groups()
        if name in distances:
            raise BadRequestData(f"georel gives {name} twice")
        distances[name] = _metres(name, text)
    if not distances:
        raise BadRequestData("georel near needs a distance: near;maxDistance==<metres>")
    max_distance, min_distance = distances.get("maxDistance"), distances.get("minDistance")
    if max_distance is not None and min_distance is not None and min_distance > max_distance:
        raise BadRequestData("georel near has minDistance greater than maxDistance")
    return relation, max_distance, min_distance


def _metres(name: str, text: str) -> float:
    """Return a distance in metres: a finite number, not negative."""
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value) or value < 0:
        raise BadRequestData(f"{name} must be a number of metres, 0 or more, got {_show(text)}")
    return value


class GeoPredicate:
    """Test entity geometries against one geo-query; build once, call often."""

    def __init__(self, query: GeoQuery) -> None:
        self.query = query
        try:
            reference = _checked_shape(query.geometry)
        except _Invalid as error:
            raise BadRequestData(f"invalid geo-query geometry: {error}") from None
        shapely.prepare(reference)
        self._reference = reference
        self._reference_point: tuple[float, float] | None = (
            (float(reference.x), float(reference.y)) if reference.geom_type == "Point" else None
        )
        self._near = query.georel == "near"
        self._max_box: BoundingBox | None = None
        self._min_box: BoundingBox | None = None
        if self._near and query.max_distance is not None:
            self._max_box = _grow(reference.bounds, query.max_distance)
        if self._near and query.min_distance is not None:
            self._min_box = _grow(reference.bounds, query.min_distance)
        self._projected: tuple[Any, Any] | None = None

    @property
    def bbox(self) -> BoundingBox | None:
        """Return the lon/lat box every matching geometry's box meets, or None if there is none."""
        if self.query.georel == "disjoint":
            return None
        if self._near:
            return self._max_box
        minx, miny, maxx, maxy = self._reference.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))

    def matches(self, geometry: object) -> bool:
        """Return whether an entity's GeoJSON geometry satisfies the query; False if invalid."""
        try:
            if isinstance(geometry, dict) and geometry.get("type") == "Point":
                lon, lat = _position(geometry.get("coordinates"))
                return self._matches_point(lon, lat)
            return self._matches_shape(_checked_shape(geometry))
        except (ValueError, TypeError, ArithmeticError, ShapelyError, ProjError):
            return False

    def _matches_point(self, lon: float, lat: float) -> bool:
        """Test a point entity, without building a shapely geometry when possible."""
        georel = self.query.georel
        if georel == "within":
            return bool(shapely.contains_xy(self._reference, lon, lat))
        if georel == "intersects":
            return bool(shapely.intersects_xy(self._reference, lon, lat))
        if georel == "disjoint":
            return not shapely.intersects_xy(self._reference, lon, lat)
        if self._near and self._reference_point is not None:
            decided = self._decided_by_boxes((lon, lat, lon, lat))
            if decided is not None:
                return decided
            return self._distance_ok(self._geodesic(lon, lat))
        return self._matches_shape(shapely.Point(lon, lat))

    def _matches_shape(self, entity: Any) -> bool:
        """Test an entity given as a shapely geometry."""
        reference = self._reference
        match self.query.georel:
            case "within":
                return bool(shapely.contains(reference, entity))
            case "contains":
                return bool(shapely.contains(entity, reference))
            case "intersects":
                return bool(shapely.intersects(reference, entity))
            case "disjoint":
                return bool(shapely.disjoint(reference, entity))
            case "equals":
                return bool(shapely.equals(entity, reference))
            case "overlaps":
                return bool(shapely.overlaps(reference, entity))
            case _:
                return self._matches_near(entity)

    def _matches_near(self, entity: Any) -> bool:
        """Test the distance of an entity, skipping the measure when the boxes decide."""
        decided = self._decided_by_boxes(entity.bounds)
        if decided is not None:
            return decided
        return self._distance_ok(self._metres_to(entity))

    def _decided_by_boxes(self, box: Any) -> bool | None:
        """Return the answer to a near query if the grown boxes give it, else None."""
        if self._max_box is not None and not _boxes_meet(self._max_box, box):
            return False
        beyond_min = self._min_box is not None and not _boxes_meet(self._min_box, box)
        if beyond_min and self.query.max_distance is None:
            return True
        return None

    def _distance_ok(self, distance: float) -> bool:
        """Return whether a distance in metres lies within the query's bounds."""
        low, high = self.query.min_distance, self.query.max_distance
        return (high is None or distance <= high) and (low is None or distance >= low)

    def _geodesic(self, lon: float, lat: float) -> float:
        """Return the geodesic distance in metres from the reference point."""
        assert self._reference_point is not None
        ref_lon, ref_lat = self._reference_point
        return float(_WGS84.inv(ref_lon, ref_lat, lon, lat)[2])

    def _metres_to(self, entity: Any) -> float:
        """Return the distance in metres between the reference and an entity geometry."""
        if self._reference_point is not None and entity.geom_type == "Point":
            return self._geodesic(float(entity.x), float(entity.y))
        if self._projected is None:
            centre = self._reference.centroid
            project = _projector(_aeqd(float(centre.x), float(centre.y)))
            self._projected = (project, shapely.transform(self._reference, project))
        project, reference = self._projected
        # NaN (a failed projection) fails every comparison, so such an entity never matches.
        return float(shapely.distance(reference, shapely.transform(entity, project)))


@lru_cache(maxsize=256)
def _aeqd(lon: float, lat: float) -> Transformer:
    """Return the transformer from lon/lat to metres in an equidistant projection about a point."""
    return Transformer.from_crs(
        "EPSG:4326",
        f"+proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +datum=WGS84 +units=m +no_defs",
        always_xy=True,
    )


def _projector(transformer: Transformer) -> Any:
    """Return a shapely.transform callback that projects an (n, 2) array of lon/lat."""

    def project(coordinates: Any) -> Any:
        x, y = transformer.transform(coordinates[:, 0], coordinates[:, 1])
        return np.column_stack((x, y))

    return project


def _grow(bounds: Any, metres: float) -> BoundingBox:
    """Return a lon/lat box holding every point within some metres of a box (no wrapping)."""
    minx, miny, maxx, maxy = (float(value) for value in bounds)
    angle = metres * _BOX_MARGIN / _EARTH_RADIUS_LOWER_BOUND
    dlat = math.degrees(angle) + 1e-9
    south, north = max(-90.0, miny - dlat), min(90.0, maxy + dlat)
    nearest_pole = max(abs(miny), abs(maxy))
    if angle >= math.pi / 2 or nearest_pole + dlat >= 90.0:
        return (-180.0, south, 180.0, north)
    # Widest longitude span of a small circle on the sphere (its tangent meridians).
    ratio = math.sin(angle) / math.cos(math.radians(nearest_pole))
    if ratio >= 1.0:
        return (-180.0, south, 180.0, north)
    dlon = math.degrees(math.asin(ratio)) * _BOX_MARGIN + 1e-9
    if minx - dlon < -180.0 or maxx + dlon > 180.0:
        return (-180.0, south, 180.0, north)
    return (minx - dlon, south, maxx + dlon, north)


def _boxes_meet(a: BoundingBox, b: Any) -> bool:
    """Return whether two (minx, miny, maxx, maxy) boxes share a point."""
    return bool(a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3])


def _checked_shape(obj: object) -> Any:
    """Return the shapely geometry of a valid GeoJSON geometry; raise _Invalid otherwise."""
    if not isinstance(obj, dict) or "coordinates" not in obj:
        raise _Invalid("a geometry is a JSON object with 'type' and 'coordinates'")
    kind, coordinates = obj.get("type"), obj["coordinates"]
    if kind == "Point":
        _position(coordinates)
    elif kind == "MultiPoint":
        _positions(coordinates, "coordinates", 1)
    elif kind == "LineString":
        _positions(coordinates, "coordinates", 2)
    elif kind == "MultiLineString":
        for index, line in enumerate(_array(coordinates, "coordinates", "lines")):
            _positions(line, f"coordinates[{index}]", 2)
    elif kind == "Polygon":
        _polygon(coordinates, "coordinates")
    elif kind == "MultiPolygon":
        for index, polygon in enumerate(_array(coordinates, "coordinates", "polygons")):
            _polygon(polygon, f"coordinates[{index}]")
    else:
        raise _Invalid(f"type {_show(kind)} is not one of " + ", ".join(GEOMETRY_TYPES))
    try:
        geometry = shape({"type": kind, "coordinates": coordinates})
    except (ValueError, TypeError, ShapelyError) as error:
        raise _Invalid(f"{kind}: {error}") from None
    if kind != "Point" and not geometry.is_valid:
        raise _Invalid(f"the {kind} is not valid: {shapely.is_valid_reason(geometry)}")
    return geometry


def _array(value: object, where: str, what: str) -> list[Any]:
    """Return a non-empty JSON array of parts; raise _Invalid otherwise."""
    if not isinstance(value, list | tuple) or not value:
        raise _Invalid(f"{where} must be a non-empty array of {what}, got {_show(value)}")
    return list(value)


def _polygon(value: object, where: str) -> None:
    """Check the rings of a polygon: each closed, of 4 positions or more."""
    for index, ring in enumerate(_array(value, where, "linear rings")):
        positions = _positions(ring, f"{where}[{index}]", 4)
        if positions[0] != positions[-1]:
            raise _Invalid(
                f"{where}[{index}] is not a closed ring: it starts at {_show(ring[0])} "
                f"but ends at {_show(ring[-1])}"
            )


def _positions(value: object, where: str, least: int) -> list[tuple[float, float]]:
    """Return the checked positions of an array, which needs at least `least` of them."""
    if not isinstance(value, list | tuple) or len(value) < least:
        raise _Invalid(f"{where} must be an array of {least} positions or more, got {_show(value)}")
    positions = []
    for index, item in enumerate(value):
        try:
            positions.append(_position(item))
        except _Invalid as error:
            raise _Invalid(f"{where}[{index}]: {error}") from None
    return positions


def _position(value: object) -> tuple[float, float]:
    """Return the (lon, lat) of a GeoJSON position; raise _Invalid if it is not one."""
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise _Invalid(f"a position is [longitude, latitude], got {_show(value)}")
    numbers = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise _Invalid(f"a position holds numbers only, got {_show(value)}")
        try:
            numbers.append(float(number))
        except OverflowError:
            numbers.append(math.inf)
    lon, lat = numbers[0], numbers[1]
    if not -180.0 <= lon <= 180.0:
        raise _Invalid(f"longitude {_show(value[0])} is outside [-180, 180] in {_show(value)}")
    if not -90.0 <= lat <= 90.0:
        raise _Invalid(
            f"latitude {_show(value[1])} is outside [-90, 90] in {_show(value)} "
            "(positions are [longitude, latitude])"
        )
    if len(numbers) == 3 and not math.isfinite(numbers[2]):
        raise _Invalid(f"altitude {_show(value[2])} is not a finite number")
    return lon, lat


def _show(value: object) -> str:
    """Return a short JSON rendering of a value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
