"""Plain Python predicates for the JSON Schema keywords the Smart Data Models use.

jsonschema walks a schema on every call, which costs 40-200 µs for a date-time or a GeoJSON
`location`: too much for thousands of readings a second. `compile_predicate` turns a schema
into nested closures with the same answer as `Draft202012Validator.is_valid`, for a subset of
keywords (types, enums, bounds, lengths, patterns, formats, items, properties, required,
additionalProperties, allOf/anyOf/oneOf/not, $ref). A schema that uses any other keyword gets
no predicate (None) and is checked by jsonschema alone. jsonschema stays the authority: when a
predicate says no, jsonschema is asked again for the error to report. The tests compare both on
every attribute of every model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote, urldefrag, urljoin

from jsonschema import Draft202012Validator, FormatChecker

Predicate = Callable[[Any], bool]
Documents = Mapping[str, Any]


class NotCompilable(Exception):
    """The schema uses a keyword (or a form of one) the predicates do not reproduce."""


_KNOWN: Final = frozenset(Draft202012Validator.VALIDATORS) | {"$ref", "$id", "$schema"}
"""Keywords jsonschema acts on; any other member of a schema is an annotation it ignores."""
_SUPPORTED: Final = frozenset(
    {
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "additionalProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "$ref",
        "$schema",
    }
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: Final[dict[str, Predicate]] = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def resolve_pointer(document: Any, fragment: str) -> Any:
    """Follow a JSON pointer (a URI fragment) into a document; KeyError if it leads nowhere."""
    node = document
    for raw in fragment.strip("/").split("/") if fragment.strip("/") else ():
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(fragment)
    return node


class _Compiler:
    def __init__(self, documents: Documents, formats: FormatChecker) -> None:
        self.documents = documents
        self.formats = formats
        self.compiling: set[str] = set()

    def schema(self, schema: Any, base: str) -> Predicate:
        if schema is True or schema == {}:
            return lambda _: True
        if schema is False:
            return lambda _: False
        if not isinstance(schema, dict):
            raise NotCompilable(repr(schema))
        acting = {k for k in schema if k in _KNOWN}
        if not acting <= _SUPPORTED or "$id" in schema:
            raise NotCompilable(", ".join(sorted(acting - _SUPPORTED)) or "$id")
        made = [self.keyword(name, schema[name], schema, base) for name in sorted(acting)]
        return _every([check for check in made if check is not None])

    def ref(self, ref: str, base: str) -> Predicate:
        target = urljoin(base, ref)
        if target in self.compiling:
            raise NotCompilable(f"recursive $ref {target}")
        document, fragment = urldefrag(target)
        try:
            node = resolve_pointer(self.documents[document], fragment)
        except KeyError as error:
            raise NotCompilable(f"unresolvable $ref {target}") from error
        self.compiling.add(target)
        try:
            return self.schema(node, document)
        finally:
            self.compiling.discard(target)

    def keyword(self, name: str, value: Any, schema: dict[str, Any], base: str) -> Predicate | None:
        method = getattr(self, "k_" + name.lstrip("$"), None)
        if method is None:
            return None  # $schema: nothing to check
        check: Predicate | None = method(value, schema, base)
        return check

    def k_ref(self, value: Any, _: Any, base: str) -> Predicate:
        return self.ref(value, base)

    def k_type(self, value: Any, *_: Any) -> Predicate:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(n in _TYPES for n in names):
            raise NotCompilable(f"type {value!r}")
        tests = [_TYPES[n] for n in names]
        return tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests)

    def k_enum(self, value: Any, *_: Any) -> Predicate:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise NotCompilable("enum of other than strings")
        choices = frozenset(value)
        return lambda v: isinstance(v, str) and v in choices

    def k_const(self, value: Any, *_: Any) -> Predicate:
        if not isinstance(value, str):
            raise NotCompilable("const other than a string")
        return lambda v: isinstance(v, str) and v == value

    def _bound(self, value: Any, test: Callable[[float], bool]) -> Predicate:
        if not _is_number(value):
            raise NotCompilable(f"bound {value!r}")
        return lambda v: not _is_number(v) or test(v)

    def k_minimum(self, value: Any, *_: Any) -> Predicate:
        return self._bound(value, lambda v: v >= value)

    def k_maximum(self, value: Any, *_: Any) -> Predicate:
        return self._bound(value, lambda v: v <= value)

    def k_exclusiveMinimum(self, value: Any, *_: Any) -> Predicate:
        return self._bound(value, lambda v: v > value)

    def k_exclusiveMaximum(self, value: Any, *_: Any) -> Predicate:
        return self._bound(value, lambda v: v < value)

    def _count(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise NotCompilable(f"length {value!r}")
        return value

    def k_minLength(self, value: Any, *_: Any) -> Predicate:
        least = self._count(value)
        return lambda v: not isinstance(v, str) or len(v) >= least

    def k_maxLength(self, value: Any, *_: Any) -> Predicate:
        most = self._count(value)
        return lambda v: not isinstance(v, str) or len(v) <= most

    def k_minItems(self, value: Any, *_: Any) -> Predicate:
        least = self._count(value)
        return lambda v: not isinstance(v, list) or len(v) >= least

    def k_maxItems(self, value: Any, *_: Any) -> Predicate:
        most = self._count(value)
        return lambda v: not isinstance(v, list) or len(v) <= most

    def k_pattern(self, value: Any, *_: Any) -> Predicate:
        try:
            compiled = re.compile(value)
        except (re.error, TypeError) as error:
            raise NotCompilable(f"pattern {value!r}") from error
        return lambda v: not isinstance(v, str) or compiled.search(v) is not None

    def k_format(self, value: Any, *_: Any) -> Predicate | None:
        if value not in self.formats.checkers:
            return None  # jsonschema does not check this format either
        formats = self.formats
        return lambda v: formats.conforms(v, value)

    def k_items(self, value: Any, _: Any, base: str) -> Predicate:
        if not isinstance(value, dict | bool):
            raise NotCompilable("items as an array")
        each = self.schema(value, base)
        return lambda v: not isinstance(v, list) or all(each(item) for item in v)

    def k_properties(self, value: Any, _: Any, base: str) -> Predicate:
        if not isinstance(value, dict):
            raise NotCompilable("properties")
        members = [(name, self.schema(sub, base)) for name, sub in value.items()]
        return lambda v: (
            not isinstance(v, dict) or all(check(v[name]) for name, check in members if name in v)
        )

    def k_required(self, value: Any, *_: Any) -> Predicate:
        if not isinstance(value, list):
            raise NotCompilable("required")
        names = list(value)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def k_additionalProperties(self, value: Any, schema: dict[str, Any], base: str) -> Predicate:
        if "patternProperties" in schema:
            raise NotCompilable("patternProperties")
        declared = frozenset(schema.get("properties") or {})
        extra = self.schema(value, base)
        return lambda v: (
            not isinstance(v, dict)
            or all(extra(item) for name, item in v.items() if name not in declared)
        )

    def _branches(self, value: Any, base: str) -> list[Predicate]:
        if not isinstance(value, list) or not value:
            raise NotCompilable("an empty or malformed list of schemas")
        return [self.schema(sub, base) for sub in value]

    def k_allOf(self, value: Any, _: Any, base: str) -> Predicate:
        branches = self._branches(value, base)
        return lambda v: all(branch(v) for branch in branches)

    def k_anyOf(self, value: Any, _: Any, base: str) -> Predicate:
        branches = self._branches(value, base)
        return lambda v: any(branch(v) for branch in branches)

    def k_oneOf(self, value: Any, _: Any, base: str) -> Predicate:
        branches = self._branches(value, base)
        return lambda v: sum(1 for branch in branches if branch(v)) == 1

    def k_not(self, value: Any, _: Any, base: str) -> Predicate:
        inner = self.schema(value, base)
        return lambda v: not inner(v)


def _single_type_name(schema: Any) -> str | None:
    """The one value an object schema allows its required "type" member, if it says so."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    if "type" not in (schema.get("required") or []):
        return None
    enum = ((schema.get("properties") or {}).get("type") or {}).get("enum")
    if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
        return enum[0]
    return None


def _every(checks: list[Predicate]) -> Predicate:
    """One predicate true when all are (unrolled for the short lists schemas have)."""
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    if len(checks) == 3:
        first, second, third = checks
        return lambda v: first(v) and second(v) and third(v)
    return lambda v: all(check(v) for check in checks)


def compile_predicate(
    schema: Any, base: str, documents: Documents, formats: FormatChecker
) -> Predicate | None:
    """Return a predicate equal to jsonschema's verdict on `schema`, or None if none is made.

    `base` is the URI relative `$ref`s resolve against; `documents` are the schemas by URI.
    """
    try:
        return _Compiler(documents, formats).schema(schema, base)
    except NotCompilable:
        return None
