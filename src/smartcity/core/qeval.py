"""Evaluate parsed queries against stored entities, their scopes and their types.

Every scalar compares through a *key*: ``("num", float)``, ``("txt", str)`` or ``("bool", bool)``.
Numbers compare as floats, strings by code point, and a string that is an ISO 8601 date-time with
a time zone first becomes a UTC timestamp ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, so that comparing the
text compares the moments. The SQL index stores the same keys (`storage.indexing`), which is what
lets the SQL compiler (`storage.sqlfilter`) answer most queries exactly.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

from smartcity.core.entity import JSON, RESERVED_MEMBERS, Instance, StoredEntity, instance_value
from smartcity.core.patterns import compile_pattern, search
from smartcity.core.qlang import (
    And,
    AttrPath,
    Compare,
    DateTime,
    Exists,
    Match,
    Node,
    Or,
    Range,
    ScopePattern,
    TypeName,
    Value,
    ValueList,
    parse_datetime,
)

Key: TypeAlias = tuple[str, Any]
Predicate: TypeAlias = Callable[[Key], bool]

TEMPORAL_TYPES: Final = frozenset({"DateTime", "Date", "Time"})
TIMESTAMP_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
TIMESTAMP_LENGTH: Final = 27
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def format_timestamp(moment: datetime) -> str:
    """Format an aware moment as a fixed-width UTC timestamp (sorts as it should)."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def is_timestamp(text: str) -> bool:
    """Tell whether a text has the shape of a normalised UTC timestamp."""
    return len(text) == TIMESTAMP_LENGTH and _TIMESTAMP.match(text) is not None


def normalize_text(text: str) -> str:
    """Return the comparison form of a string: a zoned date-time becomes a UTC timestamp."""
    if len(text) < 8 or not (text[:4].isascii() and text[:4].isdigit()):
        return text
    moment = parse_datetime(text)
    if moment is None or moment.utcoffset() is None:
        return text
    try:
        return format_timestamp(moment)
    except OverflowError:
        return text


def as_number(number: int | float) -> float:
    """Return a number as the float the index stores (huge integers become infinities)."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def value_key(value: JSON) -> Key | None:
    """Return the comparison key of one scalar value, None for anything else."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        number = as_number(value)
        return None if math.isnan(number) else ("num", number)
    if isinstance(value, str):
        return ("txt", normalize_text(value))
    if (
        isinstance(value, dict)
        and value.get("@type") in TEMPORAL_TYPES
        and isinstance(value.get("@value"), str)
    ):
        return ("txt", normalize_text(value["@value"]))
    return None


def value_keys(value: JSON) -> list[Key]:
    """Return the keys of a value: itself if scalar, its scalar elements if an array."""
    items = value if isinstance(value, list) else [value]
    return [key for item in items if (key := value_key(item)) is not None]


def instance_keys(instance: Instance) -> list[Key]:
    """Return the keys of what one attribute instance holds, as queries compare it."""
    kind = instance.get("type", "Property")
    if kind == "GeoProperty":
        return []
    if kind == "LanguageProperty":
        language_map = instance.get("languageMap")
        if not isinstance(language_map, dict):
            return []
        return [key for text in language_map.values() for key in value_keys(text)]
    if kind == "ListRelationship":
        objects = instance.get("objectList")
        if not isinstance(objects, list):
            return []
        return value_keys([o.get("object") if isinstance(o, dict) else o for o in objects])
    return value_keys(instance_value(instance))


def literal_key(value: Value) -> Key:
    """Return the key of a query literal; a date-time gets kind ``ts`` (timestamps only)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", as_number(value))
    if isinstance(value, str):
        return ("txt", normalize_text(value))
    if isinstance(value, DateTime):
        moment = parse_datetime(value.text)
        if moment is not None:
            if moment.utcoffset() is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                return ("ts", format_timestamp(moment))
            except OverflowError:
                pass
    return ("txt", normalize_text(value.text))


def key_matches(op: str, key: Key, literal: Key) -> bool:
    """Tell whether ``key op literal`` holds; keys of different kinds never compare."""
    kind, value = key
    literal_kind, literal_value = literal
    if literal_kind == "ts":
        if kind != "txt" or not is_timestamp(value):
            return False
    elif kind != literal_kind:
        return False
    return _OPS[op](value, literal_value)


def compare_predicate(node: Compare) -> Predicate:
    """Return what one key must satisfy for a comparison (``!=`` gives the ``==`` test)."""
    value = node.value
    if isinstance(value, ValueList):
        literals = [literal_key(item) for item in value.values]
        return lambda key: any(key_matches("==", key, literal) for literal in literals)
    if isinstance(value, Range):
        low, high = literal_key(value.low), literal_key(value.high)
        return lambda key: key_matches(">=", key, low) and key_matches("<=", key, high)
    literal = literal_key(value)
    op = "==" if node.op == "!=" else node.op
    return lambda key: key_matches(op, key, literal)


def match_predicate(node: Match) -> Predicate:
    """Return what one key must satisfy for a pattern match (strings only)."""
    pattern = compile_pattern(node.pattern)
    return lambda key: key[0] == "txt" and search(pattern, key[1])


def evaluate(expr: Node, entity: StoredEntity) -> bool:
    """Tell whether an entity satisfies a ``q`` tree whose names are expanded."""
    if isinstance(expr, And):
        return all(evaluate(item, entity) for item in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(item, entity) for item in expr.items)
    if isinstance(expr, Exists):
        found = any(present for present, _ in resolve(expr.path, entity))
        return found != expr.negated
    if isinstance(expr, Compare):
        return _holds(expr.path, entity, compare_predicate(expr), expr.op == "!=")
    if isinstance(expr, Match):
        return _holds(expr.path, entity, match_predicate(expr), expr.negated)
    raise TypeError(f"not a q expression: {expr!r}")


def _holds(path: AttrPath, entity: StoredEntity, predicate: Predicate, negated: bool) -> bool:
    """Tell whether any instance has the path and (unless negated) a matching key.

    Negated, an instance holds when it has the path and none of its keys matches.
    """
    for present, keys in resolve(path, entity):
        if present and any(predicate(key) for key in keys) != negated:
            return True
    return False


def resolve(path: AttrPath, entity: StoredEntity) -> Iterator[tuple[bool, list[Key]]]:
    """Yield, per instance of the attribute, whether the path exists there and its keys."""
    for instance in entity.attrs.get(path.attr, []):
        yield _resolve_instance(path, instance)


def _resolve_instance(path: AttrPath, instance: Instance) -> tuple[bool, list[Key]]:
    node = instance
    found: list[JSON] | None = None  # None while the path still walks sub-attributes
    for name, raw in zip(path.sub, path.raw_sub, strict=True):
        if found is None:
            child = node.get(name) if name not in RESERVED_MEMBERS else None
            if isinstance(child, dict):
                node = child
                continue
            found = [instance_value(node)]
        found = _step(found, raw)
    if found is None:
        if path.meta is None and not path.keys:
            return True, instance_keys(node)
        found = [node.get(path.meta) if path.meta is not None else instance_value(node)]
    elif path.meta is not None:
        found = _step(found, path.meta)
    for key in path.keys:
        found = _step(found, key)
    found = [value for value in found if value is not None]
    return bool(found), [key for value in found for key in value_keys(value)]


def _step(values: list[JSON], key: str) -> list[JSON]:
    """Go one key deeper into compound values (into each element of an array)."""
    out: list[JSON] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        out.extend(item[key] for item in items if isinstance(item, dict) and key in item)
    return [value for value in out if value is not None]


def evaluate_types(expr: Node, types: Collection[str]) -> bool:
    """Tell whether an entity with these (expanded) types satisfies a type selection."""
    if isinstance(expr, And):
        return all(evaluate_types(item, types) for item in expr.items)
    if isinstance(expr, Or):
        return any(evaluate_types(item, types) for item in expr.items)
    if isinstance(expr, TypeName):
        return expr.name in types
    raise TypeError(f"not a type selection: {expr!r}")


def evaluate_scope(expr: Node, scopes: Collection[str]) -> bool:
    """Tell whether an entity with these scopes satisfies a ``scopeQ`` tree."""
    if isinstance(expr, And):
        return all(evaluate_scope(item, scopes) for item in expr.items)
    if isinstance(expr, Or):
        return any(evaluate_scope(item, scopes) for item in expr.items)
    if isinstance(expr, ScopePattern):
        return any(scope_matches(expr, scope) for scope in scopes)
    raise TypeError(f"not a scopeQ expression: {expr!r}")


def scope_matches(pattern: ScopePattern, scope: str) -> bool:
    """Tell whether one scope fits a pattern (``+`` one level, a final ``#`` any depth)."""
    wanted = ("", *pattern.segments)
    have = scope.split("/")
    if wanted[-1] == "#":
        wanted = wanted[:-1]
        have = have[: len(wanted)]
    if len(have) != len(wanted):
        return False
    return all(want in ("+", segment) for want, segment in zip(wanted, have, strict=True))
