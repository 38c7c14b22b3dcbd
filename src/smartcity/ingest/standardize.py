"""The standardizer: normalize an update's attributes, then check them against the model.

`SmartDataStandardizer` implements the `Standardizer` port. For each attribute of an update it
brings the attribute to the NGSI-LD normalized form (a bare value becomes a Property), converts
units to UN/CEFACT codes (into the unit the model wants, when it says), times to UTC ISO 8601
with a Z, and geometries to WGS84 [lon, lat]; then it checks the key-values form of every
attribute present against the type's Smart Data Models schema. The first problem raises
`Rejected` with a reason code, the stage, the attribute path and what to fix.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from smartcity.ingest.normalize import (
    check_finite,
    normalize_geometry,
    normalize_measure,
    utc_timestamp,
)
from smartcity.ingest.ports import Rejected
from smartcity.ingest.schemas import AttributeRule, SchemaCatalog, TypeShape

ATTRIBUTE_TYPES: Final = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "VocabProperty",
        "JsonProperty",
        "ListProperty",
        "ListRelationship",
    }
)
# Where each attribute type keeps its value.
_VALUE_MEMBER: Final = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
_CONCISE_MEMBERS: Final = {
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
# Members of an attribute that are not sub-attributes.
_RESERVED: Final = frozenset(
    {
        "type",
        "value",
        "object",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "instanceId",
        "lang",
        "@context",
    }
)
_NOT_ATTRIBUTES: Final = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt"})
GEOMETRY_TYPES: Final = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
SMART_DATA_MODELS: Final = "https://smartdatamodels.org/"
NORMALIZE: Final = "normalize"
VALIDATE: Final = "validate"


def _is_geometry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in GEOMETRY_TYPES
        and ("coordinates" in value or "geometries" in value)
    )


def _term(name: str) -> str:
    """A Smart Data Models IRI names the same attribute as its last segment."""
    if name.startswith(SMART_DATA_MODELS):
        return name.rstrip("/").rsplit("/", 1)[-1]
    return name


def as_normalized(value: Any) -> dict[str, Any]:
    """Return an attribute in the normalized form (concise and bare values are accepted)."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ATTRIBUTE_TYPES:
            return dict(value)
        if "value" in value and not _is_geometry(value):
            inner = value["value"]
            return {**value, "type": "GeoProperty" if _is_geometry(inner) else "Property"}
        for member, attribute_type in _CONCISE_MEMBERS.items():
            if member in value:
                return {**value, "type": attribute_type}
        if _is_geometry(value):
            return {"type": "GeoProperty", "value": value}
    return {"type": "Property", "value": value}


class SmartDataStandardizer:
    """Standardizer over a schema catalog (which may be empty: normalization only)."""

    def __init__(
        self,
        catalog: SchemaCatalog | None = None,
        *,
        naive_time_zone: str | tzinfo = "UTC",
        require_schema: bool = False,
    ) -> None:
        self.catalog = catalog or SchemaCatalog()
        self.naive_zone = (
            ZoneInfo(naive_time_zone) if isinstance(naive_time_zone, str) else naive_time_zone
        )
        """Where a time written without an offset is read."""
        self.require_schema = require_schema
        """Refuse types the catalog has no schema for (otherwise they are only normalized)."""

    def standardize(
        self, tenant: str, entity_type: str, attributes: dict[str, Any], context: list[str]
    ) -> dict[str, Any]:
        """Return the attributes normalized and checked; raise Rejected otherwise."""
        shape = self.catalog.shape(_term(entity_type))
        if shape is None and self.require_schema:
            raise Rejected(
                "schema",
                f"no Smart Data Models schema for type {entity_type!r}: add its schema.json "
                "to a folder of SMARTCITY_INGEST_SCHEMA_DIRS, or map the device to a type "
                "that has one",
                stage=VALIDATE,
            )
        result: dict[str, Any] = {}
        for name, attribute in attributes.items():
            if name in _NOT_ATTRIBUTES:
                raise Rejected(
                    "schema",
                    f"{name!r} is not an attribute: an update carries only attributes "
                    "(the entity's id and type come from the device's mapping)",
                    stage=NORMALIZE,
                    path=name,
                )
            rule = shape.rules.get(_term(name)) if shape is not None else None
            result[name] = self._attribute(name, attribute, rule, shape)
        return result

    def _attribute(
        self, name: str, attribute: Any, rule: AttributeRule | None, shape: TypeShape | None
    ) -> Any:
        if (
            isinstance(attribute, list)
            and attribute
            and all(
                isinstance(item, dict) and ("datasetId" in item or "type" in item)
                for item in attribute
            )
        ):
            # Several instances of one attribute (datasetId): each is checked.
            return [
                self._instance(f"{name}[{index}]", item, rule, shape)
                for index, item in enumerate(attribute)
            ]
        return self._instance(name, attribute, rule, shape)

    def _instance(
        self, path: str, attribute: Any, rule: AttributeRule | None, shape: TypeShape | None
    ) -> dict[str, Any]:
        instance = self._normalized(path, as_normalized(attribute), rule)
        if rule is not None and shape is not None:
            for where, key_value in _key_values(path, instance):
                violation = rule.violation(key_value)
                if violation is not None:
                    at = where + violation.path
                    raise Rejected(
                        violation.reason,
                        f"{at}: {violation.message} (schema of {shape.entity_type}: "
                        f"{shape.schema_id})",
                        stage=VALIDATE,
                        path=at,
                    )
        return instance

    def _normalized(
        self,
        path: str,
        instance: dict[str, Any],
        rule: AttributeRule | None,
    ) -> dict[str, Any]:
        kind = instance["type"]
        member = _VALUE_MEMBER[kind]
        if member not in instance:
            raise Rejected(
                "schema",
                f"{path}: a {kind} carries its value in a member named {member!r}",
                stage=NORMALIZE,
                path=path,
            )
        check_finite(instance[member], f"{path}.{member}")
        if kind == "GeoProperty" or (kind == "Property" and _is_geometry(instance["value"])):
            instance["type"] = "GeoProperty"
            instance["value"] = normalize_geometry(instance["value"], f"{path}.value")
        elif kind == "Property":
            instance["value"] = self._value(path, instance, rule)
        if "observedAt" in instance:
            instance["observedAt"] = utc_timestamp(
                instance["observedAt"], self.naive_zone, f"{path}.observedAt"
            )
        for key, sub in list(instance.items()):
            if key not in _RESERVED and isinstance(sub, dict):
                instance[key] = self._normalized(f"{path}.{key}", as_normalized(sub), None)
        return instance

    def _value(self, path: str, instance: dict[str, Any], rule: AttributeRule | None) -> Any:
        value = instance["value"]
        moment = _typed_time(value)
        if moment is not None:
            # The JSON-LD typed literal (or NGSI v2's {"type": "DateTime", "value": ...}).
            stamp = utc_timestamp(moment, self.naive_zone, f"{path}.value")
            return {"@type": "DateTime", "@value": stamp}
        if rule is not None and rule.time_paths:
            for steps in rule.time_paths:
                value = self._times(value, steps, f"{path}.value")
        if "unitCode" in instance:
            value, instance["unitCode"] = normalize_measure(
                value, instance["unitCode"], rule.unit if rule else None, path
            )
        return value

    def _times(self, value: Any, steps: tuple[str | None, ...], where: str) -> Any:
        """Normalize the date-times found at one path of a value (the schema says where)."""
        if not steps:
            moment = _typed_time(value)
            if moment is not None:
                value = moment
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return utc_timestamp(value, self.naive_zone, where)
            return value  # the wrong kind of value: the schema check says so
        step, rest = steps[0], steps[1:]
        if step is None and isinstance(value, list):
            return [self._times(item, rest, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(step, str) and isinstance(value, dict) and step in value:
            return {**value, step: self._times(value[step], rest, f"{where}.{step}")}
        return value


_TIME_TYPES: Final = frozenset({"DateTime", "Datetime", "ISO8601"})


def _typed_time(value: Any) -> Any:
    """Return the text of a typed date-time literal, or None if the value is not one."""
    if not isinstance(value, dict) or len(value) != 2:
        return None
    if value.get("@type") in _TIME_TYPES and "@value" in value:
        return value["@value"]
    if value.get("type") in _TIME_TYPES and "value" in value:
        return value["value"]
    return None


def _plain(value: Any) -> Any:
    """Return a value with its JSON-LD typed literals replaced by their text (key-values)."""
    if isinstance(value, dict):
        if "@value" in value and set(value) <= {"@value", "@type", "@language"}:
            return value["@value"]
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _key_values(path: str, instance: dict[str, Any]) -> list[tuple[str, Any]]:
    """The values the schema checks: the key-values form of one attribute instance."""
    kind = instance["type"]
    value = instance[_VALUE_MEMBER[kind]]
    if kind == "Property" and isinstance(value, dict | list):
        return [(path, _plain(value))]
    if kind == "LanguageProperty" and isinstance(value, dict):
        return [(f"{path}.languageMap.{lang}", text) for lang, text in value.items()]
    if kind == "ListRelationship" and isinstance(value, list):
        objects = [item.get("object") if isinstance(item, dict) else item for item in value]
        return [(path, objects)]
    return [(path, value)]
