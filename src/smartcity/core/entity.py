"""The stored form of an NGSI-LD entity: expanded names, every attribute a list of instances.

An entity is kept independent of any @context: its type names and attribute names are full IRIs,
so the same entity can be shown under whichever @context a client sends. Every attribute maps to
a list of instances (one per ``datasetId``; the default instance has none), each a plain JSON
object in NGSI-LD normalized shape::

    {"type": "Property", "value": 132, "observedAt": "2026-11-27T10:00:00Z",
     "createdAt": "...", "modifiedAt": "...",
     "https://example.org/accuracy": {"type": "Property", "value": 0.5}}

Keys of an instance are either the reserved member names below or expanded IRIs of its
sub-attributes (a sub-attribute is one instance object, not a list). Keys inside a compound
``value`` are the client's own and are never expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

JSON = Any
Instance = dict[str, Any]
Attributes = dict[str, list[Instance]]

NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"
LOCATION: Final = NGSI_LD + "location"
OBSERVATION_SPACE: Final = NGSI_LD + "observationSpace"
OPERATION_SPACE: Final = NGSI_LD + "operationSpace"
DEFAULT_CONTEXT_VOCAB: Final = NGSI_LD + "default-context/"

ATTRIBUTE_TYPES: Final = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "JsonProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
    }
)

# Which member carries the attribute's value, by attribute type.
VALUE_MEMBER: Final[dict[str, str]] = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}

# Members of an instance that are not sub-attributes.
RESERVED_MEMBERS: Final = frozenset(
    {
        "type",
        "value",
        "object",
        "languageMap",
        "json",
        "vocab",
        "valueList",
        "objectList",
        "objectType",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "lang",
        "instanceId",
        "previousValue",
        "previousObject",
    }
)

# Entity members that are not attributes.
ENTITY_MEMBERS: Final = frozenset(
    {"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"}
)


@dataclass(slots=True)
class StoredEntity:
    """One entity as the store keeps it."""

    id: str
    types: list[str]
    attrs: Attributes
    scopes: list[str] = field(default_factory=list)
    created_at: str = ""
    modified_at: str = ""


def instance_value(instance: Instance) -> JSON:
    """Return the value an instance carries, whatever its attribute type."""
    member = VALUE_MEMBER.get(str(instance.get("type", "Property")), "value")
    return instance.get(member)


def geo_values(entity: StoredEntity, geoproperty: str) -> list[dict[str, Any]]:
    """Return the GeoJSON geometries of one GeoProperty of an entity (all its instances)."""
    out: list[dict[str, Any]] = []
    for instance in entity.attrs.get(geoproperty, []):
        if instance.get("type") == "GeoProperty" and isinstance(instance.get("value"), dict):
            out.append(instance["value"])
    return out
