"""Parse NGSI-LD entities (normalized or concise) into the stored form, checking every rule.

Rendering lives in ``render.py``; ``render_entity`` is re-exported here for convenience.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from smartcity.broker.contexts import ActiveContext
from smartcity.broker.render import looks_like_geometry, render_entity
from smartcity.core.entity import (
    ATTRIBUTE_TYPES,
    ENTITY_MEMBERS,
    LOCATION,
    OBSERVATION_SPACE,
    OPERATION_SPACE,
    RESERVED_MEMBERS,
    VALUE_MEMBER,
    Attributes,
    Instance,
    StoredEntity,
)
from smartcity.core.errors import BadRequestData
from smartcity.core.geo import parse_geometry

__all__ = [
    "EntityFragment",
    "is_uri",
    "parse_attributes",
    "parse_entity",
    "parse_entity_fragment",
    "render_entity",
]

_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")
_BAD_NAME: Final = re.compile(r"[\s<>\"'=;()\\\x00-\x1f\x7f]")
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_LANGUAGE_TAG: Final = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|@none")
_GEO_NAMES: Final = frozenset({LOCATION, OBSERVATION_SPACE, OPERATION_SPACE})
_VALUE_MEMBERS: Final = frozenset(VALUE_MEMBER.values())
_TYPE_OF_MEMBER: Final = {
    "value": "Property",
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "json": "JsonProperty",
    "vocab": "VocabProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
# Members a client may send but that the broker sets or ignores.
_IGNORED: Final = (
    RESERVED_MEMBERS
    - _VALUE_MEMBERS
    - {"type", "objectType", "observedAt"}
    - {
        "unitCode",
        "datasetId",
    }
)
_TYPE_LIST: Final = ", ".join(sorted(ATTRIBUTE_TYPES))
_MAX_DEPTH: Final = 16


@dataclass(slots=True)
class EntityFragment:
    """A partial entity (merge-patch or update body): id and type may be absent.

    ``deleted`` lists the expanded names of attributes set to null; a sub-attribute set to null
    is kept in its instance as None.
    """

    id: str | None
    types: list[str] | None
    attrs: Attributes
    scopes: list[str] | None = None
    deleted: list[str] = field(default_factory=list)


# Database indexes hold bounded keys (PostgreSQL: 2,704 bytes per B-tree entry).
MAX_ID_LENGTH = 512
MAX_NAME_LENGTH = 256


def _refuse_nul(body: Any) -> None:
    """Refuse what no database stores: a NUL character in text, an integer beyond 64 bits."""
    try:
        encoded = orjson.dumps(body)
    except TypeError as error:
        raise BadRequestData(f"the body cannot be stored: {error}") from None
    if b"\\u0000" in encoded:
        raise BadRequestData("text in the body contains the NUL character (\\u0000); remove it")


def is_uri(text: object) -> bool:
    """Tell whether a value is an absolute URI (a scheme, a colon, and more)."""
    return isinstance(text, str) and _URI.fullmatch(text) is not None


def parse_entity(body: Any, ctx: ActiveContext, now: str) -> StoredEntity:
    """Check an NGSI-LD entity and return its stored form, stamped with `now`."""
    if not isinstance(body, dict):
        raise BadRequestData(f"an entity must be a JSON object, not {_kind(body)}")
    _refuse_nul(body)
    if "id" not in body:
        raise BadRequestData("the entity has no 'id': give it a URI such as urn:ngsi-ld:Type:1")
    if "type" not in body:
        raise BadRequestData(f"entity {body['id']!r} has no 'type': give its entity type")
    entity_id = _entity_id(body["id"])
    parser = _Parser(ctx, now, allow_null=False)
    return StoredEntity(
        id=entity_id,
        types=_types(body["type"], ctx),
        attrs=parser.attributes(body, skip=ENTITY_MEMBERS),
        scopes=_scopes(body["scope"]) if "scope" in body else [],
        created_at=now,
        modified_at=now,
    )


def parse_attributes(body: Any, ctx: ActiveContext, now: str) -> Attributes:
    """Check the attributes of an attribute-update body and return them in stored form."""
    if not isinstance(body, dict):
        raise BadRequestData(f"the attributes must be a JSON object, not {_kind(body)}")
    for member in ("id", "type", "scope"):
        if member in body:
            raise BadRequestData(
                f"{member!r} is not an attribute and cannot be given with attributes only"
            )
    _refuse_nul(body)
    return _Parser(ctx, now, allow_null=False).attributes(body, skip=ENTITY_MEMBERS)


def parse_entity_fragment(body: Any, ctx: ActiveContext, now: str) -> EntityFragment:
    """Check a partial entity (id and type optional; null deletes) and return it expanded."""
    if not isinstance(body, dict):
        raise BadRequestData(f"the body must be a JSON object, not {_kind(body)}")
    _refuse_nul(body)
    parser = _Parser(ctx, now, allow_null=True)
    attrs = parser.attributes(body, skip=ENTITY_MEMBERS)
    return EntityFragment(
        id=_entity_id(body["id"]) if "id" in body else None,
        types=_types(body["type"], ctx) if "type" in body else None,
        attrs=attrs,
        scopes=_scopes(body["scope"]) if "scope" in body else None,
        deleted=parser.deleted,
    )


def _entity_id(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"the entity id must be a string URI, not {_kind(value)}")
    if len(value) > MAX_ID_LENGTH:
        raise BadRequestData(
            f"the entity id {value[:40]!r}... is {len(value)} characters long; "
            f"ids are limited to {MAX_ID_LENGTH}"
        )
    if not is_uri(value):
        raise BadRequestData(
            f"the entity id {value!r} is not an absolute URI: "
            "give it a scheme, e.g. 'urn:ngsi-ld:<Type>:<id>'"
        )
    return value


def _types(value: Any, ctx: ActiveContext) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("the entity 'type' is an empty list: give at least one type")
    expanded: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise BadRequestData(
                f"entity type must be a string or a list of strings, not {_kind(name)}"
            )
        _check_name(name, "entity type")
        iri = ctx.expand(name)
        if iri not in expanded:
            expanded.append(iri)
    return expanded


def _scopes(value: Any) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
            raise BadRequestData(
                f"scope must be a string like '/Madrid/Gardens' or a list of them, not {scope!r}"
            )
    return list(scopes)


def _check_name(name: str, what: str) -> None:
    if not name:
        raise BadRequestData(f"an {what} name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequestData(
            f"the {what} name {name[:40]!r}... is {len(name)} characters long; "
            f"names are limited to {MAX_NAME_LENGTH}"
        )
    if _BAD_NAME.search(name) or name.startswith("@"):
        raise BadRequestData(
            f"the {what} name {name!r} is not valid: names cannot start with '@' or contain "
            "whitespace, control characters or any of < > \" ' = ; ( ) \\"
        )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


class _Parser:
    """Parse attributes under one @context and timestamp."""

    __slots__ = ("allow_null", "ctx", "deleted", "now")

    def __init__(self, ctx: ActiveContext, now: str, *, allow_null: bool) -> None:
        self.ctx = ctx
        self.now = now
        self.allow_null = allow_null
        self.deleted: list[str] = []

    def attributes(self, body: dict[str, Any], *, skip: frozenset[str]) -> Attributes:
        attrs: Attributes = {}
        given: dict[str, str] = {}
        for key, raw in body.items():
            if key in skip:
                continue
            name = self._name(key, "attribute", given)
            if raw is None and self.allow_null:
                self.deleted.append(name)
                continue
            attrs[name] = self.attribute(key, name, raw)
        return attrs

    def attribute(self, key: str, name: str, raw: Any) -> list[Instance]:
        if not (isinstance(raw, list) and raw and all(_looks_like_instance(i) for i in raw)):
            return [self.instance(key, name, raw, 0)]
        instances = [self.instance(key, name, item, 0) for item in raw]
        seen: set[str | None] = set()
        for instance in instances:
            dataset_id = instance.get("datasetId")
            if dataset_id in seen:
                which = f"datasetId {dataset_id!r}" if dataset_id else "no datasetId (default)"
                raise BadRequestData(
                    f"attribute {key!r} has two instances with {which}: "
                    "each instance needs its own datasetId"
                )
            seen.add(dataset_id)
        return instances

    def instance(self, key: str, name: str, raw: Any, depth: int) -> Instance:
        if raw is None:
            raise BadRequestData(
                f"attribute {key!r} is null: give a value, or delete the attribute instead"
            )
        if depth > _MAX_DEPTH:
            raise BadRequestData(f"attribute {key!r} nests more than {_MAX_DEPTH} sub-attributes")
        if not isinstance(raw, dict):
            raw = {"value": raw}
        elif looks_like_geometry(raw) and not _VALUE_MEMBERS.intersection(raw):
            raw = {"type": "GeoProperty", "value": raw}
        kind = raw.get("type")
        if kind is None:
            kind = _infer_type(key, raw)
        elif kind not in ATTRIBUTE_TYPES:
            raise BadRequestData(
                f"attribute {key!r} has type {kind!r}; the type must be one of {_TYPE_LIST} "
                '(to give an object as a value, wrap it: {"value": {...}})'
            )
        if name in _GEO_NAMES and kind != "GeoProperty":
            raise BadRequestData(
                f"{key!r} must be a GeoProperty whose value is a GeoJSON geometry, not a {kind}"
            )
        member = VALUE_MEMBER[kind]
        for other in _VALUE_MEMBERS.intersection(raw):
            if other != member:
                raise BadRequestData(
                    f"{kind} {key!r} cannot have {other!r}: a {kind} carries {member!r}"
                )
        if member not in raw:
            raise BadRequestData(f"{kind} {key!r} has no {member!r}: give its {member}")
        instance: Instance = {"type": kind, member: self._value(kind, key, raw[member])}
        given: dict[str, str] = {}
        for sub, value in raw.items():
            if sub == "type" or sub == member or sub in _IGNORED:
                continue
            if sub == "observedAt":
                instance[sub] = _datetime(key, value)
            elif sub == "unitCode":
                if not isinstance(value, str) or not value:
                    raise BadRequestData(f"unitCode of {key!r} must be a UN/CEFACT code string")
                instance[sub] = value
            elif sub == "datasetId":
                if not is_uri(value):
                    raise BadRequestData(f"datasetId of {key!r} must be a URI, not {value!r}")
                instance[sub] = value
            elif sub == "objectType":
                if kind not in ("Relationship", "ListRelationship"):
                    raise BadRequestData(f"objectType is for relationships; {key!r} is a {kind}")
                instance[sub] = self._vocab(key, value, "objectType")
            else:
                sub_name = self._name(sub, "sub-attribute", given)
                if value is None and self.allow_null:
                    instance[sub_name] = None
                elif isinstance(value, list) and value and all(map(_looks_like_instance, value)):
                    raise BadRequestData(
                        f"sub-attribute {sub!r} of {key!r} has several instances; "
                        "a sub-attribute has one"
                    )
                else:
                    instance[sub_name] = self.instance(sub, sub_name, value, depth + 1)
        if depth == 0:
            instance["createdAt"] = self.now
            instance["modifiedAt"] = self.now
        return instance

    def _name(self, key: str, what: str, given: dict[str, str]) -> str:
        _check_name(key, what)
        name = self.ctx.expand(key)
        if name.startswith("@"):
            raise BadRequestData(f"{what} {key!r} is an alias of the JSON-LD keyword {name}")
        if name in given:
            raise BadRequestData(
                f"{what} {key!r} is given twice (also as {given[name]!r}): both expand to {name}"
            )
        given[name] = key
        return name

    def _value(self, kind: str, key: str, value: Any) -> Any:
        if value is None:
            member = VALUE_MEMBER[kind]
            raise BadRequestData(
                f"{kind} {key!r} has {member}: null; give a value, or delete the attribute"
            )
        if kind == "GeoProperty":
            return _geometry(key, value)
        if kind == "Relationship":
            return _objects(key, value, "object")
        if kind == "LanguageProperty":
            return _language_map(key, value)
        if kind == "VocabProperty":
            return self._vocab(key, value, "vocab")
        if kind == "ListProperty" and not isinstance(value, list):
            raise BadRequestData(f"valueList of {key!r} must be an array")
        if kind == "ListRelationship":
            if not isinstance(value, list):
                raise BadRequestData(f"objectList of {key!r} must be an array of URIs")
            for item in value:
                _objects(key, item["object"] if isinstance(item, dict) else item, "objectList")
        return value

    def _vocab(self, key: str, value: Any, member: str) -> Any:
        names = value if isinstance(value, list) else [value]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise BadRequestData(f"{member} of {key!r} must be a term or a list of terms")
        expanded = [self.ctx.expand(n) for n in names]
        return expanded if isinstance(value, list) else expanded[0]


def _looks_like_instance(item: Any) -> bool:
    return isinstance(item, dict) and (
        item.get("type") in ATTRIBUTE_TYPES or not _VALUE_MEMBERS.isdisjoint(item)
    )


def _infer_type(key: str, raw: dict[str, Any]) -> str:
    members = sorted(_VALUE_MEMBERS.intersection(raw))
    if len(members) > 1:
        raise BadRequestData(
            f"attribute {key!r} has both {members[0]!r} and {members[1]!r}: give one, or a 'type'"
        )
    if not members:
        raise BadRequestData(
            f"attribute {key!r} has no 'type' and no 'value' (or 'object', 'languageMap', ...): "
            'give {"type": "Property", "value": ...}'
        )
    kind = _TYPE_OF_MEMBER[members[0]]
    if kind == "Property" and looks_like_geometry(raw["value"]):
        return "GeoProperty"
    return kind


def _geometry(key: str, value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list) or not members:
            raise BadRequestData(
                f"GeoProperty {key!r}: a GeometryCollection needs a non-empty 'geometries' array"
            )
        for member in members:
            _geometry(key, member)
        return value
    try:
        return parse_geometry(value)
    except BadRequestData as error:
        raise BadRequestData(f"GeoProperty {key!r} has an {error.detail}") from None


def _objects(key: str, value: Any, member: str) -> Any:
    targets = value if isinstance(value, list) else [value]
    if not targets:
        raise BadRequestData(f"{member} of {key!r} is an empty array: give the target entity URI")
    for target in targets:
        if not is_uri(target):
            raise BadRequestData(
                f"{member} of relationship {key!r} must be an entity URI, not {target!r}"
            )
    return value


def _language_map(key: str, value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise BadRequestData(
            f"languageMap of {key!r} must be an object of language tag -> string, "
            'e.g. {"en": "Park", "ko": "공원"}'
        )
    for tag, text in value.items():
        if not _LANGUAGE_TAG.fullmatch(tag):
            raise BadRequestData(f"languageMap of {key!r} has {tag!r}, not a language tag")
        texts = text if isinstance(text, list) else [text]
        if not all(isinstance(t, str) for t in texts):
            raise BadRequestData(f"languageMap of {key!r} must map {tag!r} to a string")
    return value


def _datetime(key: str, value: Any) -> str:
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    valid = match is not None
    if match is not None:
        year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
        try:
            datetime(year, month, day, hour, minute, second)
        except ValueError:
            valid = False
    if not valid:
        raise BadRequestData(
            f"observedAt of {key!r} must be an ISO 8601 date-time such as "
            f"'2026-11-27T10:00:00Z', not {value!r}"
        )
    return str(value)
