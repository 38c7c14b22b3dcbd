"""Compile ``q``, ``scopeQ`` and type selections to SQL over the query index.

The SQL is a boolean expression about the outer row ``e`` of ``entities``, made of
``e.pk IN (SELECT pk FROM entity_index WHERE name = ? AND ...)`` tests, which the indexes on
``(name, num)`` and ``(name, txt)`` answer. Where the index cannot answer a test exactly (``!=``,
paths below an attribute, a regex the database reads differently), the SQL selects a superset
and says so (``exact=False``); the caller then re-checks each candidate with `core.qeval`.

Text ordering must be by code point: SQLite's default collation is; PostgreSQL's ``txt`` column
should be declared ``COLLATE "C"`` so that the index serves the ``COLLATE "C"`` comparisons here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from smartcity.core.patterns import compile_pattern, search
from smartcity.core.qeval import TIMESTAMP_LENGTH, TIMESTAMP_PATTERN, Key, literal_key
from smartcity.core.qlang import (
    And,
    Compare,
    Exists,
    Match,
    Node,
    Or,
    Range,
    ScopePattern,
    TypeName,
    ValueList,
)
from smartcity.storage.indexing import SCOPE_NAME, TYPE_NAME, multi_valued

ALWAYS = "1 = 1"
_BOOLEAN_WORDS = ("true", "false")
_ORDER: dict[str, Callable[[str, str], bool]] = {
    "==": str.__eq__,
    ">": str.__gt__,
    ">=": str.__ge__,
    "<": str.__lt__,
    "<=": str.__le__,
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL of the backends."""

    name: str
    """"sqlite" or "postgresql": for DDL that differs."""
    placeholder: str
    regex: Callable[[str, str], str]
    regex_exact: bool
    ordered_txt: str = "txt"
    index_text: Callable[[str], str] = str
    """How the backend stores a text in the index (PostgreSQL: bounded, without NUL)."""
    row_test: Callable[[str, str], str] = lambda pk, where: (
        f"EXISTS (SELECT 1 FROM entity_index x WHERE x.pk = {pk} AND {where})"
    )
    """An index test of one candidate, made through the (pk) index, never over a whole set."""
    unindexed: str = ""
    """Prefix that keeps the planner off an index for one term (SQLite: unary +)."""


@dataclass(frozen=True, slots=True)
class IndexTest:
    """One test answered by the index alone: ``SELECT pk FROM entity_index WHERE <where>``."""

    where: str
    params: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class SqlFilter:
    """A compiled filter; ``exact=False`` means the SQL selects a superset of the matches.

    ``tests`` is set when the filter is a conjunction of plain index tests, so that the store
    can choose which of them drives the query (the most selective) and check the others per row.
    """

    sql: str
    params: list[object]
    exact: bool
    tests: tuple[IndexTest, ...] | None = None


def _sqlite_regex(column: str, mark: str) -> str:
    return f"regexp({mark}, {column})"


def _postgres_regex(column: str, mark: str) -> str:
    return f"{column} ~ {mark}"


# A PostgreSQL B-tree entry holds at most 2,704 bytes; 512 characters fit even at 4 bytes each.
POSTGRES_TEXT_LIMIT = 512


def postgres_index_text(text: str) -> str:
    """Return the prefix of a text that PostgreSQL's index keeps (NUL cannot be stored)."""
    return text[:POSTGRES_TEXT_LIMIT].replace("\x00", "\ufffd")


def _sqlite_row_test(pk: str, where: str) -> str:
    # Without statistics SQLite may prefer the (name, ...) indexes, scanning a whole set per row.
    return (
        "EXISTS (SELECT 1 FROM entity_index x INDEXED BY entity_index_pk_name "
        f"WHERE x.pk = {pk} AND {where})"
    )


def _postgres_row_test(pk: str, where: str) -> str:
    # A correlated scalar subquery stays a per-row index probe; PostgreSQL would turn EXISTS
    # into a semi-join over the whole set of rows that pass the test.
    return f"(SELECT TRUE FROM entity_index x WHERE x.pk = {pk} AND {where} LIMIT 1)"


SQLITE = Dialect(
    "sqlite", "?", _sqlite_regex, regex_exact=True, row_test=_sqlite_row_test, unindexed="+"
)
POSTGRES = Dialect(
    "postgresql",
    "%s",
    _postgres_regex,
    regex_exact=False,
    ordered_txt='txt COLLATE "C"',
    index_text=postgres_index_text,
    row_test=_postgres_row_test,
)

Condition = tuple[str, list[object], bool]


def compile_q(expr: Node, dialect: Dialect) -> SqlFilter:
    """Compile a ``q`` tree (names expanded) to SQL."""
    if isinstance(expr, And | Or):
        combined = _combine([compile_q(item, dialect) for item in expr.items], expr)
        if isinstance(expr, And) and combined.tests is not None:
            hints = _range_hints(expr, dialect)
            if hints:
                combined = replace(combined, tests=combined.tests + hints)
        return combined
    if isinstance(expr, Exists):
        if expr.path.top_level:
            return _indexed(dialect, expr.path.attr, None, exact=True, negated=expr.negated)
        if expr.negated:
            return SqlFilter(ALWAYS, [], exact=False, tests=())
        return _indexed(dialect, expr.path.attr, None, exact=False)
    if isinstance(expr, Compare | Match):
        condition = _condition(expr, dialect)
        if condition is None:
            return _indexed(dialect, expr.path.attr, None, exact=False)
        return _indexed(dialect, expr.path.attr, condition, exact=condition[2])
    raise TypeError(f"not a q expression: {expr!r}")


def _range_hints(expr: And, dialect: Dialect) -> tuple[IndexTest, ...]:
    """Return one index test per attribute bounded from below and above by numbers.

    `a>=x;a<y` compiles to two tests that may each match most of the index; the entities that
    satisfy both have a value in [x, y) or hold several values (marked in the index), which one
    narrow test finds. It is a superset of the conjunction, so it may drive the query.
    """
    bounds: dict[str, dict[str, tuple[str, float]]] = {}
    for item in expr.items:
        if not (isinstance(item, Compare) and item.path.top_level and item.op in _ORDER):
            continue
        kind, value = (
            literal_key(item.value) if not isinstance(item.value, Range | ValueList) else ("", 0)
        )
        if kind != "num" or item.op == "==":
            continue
        side = "low" if item.op in (">", ">=") else "high"
        bounds.setdefault(item.path.attr, {})[side] = (item.op, float(value))
    mark = dialect.placeholder
    hints: list[IndexTest] = []
    for name, sides in bounds.items():
        if "low" in sides and "high" in sides:
            (low_op, low), (high_op, high) = sides["low"], sides["high"]
            where = (
                f"((name = {mark} AND num {low_op} {mark} AND num {high_op} {mark}) "
                f"OR name = {mark})"
            )
            hints.append(IndexTest(where, (name, low, high, multi_valued(name))))
    return tuple(hints)


def compile_types(expr: Node, dialect: Dialect) -> SqlFilter:
    """Compile a type selection (type names expanded) to SQL."""
    mark = dialect.placeholder
    if isinstance(expr, Or) and all(isinstance(item, TypeName) for item in expr.items):
        names: list[object] = [item.name for item in expr.items if isinstance(item, TypeName)]
        marks = ", ".join(mark for _ in names)
        return _indexed(dialect, TYPE_NAME, (f"txt IN ({marks})", names, True), exact=True)
    if isinstance(expr, And | Or):
        return _combine([compile_types(item, dialect) for item in expr.items], expr)
    if isinstance(expr, TypeName):
        return _indexed(dialect, TYPE_NAME, (f"txt = {mark}", [expr.name], True), exact=True)
    raise TypeError(f"not a type selection: {expr!r}")


def compile_scope(expr: Node, dialect: Dialect) -> SqlFilter:
    """Compile a ``scopeQ`` tree to SQL (patterns with ``+`` select a superset)."""
    if isinstance(expr, And | Or):
        return _combine([compile_scope(item, dialect) for item in expr.items], expr)
    if not isinstance(expr, ScopePattern):
        raise TypeError(f"not a scopeQ expression: {expr!r}")
    mark = dialect.placeholder
    segments = expr.segments
    if "+" in segments:
        base = "".join("/" + segment for segment in segments[: segments.index("+")])
        sql, params = _prefix(dialect, base + "/")
        return _indexed(dialect, SCOPE_NAME, (sql, params, False), exact=False)
    if segments[-1] == "#":
        base = "".join("/" + segment for segment in segments[:-1])
        sql, params = _prefix(dialect, base + "/")
        condition = (f"(txt = {mark} OR {sql})", [base, *params], True)
        return _indexed(dialect, SCOPE_NAME, condition, exact=True)
    scope = "".join("/" + segment for segment in segments)
    return _indexed(dialect, SCOPE_NAME, (f"txt = {mark}", [scope], True), exact=True)


def _prefix(dialect: Dialect, prefix: str) -> tuple[str, list[object]]:
    """Return a range test for texts starting with ``prefix`` (which ends in '/')."""
    mark, column = dialect.placeholder, dialect.ordered_txt
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"({column} >= {mark} AND {column} < {mark})", [prefix, upper]


def _combine(parts: Sequence[SqlFilter], node: And | Or) -> SqlFilter:
    joiner = " AND " if isinstance(node, And) else " OR "
    tests: tuple[IndexTest, ...] | None = None
    if isinstance(node, And) and all(part.tests is not None for part in parts):
        tests = tuple(test for part in parts for test in part.tests or ())
    return SqlFilter(
        "(" + joiner.join(part.sql for part in parts) + ")",
        [param for part in parts for param in part.params],
        all(part.exact for part in parts),
        tests,
    )


def _indexed(
    dialect: Dialect,
    name: str,
    condition: Condition | None,
    *,
    exact: bool,
    negated: bool = False,
) -> SqlFilter:
    mark = dialect.placeholder
    where = f"name = {mark}"
    params: list[object] = [name]
    if condition is not None:
        where += f" AND {condition[0]}"
        params.extend(condition[1])
    test = "NOT IN" if negated else "IN"
    tests = None if negated else (IndexTest(where, tuple(params)),)
    return SqlFilter(
        f"e.pk {test} (SELECT pk FROM entity_index WHERE {where})", params, exact, tests
    )


def _condition(node: Compare | Match, dialect: Dialect) -> Condition | None:
    """Return the index condition of a comparison, None if only existence can be tested."""
    if not node.path.top_level:
        return None
    if isinstance(node, Match):
        if node.negated or not dialect.regex_exact:
            return None
        pattern = compile_pattern(node.pattern)
        exact = not any(search(pattern, word) for word in _BOOLEAN_WORDS)
        return dialect.regex("txt", dialect.placeholder), [node.pattern], exact
    if node.op == "!=":
        return None
    value = node.value
    if isinstance(value, Range):
        return _range_condition(literal_key(value.low), literal_key(value.high), dialect)
    if isinstance(value, ValueList):
        parts = [_value_condition("==", literal_key(item), dialect) for item in value.values]
        if any(part is None for part in parts):
            return None
        present = [part for part in parts if part is not None]
        return (
            "(" + " OR ".join(f"({part[0]})" for part in present) + ")",
            [param for part in present for param in part[1]],
            all(part[2] for part in present),
        )
    return _value_condition(node.op, literal_key(value), dialect)


def _value_condition(op: str, literal: Key, dialect: Dialect) -> Condition | None:
    kind, value = literal
    mark = dialect.placeholder
    sql_op = "=" if op == "==" else op
    if kind == "num":
        return f"num {sql_op} {mark}", [value], True
    if kind == "bool":
        if op != "==":
            return None
        return f"txt = {mark}", ["true" if value else "false"], False
    stored = dialect.index_text(value)
    # A text shorter than the index keeps is compared exactly even against cut stored texts;
    # a cut literal selects a superset, so a strict order test must include the cut itself.
    whole = stored == value
    if not whole and op in (">", "<"):
        sql_op += "="
    if op == "==":
        return f"txt = {mark}", [stored], whole and not _takes_boolean(op, value)
    if kind == "ts":
        sql = f"{dialect.ordered_txt} {sql_op} {mark} AND {_timestamp_shape(dialect)}"
        return sql, [value, TIMESTAMP_PATTERN], True
    exact = whole and not _takes_boolean(op, value)
    return f"{dialect.ordered_txt} {sql_op} {mark}", [stored], exact


def _range_condition(low: Key, high: Key, dialect: Dialect) -> Condition | None:
    if low[0] != high[0] or low[0] == "bool":
        return None
    mark = dialect.placeholder
    if low[0] == "num":
        return f"num BETWEEN {mark} AND {mark}", [low[1], high[1]], True
    between = f"{dialect.ordered_txt} BETWEEN {mark} AND {mark}"
    if low[0] == "ts":
        sql = f"{between} AND {_timestamp_shape(dialect)}"
        return sql, [low[1], high[1], TIMESTAMP_PATTERN], True
    bounds = [dialect.index_text(low[1]), dialect.index_text(high[1])]
    exact = bounds == [low[1], high[1]] and not any(
        low[1] <= word <= high[1] for word in _BOOLEAN_WORDS
    )
    return between, list[object](bounds), exact


def _takes_boolean(op: str, text: str) -> bool:
    """Tell whether a text test also accepts the 'true'/'false' rows that booleans leave."""
    return any(_ORDER[op](word, text) for word in _BOOLEAN_WORDS)


def _timestamp_shape(dialect: Dialect) -> str:
    return f"length(txt) = {TIMESTAMP_LENGTH} AND {dialect.regex('txt', dialect.placeholder)}"
