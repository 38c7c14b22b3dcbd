"""Routes as the linked services use them: the road network of a tenant, cameras along a route,
and a route as JSON (GeoJSON line, roads, travel time)."""

from __future__ import annotations

from typing import Any

from smartcity.core.entity import StoredEntity
from smartcity.operations.assets import assets_near, name_of, position_of
from smartcity.operations.cameras import attribute, is_camera
from smartcity.operations.plane import Plane
from smartcity.operations.roadnet import Path, RoadNetwork
from smartcity.storage.sqlbase import SqlEntityStore


def road_network(entities: SqlEntityStore, tenant: str) -> RoadNetwork:
    """Return a tenant's road network with its live speeds (empty without RoadSegments)."""
    segments = assets_near(entities, tenant, ["RoadSegment"])
    flows = assets_near(entities, tenant, ["TrafficFlowObserved"])
    return RoadNetwork(segments, flows)


def along(
    plane: Plane, line: list[tuple[float, float]], found: list[StoredEntity], within: float
) -> list[tuple[StoredEntity, float, float]]:
    """Return the entities within `within` metres of a polyline, with how far off it and how
    far along it (metres from its start) each is, in route order."""
    near = []
    for entity in found:
        where = position_of(entity)
        if where is None:
            continue
        gap, at, _ = plane.to_line(where, line)
        if gap <= within:
            near.append((entity, round(gap, 1), round(at, 1)))
    return sorted(near, key=lambda item: (item[2], item[0].id))


def nearby(
    entities: SqlEntityStore,
    tenant: str,
    plane: Plane,
    line: list[tuple[float, float]],
    names: list[str],
    within: float,
) -> list[tuple[StoredEntity, float, float]]:
    """Return a tenant's entities of these types along a polyline (see `along`)."""
    xs = [plane.xy(p) for p in line]
    cx = (min(x for x, _ in xs) + max(x for x, _ in xs)) / 2
    cy = (min(y for _, y in xs) + max(y for _, y in xs)) / 2
    radius = max(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 for x, y in xs) + within
    centre = plane.lonlat(cx, cy)
    return along(plane, line, assets_near(entities, tenant, names, centre, radius), within)


def camera_item(camera: StoredEntity, off: float, at: float) -> dict[str, Any]:
    """Return a camera along a route as JSON."""
    direction = attribute(camera, "viewDirection")
    return {
        "id": camera.id,
        "name": name_of(camera)["ko"],
        "location": attribute(camera, "location"),
        "distanceFromRoute": off,
        "alongRoute": at,
        "viewDirection": direction if isinstance(direction, int | float) else None,
        "usage": attribute(camera, "cameraUsage"),
    }


def cameras_along(
    entities: SqlEntityStore, tenant: str, plane: Plane, route: Path, within: float
) -> list[dict[str, Any]]:
    """Return the cameras within `within` metres of a route, in the order it passes them."""
    found = nearby(entities, tenant, plane, route.line, ["Camera"], within)
    return [camera_item(c, off, at) for c, off, at in found if is_camera(c)]


def route_json(route: Path) -> dict[str, Any]:
    """Return a route: its line, length, travel time and the roads it takes."""
    roads: list[str] = []
    for edge in route.edges:
        if not roads or roads[-1] != edge.name:
            roads.append(edge.name)
    return {
        "geometry": {
            "type": "LineString",
            "coordinates": [[round(x, 6), round(y, 6)] for x, y in route.line],
        },
        "length": round(route.length, 1),
        "travelSeconds": round(route.seconds, 1),
        "roads": roads,
        "segments": route.segments(),
        "leavesDistrict": route.ends_at_edge,
    }
