"""The district model: zones, places, road nodes and links, parking lots, and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapely.geometry import Point, Polygon, shape
from shapely.prepared import PreparedGeometry, prep

from smartcity.core.errors import ConfigurationError
from smartcity.sim.geodesy import Position, line_length

if TYPE_CHECKING:
    from smartcity.sim.parking_details import ParkingDetails

ASSET_KINDS = (
    "cctv_cameras",
    "traffic_detectors",
    "streetlights",
    "waste_bins",
    "environment_sensors",
    "beacons",
    "points_of_interest",
)
"""The kinds of generated assets, as named under `generate:` in district.yaml."""

PLACE_KINDS = frozenset(
    {
        "station",
        "landmark",
        "culture",
        "development",
        "office",
        "stream",
        "park",
        "market",
        "shopping",
        "school",
        "apartment",
    }
)


class DistrictError(ConfigurationError):
    """A district file is missing or invalid; the message says which and how to fix it."""

    title = "District data error"


@dataclass(frozen=True, slots=True)
class Zone:
    """An administrative area (a dong) as a polygon."""

    id: str
    name_ko: str
    name_en: str
    parent: str
    geometry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Place:
    """A named real place: station, landmark, school, market, apartment complex, stream..."""

    id: str
    kind: str
    name_ko: str
    name_en: str
    description: str
    geometry: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def anchor(self) -> Position:
        """Return a point that stands for the place (its centroid, or itself for a point)."""
        point = shape(self.geometry).representative_point()
        return (float(point.x), float(point.y))


@dataclass(frozen=True, slots=True)
class RoadNode:
    """A junction or end of the road graph."""

    id: str
    position: Position
    signalised: bool
    name_ko: str = ""
    name_en: str = ""


@dataclass(frozen=True, slots=True)
class RoadLink:
    """A stretch of road between two nodes, drivable both ways unless one-way."""

    id: str
    start: str
    end: str
    name_ko: str
    name_en: str
    road_class: str
    lanes: int
    """Lanes in each direction of travel."""
    speed_limit: int
    """Kilometres per hour."""
    oneway: bool
    points: tuple[Position, ...]
    """The line from the start node's position to the end node's, with any bends between."""

    @property
    def length(self) -> float:
        """Return the geodesic length in metres."""
        return line_length(self.points)


@dataclass(frozen=True, slots=True)
class ParkingLot:
    """An off-street parking lot; `spot_sensors` when each spot reports free/occupied."""

    id: str
    name_ko: str
    name_en: str
    position: Position
    total_spots: int
    spot_sensors: bool
    category: tuple[str, ...]
    layout: str


@dataclass(slots=True)
class District:
    """Everything a district's files describe, checked and ready to generate and load."""

    id: str
    name_ko: str
    name_en: str
    root: Path
    seed: int
    targets: dict[str, int]
    zones: list[Zone]
    places: list[Place]
    nodes: dict[str, RoadNode]
    links: list[RoadLink]
    parking: list[ParkingLot]
    timezone: str = "UTC"
    """The IANA time zone of local clocks there (daily patterns, vendors' timestamps)."""
    parking_details: ParkingDetails | None = None
    """Tariffs, hours and park-and-ride of the lots, and the shared and resident sites."""
    _zone_shapes: list[tuple[Zone, PreparedGeometry]] = field(default_factory=list, repr=False)

    def zone_at(self, position: Position) -> Zone | None:
        """Return the zone that covers a position, or None outside every zone."""
        if not self._zone_shapes:
            self._zone_shapes = [(zone, prep(shape(zone.geometry))) for zone in self.zones]
        point = Point(position)
        for zone, polygon in self._zone_shapes:
            if polygon.covers(point):
                return zone
        return None

    def places_of(self, *kinds: str) -> list[Place]:
        """Return the places of the given kinds, in file order."""
        return [place for place in self.places if place.kind in kinds]


def polygon_of(geometry: dict[str, Any]) -> Polygon:
    """Return the shapely polygon of a GeoJSON Polygon geometry."""
    polygon = shape(geometry)
    if not isinstance(polygon, Polygon):
        raise DistrictError(f"expected a Polygon, got {geometry.get('type')}")
    return polygon
