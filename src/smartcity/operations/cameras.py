"""Cameras as the broker keeps them: `Camera` entities (any @context), found near a point.

The Smart Data Models `Camera` gives `streamURL`, `cameraName`, `cameraUsage`; the district's
cameras add `viewDirection` (degrees clockwise from north). Attributes are read by local name,
so a camera written under the Smart Data Models @context and one under the core @context read
the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from smartcity.broker.changefeed import local_name
from smartcity.core.entity import LOCATION, StoredEntity
from smartcity.core.geo import GeoPredicate, GeoQuery
from smartcity.core.qlang import Or, TypeName
from smartcity.operations.places import bearing_deg, distance_m, faces
from smartcity.storage.base import EntityQuery
from smartcity.storage.sqlbase import SqlEntityStore

CAMERA_TYPES: Final = (
    "https://smartdatamodels.org/dataModel.Device/Camera",
    "https://uri.etsi.org/ngsi-ld/default-context/Camera",
)
"""The Camera type as the Smart Data Models @context and the core @context expand it."""


@dataclass(frozen=True, slots=True)
class NearbyCamera:
    """A camera near an incident: how far, and where it looks."""

    id: str
    name: str
    location: dict[str, Any] | None
    distance: float
    view_direction: float | None
    faces_incident: bool | None
    """Whether the incident is within its view (None when its direction is unknown)."""
    usage: str


def attribute(entity: StoredEntity, name: str) -> Any:
    """Return the value of an entity's attribute by its local name (any @context), or None."""
    for key, instances in entity.attrs.items():
        if local_name(key) == name and instances:
            value = instances[0].get("value", instances[0].get("object"))
            return value
    return None


def is_camera(entity: StoredEntity) -> bool:
    """Tell whether an entity is a Camera (under any @context)."""
    return any(local_name(t) == "Camera" for t in entity.types)


def cameras_around(
    entities: SqlEntityStore, tenant: str, here: tuple[float, float], radius: float
) -> list[NearbyCamera]:
    """Return a tenant's cameras within `radius` metres of (lon, lat), nearest first."""
    query = EntityQuery(
        tenant=tenant,
        types=Or(tuple(TypeName(t) for t in CAMERA_TYPES)),
        geo=GeoPredicate(
            GeoQuery("near", {"type": "Point", "coordinates": list(here)}, LOCATION, radius)
        ),
        geoproperty=LOCATION,
        limit=10_000,
    )
    found = [_nearby(entity, here) for entity in entities.query(query).entities]
    return sorted((c for c in found if c is not None), key=lambda c: (c.distance, c.id))


def _nearby(entity: StoredEntity, here: tuple[float, float]) -> NearbyCamera | None:
    location = attribute(entity, "location")
    if not isinstance(location, dict) or location.get("type") != "Point":
        return None
    lon, lat = location["coordinates"][:2]
    where = (float(lon), float(lat))
    direction = attribute(entity, "viewDirection")
    view = float(direction) if isinstance(direction, int | float) else None
    toward = bearing_deg(where, here)
    near = distance_m(where, here) < 1.0
    return NearbyCamera(
        id=entity.id,
        name=str(attribute(entity, "cameraName") or attribute(entity, "name") or entity.id),
        location=location,
        distance=round(distance_m(here, where), 1),
        view_direction=view,
        faces_incident=None if view is None else (near or faces(view, toward)),
        usage=str(attribute(entity, "cameraUsage") or ""),
    )
