"""City assets as the broker keeps them, found by type and place for the linked services.

Types are matched by local name under the @contexts the platform meets: the Smart Data Models
IRIs, the core @context's default vocabulary and the platform's own vocabulary
(`urn:smartcity:vocab:`) for the types Smart Data Models does not have (`FireHydrant`,
`TrafficSignal`). Attributes are read by local name (see `cameras.attribute`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from smartcity.broker.changefeed import local_name
from smartcity.core.entity import LOCATION, StoredEntity
from smartcity.core.geo import GeoPredicate, GeoQuery
from smartcity.core.qlang import Or, TypeName
from smartcity.operations.cameras import attribute
from smartcity.storage.base import EntityQuery
from smartcity.storage.sqlbase import SqlEntityStore

SDM: Final = "https://smartdatamodels.org/"
DATA_MODELS: Final = {
    "Building": "dataModel.Building",
    "RoadSegment": "dataModel.Transportation",
    "TrafficFlowObserved": "dataModel.Transportation",
    "TrafficViolation": "dataModel.Transportation",
    "CrowdFlowObserved": "dataModel.Transportation",
    "TransportStation": "dataModel.Transportation",
    "FloodMonitoring": "dataModel.Environment",
    "AirQualityObserved": "dataModel.Environment",
    "PointOfInterest": "dataModel.PointOfInterest",
    "OffStreetParking": "dataModel.Parking",
    "Camera": "dataModel.Device",
    "Device": "dataModel.Device",
}
"""The Smart Data Models subject of each type the linked services read."""
MAX_ASSETS: Final = 20_000


def type_iris(name: str) -> tuple[str, ...]:
    """Return the IRIs a type's local name expands to under the @contexts the platform meets."""
    iris = [
        f"https://uri.etsi.org/ngsi-ld/default-context/{name}",
        f"urn:smartcity:vocab:{name}",
    ]
    if name in DATA_MODELS:
        iris.insert(0, f"{SDM}{DATA_MODELS[name]}/{name}")
    return tuple(iris)


def is_a(entity: StoredEntity, name: str) -> bool:
    """Tell whether an entity has a type of this local name (under any @context)."""
    return any(local_name(t) == name for t in entity.types)


def position_of(entity: StoredEntity) -> tuple[float, float] | None:
    """Return the (lon, lat) of an entity's Point location, or None."""
    location = attribute(entity, "location")
    if not isinstance(location, dict) or location.get("type") != "Point":
        return None
    lon, lat = location["coordinates"][:2]
    return float(lon), float(lat)


def assets_near(
    entities: SqlEntityStore,
    tenant: str,
    names: Sequence[str],
    here: tuple[float, float] | None = None,
    radius: float = 0.0,
    geometry: dict[str, Any] | None = None,
) -> list[StoredEntity]:
    """Return a tenant's entities of these types within `radius` m of `here`, or within
    (intersecting) a GeoJSON geometry, or all of them; by id."""
    types = Or(tuple(TypeName(iri) for name in names for iri in type_iris(name)))
    predicate = None
    if geometry is not None:
        predicate = GeoPredicate(GeoQuery("intersects", geometry, LOCATION))
    elif here is not None:
        point = {"type": "Point", "coordinates": list(here)}
        predicate = GeoPredicate(GeoQuery("near", point, LOCATION, radius))
    query = EntityQuery(
        tenant=tenant,
        types=types,
        geo=predicate,
        geoproperty=LOCATION if predicate is not None else None,
        limit=MAX_ASSETS,
    )
    return entities.query(query).entities


def name_of(entity: StoredEntity) -> dict[str, str]:
    """Return an entity's Korean and English names (`name`, `alternateName`)."""
    ko = attribute(entity, "name") or attribute(entity, "cameraName") or entity.id
    en = attribute(entity, "alternateName") or ko
    return {"ko": str(ko), "en": str(en)}


def observed_at(entity: StoredEntity, name: str) -> str | None:
    """Return the `observedAt` of an entity's attribute (by local name), or None."""
    for key, instances in entity.attrs.items():
        if local_name(key) == name and instances:
            moment = instances[0].get("observedAt")
            return moment if isinstance(moment, str) else None
    return None
