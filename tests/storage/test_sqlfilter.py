"""Tests of the query index rows and of the SQL compiled from q, scopeQ and type selections.

The differential tests run the compiled SQL on SQLite over random entities and check it against
the Python evaluator: always a superset of its matches, the very same set when marked exact.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from smartcity.core.entity import StoredEntity
from smartcity.core.qeval import evaluate, evaluate_scope, evaluate_types
from smartcity.core.qlang import (
    And,
    AttrPath,
    Compare,
    Date,
    DateTime,
    Exists,
    Match,
    Node,
    Or,
    Range,
    ScopePattern,
    Time,
    TypeName,
    Uri,
    Value,
    ValueList,
    map_names,
    parse_q,
    parse_scope_q,
    parse_types,
    render,
)
from smartcity.storage.indexing import index_rows, multi_valued
from smartcity.storage.sqlfilter import (
    POSTGRES,
    SQLITE,
    SqlFilter,
    compile_q,
    compile_scope,
    compile_types,
)

VOCAB = "https://ex.org/"
SCHEMA = """
CREATE TABLE entities (
    pk INTEGER PRIMARY KEY, tenant TEXT, id TEXT, types TEXT, scopes TEXT,
    created_at TEXT, modified_at TEXT, doc TEXT
);
CREATE TABLE entity_index (pk INTEGER NOT NULL, name TEXT NOT NULL, num REAL, txt TEXT);
CREATE INDEX entity_index_num ON entity_index (name, num);
CREATE INDEX entity_index_txt ON entity_index (name, txt);
CREATE INDEX entity_index_pk_name ON entity_index (pk, name);
"""


def expand(name: str) -> str:
    """Expand a short name the way a @context with @vocab would."""
    return VOCAB + name


def regexp(pattern: str, text: str | None) -> bool:
    """Do what the SQLite backend registers as ``regexp``."""
    return text is not None and re.search(pattern, text) is not None


@contextmanager
def database(entities: Sequence[StoredEntity]) -> Iterator[sqlite3.Connection]:
    """Yield an in-memory database holding the entities (pk = position + 1) and their index."""
    with closing(sqlite3.connect(":memory:")) as connection:
        connection.create_function("regexp", 2, regexp, deterministic=True)
        connection.executescript(SCHEMA)
        for pk, entity in enumerate(entities, 1):
            connection.execute(
                "INSERT INTO entities VALUES (?, '', ?, '[]', '[]', '', '', '{}')", (pk, entity.id)
            )
            connection.executemany(
                "INSERT INTO entity_index VALUES (?, ?, ?, ?)",
                [(pk, *row) for row in index_rows(entity)],
            )
        yield connection


def selected(connection: sqlite3.Connection, compiled: SqlFilter) -> set[int]:
    """Return the pks the compiled filter selects."""
    sql = f"SELECT e.pk FROM entities e WHERE {compiled.sql}"
    return {pk for (pk,) in connection.execute(sql, compiled.params)}


def make_entity(
    attrs: dict[str, Any] | None = None,
    types: Sequence[str] = ("Thing",),
    scopes: Sequence[str] = (),
) -> StoredEntity:
    """Build an entity; attribute names get expanded, a bare instance becomes a one-item list."""
    return StoredEntity(
        id="urn:ngsi-ld:Thing:1",
        types=[expand(name) for name in types],
        attrs={
            expand(name): value if isinstance(value, list) else [value]
            for name, value in (attrs or {}).items()
        },
        scopes=list(scopes),
    )


# --- index rows


def test_index_rows_cover_every_kind_of_value() -> None:
    entity = make_entity(
        {
            "n": {"type": "Property", "value": 5},
            "f": {"type": "Property", "value": 2.5, "observedAt": "2020-01-01T00:00:00Z"},
            "s": {"type": "Property", "value": "hi"},
            "b": {"type": "Property", "value": False},
            "t": {"type": "Property", "value": "2020-01-01T01:00:00+01:00"},
            "dt": {"type": "Property", "value": {"@type": "DateTime", "@value": "2020-01-01Z"}},
            "d": {"type": "Property", "value": {"@type": "Date", "@value": "2020-01-01"}},
            "l": {"type": "Property", "value": [1, "x", [2], {"k": 3}, None]},
            "c": {"type": "Property", "value": {"k": 1}, expand("sub"): {"value": 1}},
            "r": {"type": "Relationship", "object": "urn:a:1"},
            "lang": {"type": "LanguageProperty", "languageMap": {"en": "Park", "ko": "공원"}},
            "lp": {"type": "ListProperty", "valueList": [1, 2]},
            "lr": {"type": "ListRelationship", "objectList": [{"object": "urn:a:2"}, "urn:a:3"]},
            "g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
            "multi": [
                {"type": "Property", "value": 1},
                {"type": "Property", "value": 1, "datasetId": "urn:d:1"},
                {"type": "Property", "value": None, "datasetId": "urn:d:2"},
            ],
        },
        types=["A", "B"],
        scopes=["/a/b"],
    )
    x = expand
    assert index_rows(entity) == [
        ("@type", None, x("A")),
        ("@type", None, x("B")),
        ("@scope", None, "/a/b"),
        (x("n"), 5.0, None),
        (x("f"), 2.5, None),
        (x("s"), None, "hi"),
        (x("b"), None, "false"),
        (x("t"), None, "2020-01-01T00:00:00.000000Z"),
        (x("dt"), None, "2020-01-01Z"),
        (x("d"), None, "2020-01-01"),
        (x("l"), 1.0, None),
        (x("l"), None, "x"),
        (multi_valued(x("l")), None, None),
        (x("c"), None, None),
        (x("r"), None, "urn:a:1"),
        (x("lang"), None, "Park"),
        (x("lang"), None, "공원"),
        (multi_valued(x("lang")), None, None),
        (x("lp"), 1.0, None),
        (x("lp"), 2.0, None),
        (multi_valued(x("lp")), None, None),
        (x("lr"), None, "urn:a:2"),
        (x("lr"), None, "urn:a:3"),
        (multi_valued(x("lr")), None, None),
        (x("g"), None, None),
        (x("multi"), 1.0, None),
        (x("multi"), None, None),
        (multi_valued(x("multi")), None, None),
    ]


def test_index_rows_survive_huge_and_odd_numbers() -> None:
    entity = make_entity(
        {"n": [{"value": 10**400}, {"value": -(10**400)}, {"value": float("nan")}]}
    )
    assert index_rows(entity)[1:] == [
        (expand("n"), float("inf"), None),
        (expand("n"), float("-inf"), None),
        (expand("n"), None, None),
        (multi_valued(expand("n")), None, None),
    ]


# --- compiled SQL


def test_exact_and_inexact_compilation() -> None:
    def compiled(q: str) -> SqlFilter:
        return compile_q(map_names(parse_q(q), expand), SQLITE)

    for q in (
        "a==1",
        "a>1;b<=2.5",
        'a=="x"|b~=^x',
        "a==1..5",
        'a=="a".."c"',
        "a>2020-01-01T00:00:00Z",
        "a==2020-01-01T00:00:00Z..2021-01-01T00:00:00Z",
        'a==1,"x",urn:a:b',
        "a",
        "!a",
        "(a|!b);c==1",
        'a>"u"',
    ):
        assert compiled(q).exact, q
    for q in (
        "a!=1",
        "a!~=x",
        "a.b==1",
        "a[k]==1",
        "a.observedAt>2020-01-01T00:00:00Z",
        "!a.b",
        "a==true",
        'a>"s"',
        'a=="s".."u"',
        "a~=t",
        'a=="true"',
        "a==1;a!=2",
    ):
        assert not compiled(q).exact, q


def test_sql_shapes() -> None:
    compiled = compile_q(parse_q('a>=5;b=="x"'), SQLITE)
    assert compiled.sql == (
        "(e.pk IN (SELECT pk FROM entity_index WHERE name = ? AND num >= ?)"
        " AND e.pk IN (SELECT pk FROM entity_index WHERE name = ? AND txt = ?))"
    )
    assert compiled.params == ["a", 5.0, "b", "x"]
    assert compile_q(parse_q("!a"), SQLITE).sql == (
        "e.pk NOT IN (SELECT pk FROM entity_index WHERE name = ?)"
    )
    assert compile_q(parse_q("a~=^x"), SQLITE).sql.endswith("AND regexp(?, txt))")
    postgres = compile_q(parse_q('a>"x";b~=^x'), POSTGRES)
    assert postgres.sql == (
        '(e.pk IN (SELECT pk FROM entity_index WHERE name = %s AND txt COLLATE "C" > %s)'
        " AND e.pk IN (SELECT pk FROM entity_index WHERE name = %s))"
    )
    assert not postgres.exact
    assert "?" not in compile_q(parse_q("a>2020-01-01T00:00:00Z"), POSTGRES).sql


def test_types_and_scopes_compile_exactly_except_plus() -> None:
    types = compile_types(parse_types("A,B"), SQLITE)
    assert types.sql == "e.pk IN (SELECT pk FROM entity_index WHERE name = ? AND txt IN (?, ?))"
    assert types.params == ["@type", "A", "B"]
    assert types.exact
    assert compile_types(parse_types("(A;B)|C"), SQLITE).exact
    scope = compile_scope(parse_scope_q("/a/#"), SQLITE)
    assert scope.params == ["@scope", "/a", "/a/", "/a0"]
    assert scope.exact
    assert compile_scope(parse_scope_q("/a|/b/#"), POSTGRES).exact
    assert not compile_scope(parse_scope_q("/a/+"), SQLITE).exact


def test_compilers_refuse_other_trees() -> None:
    with pytest.raises(TypeError):
        compile_q(parse_types("A"), SQLITE)
    with pytest.raises(TypeError):
        compile_types(parse_q("a"), SQLITE)
    with pytest.raises(TypeError):
        compile_scope(parse_q("a"), SQLITE)


# --- differential: SQL over the index against the evaluator

# Values and literals come from small overlapping pools, so that queries often match; every
# entity has several values, so that a query meets the value it is about.
STRINGS = [
    "x",
    "true",
    "false",
    "",
    "Zebra",
    "2020-01-01T00:00:00Z",
    "2020-01-01T01:00:00+01:00",
    "2021-06-01T12:00:00Z",
    "2020-13-01T00:00:00.000000Z",
    "2020-01-01T00:00:00.000000Z\n",
    "2020-01-01",
    "12:00:00Z",
    "urn:ngsi-ld:P:1",
]
MOMENTS = STRINGS[5:8]
URIS = ["urn:ngsi-ld:P:1", "urn:ngsi-ld:P:2"]
SCALARS = st.one_of(
    st.sampled_from([0, 1, 2, 0.5, -1.5, 1e300, 10**400]),
    st.booleans(),
    st.sampled_from(STRINGS),
    st.sampled_from(MOMENTS).map(lambda s: {"@type": "DateTime", "@value": s}),
    st.just({"@type": "Date", "@value": "2020-01-01"}),
    st.text(max_size=2),
)
VALUES = st.one_of(
    SCALARS,
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.fixed_dictionaries({"k": SCALARS}),
    st.lists(st.fixed_dictionaries({"k": SCALARS}), max_size=2),
)


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    """Draw one attribute instance of any attribute type."""
    kind = draw(st.sampled_from(["Property"] * 5 + ["Relationship", "LanguageProperty", "Other"]))
    instance: dict[str, Any]
    if kind == "Property":
        instance = {"type": "Property", "value": draw(VALUES)}
    elif kind == "Relationship":
        objects = st.sampled_from(URIS)
        instance = {"type": "Relationship", "object": draw(objects | st.lists(objects, max_size=2))}
    elif kind == "LanguageProperty":
        texts = st.sampled_from(STRINGS) | st.text(max_size=2)
        language_map = draw(st.dictionaries(st.sampled_from(["en", "ko"]), texts))
        instance = {"type": "LanguageProperty", "languageMap": language_map}
    else:
        instance = draw(
            st.sampled_from(
                [
                    {"type": "ListProperty", "valueList": [1, "x", True]},
                    {"type": "ListRelationship", "objectList": [{"object": URIS[0]}]},
                    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
                ]
            )
        )
    if draw(st.booleans()):
        instance["observedAt"] = draw(st.sampled_from(MOMENTS))
    if draw(st.booleans()):
        instance[expand("x")] = {"type": "Property", "value": draw(SCALARS)}
    return instance


SCOPES = ["/a", "/a/b", "/a/b/c", "/b", "/", "/aa", "/a0", "/a.", "a/b", "/a/", "/A/b", ""]
ENTITIES = st.builds(
    lambda attrs, types, scopes: make_entity(attrs, types, scopes),
    st.dictionaries(
        st.sampled_from("abc"), st.lists(instances(), min_size=1, max_size=3), min_size=2
    ),
    st.lists(st.sampled_from("ABC"), max_size=2, unique=True),
    st.lists(st.sampled_from(SCOPES), max_size=3, unique=True),
)

NUMBER_LITERALS = [-1, 0, 1, 2, 0.5, 2.0, -1.5, 1e300]
TEXT_LITERALS: list[Value] = [*STRINGS, Date("2020-01-01"), Time("12:00:00Z")]
DATETIMES = [
    DateTime(text)
    for text in (
        "2020-01-01T00:00:00Z",
        "2020-01-01T00:30:00+01:00",
        "2021-01-01T00:00:00",
        "2020-06-01T00:00",
    )
]
COMPARABLE: st.SearchStrategy[Value] = st.one_of(
    st.sampled_from(NUMBER_LITERALS), st.sampled_from(TEXT_LITERALS), st.sampled_from(DATETIMES)
)
SINGLE_VALUES: st.SearchStrategy[Value] = st.one_of(
    COMPARABLE, st.booleans(), st.sampled_from(URIS).map(Uri)
)
RANGES = st.one_of(
    *(
        st.sampled_from([Range(low, high) for low in pool for high in pool])
        for pool in (NUMBER_LITERALS, STRINGS[:5], DATETIMES)
    )
)
EQUALITY_VALUES = st.one_of(
    SINGLE_VALUES,
    RANGES,
    st.lists(SINGLE_VALUES, min_size=2, max_size=3).map(lambda v: ValueList(tuple(v))),
)
PATHS = st.sampled_from("aaaabcd").map(AttrPath) | st.builds(
    AttrPath,
    st.sampled_from("abcd"),
    st.sampled_from([(), ("x",), ("k",)]),
    st.sampled_from([(), (), ("k",)]),
    st.sampled_from([None, None, "observedAt"]),
).filter(lambda path: path.meta is None or not path.keys)
PATTERNS = st.sampled_from(["^x", "t", "e$", "^2020", "a|b", ".*", "^$", "Z$", "^[0-9]+$"])
Q_LEAVES: st.SearchStrategy[Node] = st.one_of(
    st.builds(Compare, PATHS, st.sampled_from(["<", "<=", ">", ">="]), COMPARABLE),
    st.builds(
        Compare,
        PATHS,
        st.sampled_from(["==", "!="]),
        EQUALITY_VALUES,
    ),
    st.builds(Match, PATHS, PATTERNS, st.booleans()),
    st.builds(Exists, PATHS, st.booleans()),
)


def trees(leaves: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    """Draw canonical logical trees over some leaves."""

    def combine(items: list[Node]) -> st.SearchStrategy[Node]:
        def flat(kind: type[And | Or]) -> Node:
            return kind(tuple(p for i in items for p in (i.items if isinstance(i, kind) else [i])))

        return st.sampled_from([flat(And), flat(Or)])

    return st.recursive(
        leaves,
        lambda children: st.lists(children, min_size=2, max_size=3).flatmap(combine),
        max_leaves=4,
    )


def check(compiled: SqlFilter, entities: Sequence[StoredEntity], expected: set[int]) -> None:
    """Assert the SQL selects a superset of the expected pks, exactly them when exact."""
    with database(entities) as connection:
        check_in(connection, compiled, expected)


def check_in(connection: sqlite3.Connection, compiled: SqlFilter, expected: set[int]) -> None:
    """Assert the SQL selects a superset of the expected pks, exactly them when exact."""
    got = selected(connection, compiled)
    assert expected <= got, compiled
    if compiled.exact:
        assert got == expected, compiled


def world_entities() -> list[StoredEntity]:
    """Build a fixed set of entities: every pooled value in every attribute shape."""
    pool: list[Any] = [
        *[0, 1, 2, 0.5, -1.5, 1e300, 10**400, True, False],
        *STRINGS,
        *({"@type": "DateTime", "@value": moment} for moment in MOMENTS),
        {"@type": "Date", "@value": "2020-01-01"},
    ]
    type_sets = [["A"], ["B"], ["A", "B"], [], ["C"], ["A", "C"]]
    entities = [make_entity()]
    for i, value in enumerate(pool):
        other = pool[(i * 7 + 3) % len(pool)]
        text = value if isinstance(value, str) else "x"
        shapes: list[Any] = [
            {"type": "Property", "value": value},
            {"type": "Property", "value": [other, value]},
            {"type": "Property", "value": {"k": value}},
            [{"type": "Property", "value": other}, {"type": "Property", "value": value}],
            {
                "type": "Property",
                "value": other,
                "observedAt": MOMENTS[i % len(MOMENTS)],
                expand("x"): {"type": "Property", "value": value},
            },
            {"type": "LanguageProperty", "languageMap": {"en": text, "ko": "x"}},
            {"type": "Relationship", "object": URIS[i % 2]},
            {"type": "ListProperty", "valueList": [other, value]},
        ]
        for j, shape in enumerate(shapes):
            attrs = (
                {"a": shape, "b": {"type": "Property", "value": other}} if j % 2 else {"a": shape}
            )
            entities.append(
                make_entity(
                    attrs,
                    type_sets[(i + j) % len(type_sets)],
                    [SCOPES[(i + j) % len(SCOPES)], SCOPES[(i * j) % len(SCOPES)]][: j % 3],
                )
            )
    return entities


@dataclass
class World:
    """The fixed entities and a database that holds them."""

    entities: list[StoredEntity]
    connection: sqlite3.Connection

    def __repr__(self) -> str:
        return f"World({len(self.entities)} entities)"  # short, for falsifying examples


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """Yield the fixed entities and a database that holds them."""
    entities = world_entities()
    with database(entities) as connection:
        yield World(entities, connection)


@settings(max_examples=600, deadline=None)
@given(tree=trees(Q_LEAVES))
def test_q_sql_agrees_with_evaluator(world: World, tree: Node) -> None:
    entities, connection = world.entities, world.connection
    expr = map_names(parse_q(render(tree)), expand)
    expected = {pk for pk, entity in enumerate(entities, 1) if evaluate(expr, entity)}
    compiled = compile_q(expr, SQLITE)
    event(("exact" if compiled.exact else "superset") + (", some match" if expected else ""))
    check_in(connection, compiled, expected)


@settings(max_examples=150, deadline=None)
@given(entities=st.lists(ENTITIES, min_size=1, max_size=6), tree=trees(Q_LEAVES))
def test_q_sql_agrees_with_evaluator_on_random_entities(
    entities: list[StoredEntity], tree: Node
) -> None:
    expr = map_names(tree, expand)
    expected = {pk for pk, entity in enumerate(entities, 1) if evaluate(expr, entity)}
    check(compile_q(expr, SQLITE), entities, expected)


@settings(max_examples=150, deadline=None)
@given(tree=trees(st.sampled_from("ABCD").map(TypeName)))
def test_type_sql_agrees_with_evaluator(world: World, tree: Node) -> None:
    entities, connection = world.entities, world.connection
    expr = map_names(tree, expand)
    expected = {pk for pk, e in enumerate(entities, 1) if evaluate_types(expr, e.types)}
    check_in(connection, compile_types(expr, SQLITE), expected)


SCOPE_PATTERNS = st.builds(
    lambda names, tail: ScopePattern(tuple(names) + tail),
    st.lists(st.sampled_from(["a", "b", "aa", "A", "+"]), max_size=3),
    st.sampled_from([(), ("#",)]),
).filter(lambda pattern: bool(pattern.segments))


@settings(max_examples=150, deadline=None)
@given(tree=trees(SCOPE_PATTERNS))
def test_scope_sql_agrees_with_evaluator(world: World, tree: Node) -> None:
    entities, connection = world.entities, world.connection
    expected = {pk for pk, e in enumerate(entities, 1) if evaluate_scope(tree, e.scopes)}
    check_in(connection, compile_scope(tree, SQLITE), expected)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("a>1", {1}),
        ("a==2020-01-01T00:00:00Z..2020-12-31T00:00:00Z", {2}),
        ("a>2020-06-01T00:00:00+02:00", {3}),
        ('a<"3"', {2, 3}),
        ("a~=^Z", {4}),
        ("!b", {1, 2, 3, 4}),
        ("a", {1, 2, 3, 4}),
    ],
)
def test_examples_run_exactly(q: str, expected: set[int]) -> None:
    entities = [
        make_entity({"a": {"type": "Property", "value": 5}}),
        make_entity({"a": {"type": "Property", "value": "2020-03-01T00:00:00+09:00"}}),
        make_entity(
            {
                "a": {
                    "type": "Property",
                    "value": {"@type": "DateTime", "@value": "2021-01-01T00:00Z"},
                }
            }
        ),
        make_entity({"a": {"type": "Property", "value": "Zebra"}}),
    ]
    compiled = compile_q(map_names(parse_q(q), expand), SQLITE)
    assert compiled.exact
    check(compiled, entities, expected)
