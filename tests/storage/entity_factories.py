"""Plain factory functions for stored entities, and the parsers with names expanded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartcity.core.entity import LOCATION, Instance, StoredEntity
from smartcity.core.geo import GeoPredicate, GeoQuery
from smartcity.core.qlang import (
    QExpr,
    ScopeExpr,
    TypeExpr,
    map_names,
    map_type_names,
    parse_q,
    parse_scope_q,
    parse_types,
)

VOCAB = "https://smartdatamodels.org/dataModel.Parking/"
CREATED_AT = "2026-11-27T10:00:00Z"


def iri(name: str) -> str:
    """Return the expanded name of a term (``location`` is the core one)."""
    return LOCATION if name == "location" else VOCAB + name


def prop(value: Any, **members: Any) -> Instance:
    """Return a Property instance; `members` adds datasetId, observedAt, sub-attributes..."""
    return {"type": "Property", "value": value, **members}


def rel(target: str, **members: Any) -> Instance:
    """Return a Relationship instance."""
    return {"type": "Relationship", "object": target, **members}


def point(lon: float, lat: float) -> dict[str, Any]:
    """Return a GeoJSON Point."""
    return {"type": "Point", "coordinates": [lon, lat]}


def polygon(*ring: tuple[float, float]) -> dict[str, Any]:
    """Return a GeoJSON Polygon of one ring, closed for you."""
    positions = [list(position) for position in ring]
    return {"type": "Polygon", "coordinates": [[*positions, positions[0]]]}


def geo(geometry: dict[str, Any]) -> Instance:
    """Return a GeoProperty instance."""
    return {"type": "GeoProperty", "value": geometry}


def make_entity(
    entity_id: str,
    types: str | Sequence[str],
    *,
    scopes: Sequence[str] = (),
    modified_at: str = CREATED_AT,
    **attrs: Any,
) -> StoredEntity:
    """Return a stored entity; each attribute is a plain value, an instance or a list of them.

    Names are short terms, expanded with `iri`: ``make_entity("urn:a", "ParkingSpot",
    status="free", location=geo(point(127.04, 37.65)))``.
    """
    type_names = [types] if isinstance(types, str) else list(types)
    return StoredEntity(
        id=entity_id,
        types=[iri(name) for name in type_names],
        attrs={iri(name): _instances(value) for name, value in attrs.items()},
        scopes=list(scopes),
        created_at=CREATED_AT,
        modified_at=modified_at,
    )


def _instances(value: Any) -> list[Instance]:
    if isinstance(value, dict) and "type" in value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return list(value)
    return [prop(value)]


def q_expr(text: str) -> QExpr:
    """Parse a ``q`` query written with short names."""
    return map_names(parse_q(text), iri)


def type_expr(text: str) -> TypeExpr:
    """Parse a type selection written with short names."""
    return map_type_names(parse_types(text), iri)


def scope_expr(text: str) -> ScopeExpr:
    """Parse a ``scopeQ`` query."""
    return parse_scope_q(text)


def near(lon: float, lat: float, max_distance: float) -> GeoPredicate:
    """Return the predicate of ``georel=near;maxDistance==<metres>`` around a point."""
    return GeoPredicate(GeoQuery("near", point(lon, lat), LOCATION, max_distance=max_distance))


def georel(relation: str, geometry: dict[str, Any]) -> GeoPredicate:
    """Return the predicate of a geo-query with no distance (within, disjoint, intersects...)."""
    return GeoPredicate(GeoQuery(relation, geometry, LOCATION))
