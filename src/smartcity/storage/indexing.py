"""Derive the query-index rows (``entity_index``) of one entity.

A row is ``(name, num, txt)``: ``@type`` and ``@scope`` rows name the entity's types and scopes;
every other row is one comparable value of a top-level attribute, keyed exactly as the
query evaluator keys it (`core.qeval.instance_keys`), so that SQL over the index and the evaluator
agree. An instance with no comparable value still leaves ``(name, None, None)``, for existence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from smartcity.core.entity import StoredEntity
from smartcity.core.qeval import Key, instance_keys

IndexRow: TypeAlias = tuple[str, float | None, str | None]

TYPE_NAME = "@type"
SCOPE_NAME = "@scope"
MULTI_PREFIX = "@multi "
"""``(MULTI_PREFIX + name, None, None)`` marks an attribute with more than one value."""


def multi_valued(name: str) -> str:
    """Return the index name that marks `name` as holding several values."""
    return MULTI_PREFIX + name


def index_rows(
    entity: StoredEntity, names: Iterable[str] | None = None, *, header: bool = True
) -> list[IndexRow]:
    """Return the index rows of an entity, without duplicates, in a stable order.

    `names` limits the rows to those attributes (an update re-indexes what it changed), and
    `header=False` leaves out the type and scope rows.
    """
    rows: list[IndexRow] = []
    if header:
        rows.extend((TYPE_NAME, None, name) for name in entity.types)
        rows.extend((SCOPE_NAME, None, scope) for scope in entity.scopes)
    attrs = entity.attrs
    for name in attrs if names is None else names:
        values = 0
        for instance in attrs.get(name, ()):
            keys = instance_keys(instance)
            rows.extend(_row(name, key) for key in keys)
            values += len(keys)
            if not keys:
                rows.append((name, None, None))
        if values > 1:
            rows.append((multi_valued(name), None, None))
    return list(dict.fromkeys(rows))


def index_names(names: Iterable[str], *, header: bool) -> list[tuple[str, str]]:
    """Return the index-row names the rows of these attributes (and the header) use, in pairs."""
    found = [(TYPE_NAME, SCOPE_NAME)] if header else []
    found.extend((name, multi_valued(name)) for name in names)
    return found


def _row(name: str, key: Key) -> IndexRow:
    kind, value = key
    if kind == "num":
        return (name, value, None)
    if kind == "bool":
        return (name, None, "true" if value else "false")
    return (name, None, value)
