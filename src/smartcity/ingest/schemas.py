"""The Smart Data Models JSON Schemas, loaded offline, compiled once per entity type.

A catalog reads every `*schema.json` under the folders it is given and registers each by its
`$id` in a `referencing` registry, so the `$ref`s between them (`common-schema.json`,
`device-schema.json`, ...) resolve from those files; nothing is ever fetched.

A `$ref` that no loaded file answers (the shared models point at `Environment-schema.json`,
`device-schema.json`, `weather-schema.json` and `alert-schema.json`, which are not among them)
is handled on purpose: the missing part is registered as an empty schema, which accepts
anything, so the rest of the type is still checked; the catalog logs each such reference once
and lists them in `unresolved`. An operator closes the gap by adding the missing file to one of
the folders (it is found by its `$id`).

The schemas describe whole entities in key-values form. An update is partial, so a type is
compiled into one validator per attribute: the attribute's value (its key-values form) is
checked against every `properties` entry that the type's `allOf` chain gives it, fully (types,
enums, bounds, formats, patterns), while the entity-level `required` lists are not applied.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urldefrag, urljoin

import orjson
import structlog
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from smartcity.core.errors import ConfigurationError
from smartcity.ingest.fastcheck import Predicate, compile_predicate, resolve_pointer
from smartcity.ingest.units import UNITS, Unit, unit_in_description

log = structlog.get_logger(__name__)

Document = dict[str, Any]
DATE_TIME: Final = "date-time"
_RANGE_KEYWORDS: Final = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _rfc3339(value: object) -> bool:
    """Check a date-time as RFC 3339 wants it: date, time and an offset."""
    if not isinstance(value, str):
        return True
    text = value.strip()
    if len(text) < 20 or text[10] not in "Tt ":
        return False
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return False
    return moment.tzinfo is not None


_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")


def _uri(value: object) -> bool:
    """Check a URI as RFC 3986 writes one: a scheme, then only the characters it allows."""
    return not isinstance(value, str) or _URI.match(value) is not None


FORMATS: Final = FormatChecker()
"""The format checks applied: jsonschema's own, with date-time and uri checked here (jsonschema
needs extra packages for those and skips them silently without)."""
FORMATS.checks(DATE_TIME)(_rfc3339)
FORMATS.checks("uri")(_uri)


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a value does not fit its schema."""

    reason: str
    """'out-of-range' (a bound of the schema) or 'schema' (anything else)."""
    path: str
    """Where in the value, as '.member[index]' after the attribute's name ('' for the value)."""
    message: str


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """How one attribute of one type is checked, and what its schema says about its value."""

    name: str
    validator: Draft202012Validator
    time_paths: frozenset[tuple[str | None, ...]]
    """Where in the value the schema wants a date-time: () is the value itself, a name a
    member, None every item of an array (those are normalized to UTC before the check)."""
    unit: Unit | None
    """The unit the model wants the value in, if it says (in the description, or a 0-1 range)."""
    fast: Predicate | None
    """The same verdict as `validator`, faster (None: the schema needs jsonschema itself)."""

    def violation(self, value: Any) -> Violation | None:
        """Return why the key-values form of the attribute is invalid, or None."""
        if self.fast is not None and self.fast(value):
            return None  # a predicate says no only when jsonschema will: it explains why
        error = best_match(self.validator.iter_errors(value))
        if error is None:
            return None
        return Violation(_reason(error), _json_path(error), error.message)


def _reason(error: ValidationError) -> str:
    leaf = error
    while leaf.context:
        leaf = best_match(leaf.context) or leaf.context[0]
    return "out-of-range" if leaf.validator in _RANGE_KEYWORDS else "schema"


def _json_path(error: ValidationError) -> str:
    return "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )


@dataclass(frozen=True, slots=True)
class TypeShape:
    """The compiled rules of one entity type, one per attribute its schema describes."""

    entity_type: str
    schema_id: str
    rules: dict[str, AttributeRule]


def _plant(document: Document, fragment: str) -> None:
    """Make a pointer lead to an empty schema in a document of placeholders."""
    node = document
    for raw in fragment.strip("/").split("/") if fragment.strip("/") else ():
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        node = node.setdefault(part, {})


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _type_name(document: Document, path: Path) -> str:
    """The entity type a model's schema describes: its `type` enum, else its folder's name."""
    for member in [document, *document.get("allOf", [])]:
        enum = (
            member.get("properties", {}).get("type", {}).get("enum")
            if isinstance(member, dict)
            else None
        )
        if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
            return enum[0]
    return path.parent.name


class SchemaCatalog:
    """Smart Data Models schemas by entity type, from local folders; compiled on first use."""

    def __init__(self, folders: Sequence[Path | str] = ()) -> None:
        self.folders = [Path(folder) for folder in folders]
        self._documents: dict[str, Document] = {}
        self._types: dict[str, str] = {}
        self.unresolved: dict[str, set[str]] = {}
        """Each `$ref` no loaded file answers, with the schemas that use it."""
        for folder in self.folders:
            self._load_folder(folder)
        self._fill_unresolved()
        self.registry: Registry[Any] = (
            Registry()
            .with_resources(
                (uri, Resource.from_contents(document, default_specification=DRAFT202012))
                for uri, document in self._documents.items()
            )
            .crawl()
        )
        self._shapes: dict[str, TypeShape] = {}
        self._lock = threading.Lock()

    def _load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ConfigurationError(
                f"schema folder {folder} does not exist (SMARTCITY_INGEST_SCHEMA_DIRS)"
            )
        for path in sorted(folder.rglob("*schema.json")):
            try:
                document = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as error:
                raise ConfigurationError(f"schema {path} is not JSON: {error}") from error
            uri = document.get("$id") if isinstance(document, dict) else None
            if not isinstance(uri, str):
                continue  # nothing can refer to it, and it names no model
            is_model = path.name == "schema.json"
            if uri in self._documents:
                if not is_model:
                    continue  # a second copy of a shared file: the first wins
                # A model published with another model's $id (StreetlightModel has
                # Streetlight's): kept under its own file's URI, so both models are checked.
                uri = path.resolve().as_uri()
                document = {**document, "$id": uri}
            self._documents[uri] = document
            if is_model:
                self._add_model(_type_name(document, path), path, uri)

    def _add_model(self, entity_type: str, path: Path, uri: str) -> None:
        if entity_type in self._types and path.parent.name not in self._types:
            # A model whose type enum names another model's type (a copy-paste slip, as in
            # TrafficEnvironmentImpactForecast): its folder names it.
            log.warning(
                "schema names a type another schema has; its folder's name is used",
                schema=str(path),
                named=entity_type,
                used=path.parent.name,
            )
            entity_type = path.parent.name
        self._types.setdefault(entity_type, uri)

    def _fill_unresolved(self) -> None:
        placeholders: dict[str, Document] = {}
        for uri, document in list(self._documents.items()):
            for ref in set(_refs(document)):
                target, fragment = urldefrag(urljoin(uri, ref))
                known = self._documents.get(target)
                try:
                    if known is None:
                        raise KeyError(target)
                    resolve_pointer(known, fragment)
                except KeyError:
                    self.unresolved.setdefault(f"{target}#{fragment}", set()).add(uri)
                    if known is None:
                        _plant(placeholders.setdefault(target, {}), fragment)
                    else:
                        _plant(known, fragment)
        self._documents.update(placeholders)
        if self.unresolved:
            log.warning(
                "schema $refs not found in the schema folders: those parts are not checked; "
                "add the files that have these $ids to a schema folder",
                refs=sorted(self.unresolved),
            )

    @property
    def types(self) -> list[str]:
        """The entity types the catalog has a schema for."""
        return sorted(self._types)

    def shape(self, entity_type: str) -> TypeShape | None:
        """Return the compiled rules of a type, or None if the catalog has no schema for it."""
        shape = self._shapes.get(entity_type)
        if shape is not None or entity_type not in self._types:
            return shape
        with self._lock:
            shape = self._shapes.get(entity_type)
            if shape is None:
                shape = self._compile(entity_type)
                self._shapes[entity_type] = shape
        return shape

    def _compile(self, entity_type: str) -> TypeShape:
        root = self._types[entity_type]
        places: dict[str, list[str]] = {}
        self._collect(root, "", places, set())
        rules = {
            name: self._rule(name, uris)
            for name, uris in places.items()
            if name not in ("id", "type")
        }
        return TypeShape(entity_type, root, rules)

    def _collect(
        self, uri: str, fragment: str, places: dict[str, list[str]], seen: set[str]
    ) -> None:
        """Gather where each property of an entity is described, through allOf and $ref."""
        key = f"{uri}#{fragment}"
        if key in seen:
            return
        seen.add(key)
        node = resolve_pointer(self._documents[uri], fragment)
        if not isinstance(node, dict):
            return
        if isinstance(node.get("$ref"), str):
            target, target_fragment = urldefrag(urljoin(uri, node["$ref"]))
            self._collect(target, target_fragment, places, seen)
        for index, _ in enumerate(node.get("allOf") or []):
            self._collect(uri, f"{fragment}/allOf/{index}", places, seen)
        for name in node.get("properties") or {}:
            escaped = name.replace("~", "~0").replace("/", "~1")
            places.setdefault(name, []).append(f"{uri}#{fragment}/properties/{escaped}")

    def _rule(self, name: str, uris: list[str]) -> AttributeRule:
        schema: Document = (
            {"$ref": uris[0]} if len(uris) == 1 else {"allOf": [{"$ref": u} for u in uris]}
        )
        validator = Draft202012Validator(schema, registry=self.registry, format_checker=FORMATS)
        facets = [self._resolved(uri) for uri in uris]
        return AttributeRule(
            name=name,
            validator=validator,
            time_paths=frozenset(p for uri in uris for p in self._time_paths(uri, (), 0)),
            unit=_wanted_unit(facets),
            fast=compile_predicate(schema, "", self._documents, FORMATS),
        )

    def _time_paths(
        self, uri: str, prefix: tuple[str | None, ...], depth: int
    ) -> Iterator[tuple[str | None, ...]]:
        """Yield the paths inside a value where its schema asks for a date-time."""
        node = self._resolved(uri)
        if depth > 6:
            return
        if node.get("format") == DATE_TIME:
            yield prefix
        base = self._location(uri)
        for keyword in ("anyOf", "oneOf", "allOf"):
            for index, _ in enumerate(node.get(keyword) or []):
                yield from self._time_paths(f"{base}/{keyword}/{index}", prefix, depth + 1)
        for name in node.get("properties") or {}:
            escaped = name.replace("~", "~0").replace("/", "~1")
            yield from self._time_paths(f"{base}/properties/{escaped}", (*prefix, name), depth + 1)
        if isinstance(node.get("items"), dict):
            yield from self._time_paths(f"{base}/items", (*prefix, None), depth + 1)

    def _location(self, uri: str) -> str:
        """Return the URI (document#pointer) of the schema a chain of plain `$ref`s ends at."""
        for _ in range(16):
            document, fragment = urldefrag(uri)
            node = resolve_pointer(self._documents[document], fragment)
            if not isinstance(node, dict) or not _plain_ref(node):
                return f"{document}#{fragment}"
            uri = urljoin(document, node["$ref"])
        return uri

    def _resolved(self, uri: str) -> Document:
        """Return the schema at a URI, following a chain of plain `$ref`s."""
        document, fragment = urldefrag(self._location(uri))
        node = resolve_pointer(self._documents[document], fragment)
        return node if isinstance(node, dict) else {}


def _plain_ref(node: Document) -> bool:
    """Tell whether a schema is only a `$ref` (with at most a description beside it)."""
    return isinstance(node.get("$ref"), str) and set(node) <= {"$ref", "description"}


def _wanted_unit(facets: list[Document]) -> Unit | None:
    for schema in facets:
        unit = unit_in_description(str(schema.get("description", "")))
        if unit is not None:
            return unit
    for schema in facets:
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("type") == "number" and low == 0 and high == 1:
            return UNITS["C62"]  # a fraction: a percentage is divided by 100
    return None
