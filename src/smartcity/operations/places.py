"""Where incidents are: a geometry's representative point, distances and bearings in metres."""

from __future__ import annotations

import math
from typing import Any

from smartcity.core.geo import geometry_bbox, parse_geometry

EARTH_RADIUS = 6_371_008.8
"""Mean Earth radius in metres (IUGG)."""


def representative_point(geometry: dict[str, Any]) -> tuple[float, float]:
    """Return (lon, lat) of a GeoJSON geometry: a Point's own, else its box's centre.

    Raises BadRequestData when the geometry is not valid GeoJSON.
    """
    parse_geometry(geometry)
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return float(lon), float(lat)
    min_lon, min_lat, max_lon, max_lat = geometry_bbox(geometry)
    return (min_lon + max_lon) / 2, (min_lat + max_lat) / 2


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the great-circle distance in metres between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the initial bearing from `a` to `b` in degrees clockwise from north (0-360)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


def faces(view_direction: float, bearing_to_target: float, half_angle: float = 45.0) -> bool:
    """Tell whether a camera looking along `view_direction` has the target within its view."""
    difference = abs((view_direction - bearing_to_target + 180) % 360 - 180)
    return difference <= half_angle
