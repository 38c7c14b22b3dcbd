"""Tests of the q, scopeQ and type-selection parsers, the renderer and name mapping."""

from __future__ import annotations

import contextlib
import re
import warnings
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcity.core.errors import InvalidRequest
from smartcity.core.qlang import (
    METADATA_NAMES,
    And,
    AttrPath,
    Compare,
    Date,
    DateTime,
    Exists,
    Match,
    Node,
    Operator,
    Or,
    Range,
    ScopePattern,
    Time,
    TypeName,
    Uri,
    Value,
    ValueList,
    map_names,
    map_type_names,
    parse_q,
    parse_scope_q,
    parse_types,
    render,
)


def path(attr: str, *sub: str, keys: tuple[str, ...] = (), meta: str | None = None) -> AttrPath:
    """Build an attribute path."""
    return AttrPath(attr, tuple(sub), keys, meta)


def compare(attr: str, op: Operator, value: Value | Range | ValueList) -> Compare:
    """Build a comparison on a top-level attribute."""
    return Compare(path(attr), op, value)


# --- q: comparisons and literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a==1", compare("a", "==", 1)),
        ("a!=1", compare("a", "!=", 1)),
        ("a>1", compare("a", ">", 1)),
        ("a>=1", compare("a", ">=", 1)),
        ("a<1", compare("a", "<", 1)),
        ("a<=1", compare("a", "<=", 1)),
        ("a==-3", compare("a", "==", -3)),
        ("a==2.5", compare("a", "==", 2.5)),
        ("a==-1.5e3", compare("a", "==", -1500.0)),
        ("a==1E+2", compare("a", "==", 100.0)),
        ('a=="text"', compare("a", "==", "text")),
        ('a=="say \\"hi\\""', compare("a", "==", 'say "hi"')),
        ('a=="back\\\\slash"', compare("a", "==", "back\\slash")),
        ('a=="a\\d"', compare("a", "==", "a\\d")),
        ('a==""', compare("a", "==", "")),
        ('a=="x;y|z)"', compare("a", "==", "x;y|z)")),
        ("a==true", compare("a", "==", True)),
        ("a==false", compare("a", "==", False)),
        ("r==urn:ngsi-ld:Person:Bob", compare("r", "==", Uri("urn:ngsi-ld:Person:Bob"))),
        (
            "r==https://example.org/a/b?c=d#e",
            compare("r", "==", Uri("https://example.org/a/b?c=d#e")),
        ),
        (
            "t>=2018-09-21T12:00:00Z",
            compare("t", ">=", DateTime("2018-09-21T12:00:00Z")),
        ),
        (
            "t<2018-09-21T12:00:00.123+02:00",
            compare("t", "<", DateTime("2018-09-21T12:00:00.123+02:00")),
        ),
        ("t==2018-09-21T12:00", compare("t", "==", DateTime("2018-09-21T12:00"))),
        ("t>2018-09-21", compare("t", ">", Date("2018-09-21"))),
        ("t<=12:00:00Z", compare("t", "<=", Time("12:00:00Z"))),
        ("t==12:00:00", compare("t", "==", Time("12:00:00"))),
    ],
)
def test_parse_comparisons_and_literals(text: str, expected: Node) -> None:
    assert parse_q(text) == expected


def test_parse_distinguishes_integers_floats_and_booleans() -> None:
    assert type(parse_q("a==1").value) is int  # type: ignore[union-attr]
    assert type(parse_q("a==1.0").value) is float  # type: ignore[union-attr]
    assert type(parse_q("a==true").value) is bool  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a==1..5", compare("a", "==", Range(1, 5))),
        ("a!=1.5..2", compare("a", "!=", Range(1.5, 2))),
        ("a==-5..-1", compare("a", "==", Range(-5, -1))),
        ('a=="a".."m"', compare("a", "==", Range("a", "m"))),
        (
            "t==2018-01-01T00:00:00Z..2018-12-31T23:59:59Z",
            compare(
                "t", "==", Range(DateTime("2018-01-01T00:00:00Z"), DateTime("2018-12-31T23:59:59Z"))
            ),
        ),
        (
            "t==2018-01-01..2018-02-01",
            compare("t", "==", Range(Date("2018-01-01"), Date("2018-02-01"))),
        ),
        ('a=="x","y"', compare("a", "==", ValueList(("x", "y")))),
        ("a==1,2,3", compare("a", "==", ValueList((1, 2, 3)))),
        ('a!=1,"x",true', compare("a", "!=", ValueList((1, "x", True)))),
        ("r==urn:a:1,urn:a:2", compare("r", "==", ValueList((Uri("urn:a:1"), Uri("urn:a:2"))))),
    ],
)
def test_parse_ranges_and_value_lists(text: str, expected: Node) -> None:
    assert parse_q(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a~=^bob", Match(path("a"), "^bob")),
        ("a!~=^bob", Match(path("a"), "^bob", negated=True)),
        ('a~="(?i)b;o|b"', Match(path("a"), "(?i)b;o|b")),
        ("a~=(x|y);b", And((Match(path("a"), "(x|y)"), Exists(path("b"))))),
        ("a~=x|b", Or((Match(path("a"), "x"), Exists(path("b"))))),
        ("(a~=x)", Match(path("a"), "x")),
        ("a~=[;|)]+;b", And((Match(path("a"), "[;|)]+"), Exists(path("b"))))),
        ("a~=\\);b", And((Match(path("a"), "\\)"), Exists(path("b"))))),
    ],
)
def test_parse_patterns(text: str, expected: Node) -> None:
    assert parse_q(text) == expected


# --- q: paths, existence, logic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", path("a")),
        ("a.b.c", path("a", "b", "c")),
        ("a[k]", path("a", keys=("k",))),
        ("a[k][k2]", path("a", keys=("k", "k2"))),
        ("a.b[k]", path("a", "b", keys=("k",))),
        ("a.observedAt", path("a", meta="observedAt")),
        ("a.b.unitCode", path("a", "b", meta="unitCode")),
        ("a.datasetId", path("a", meta="datasetId")),
        ("schema:name", path("schema:name")),
        ("a_b-c.d_1", path("a_b-c", "d_1")),
    ],
)
def test_parse_paths(text: str, expected: AttrPath) -> None:
    assert parse_q(text) == Exists(expected)
    assert parse_q(text + "==1") == Compare(expected, "==", 1)


def test_path_keeps_raw_sub_attribute_names() -> None:
    parsed = parse_q("a.b.c")
    assert isinstance(parsed, Exists)
    assert parsed.path.raw_sub == ("b", "c")
    assert parsed.path.top_level is False
    assert path("a").top_level is True


def test_parse_non_existence() -> None:
    assert parse_q("!a") == Exists(path("a"), negated=True)
    assert parse_q("!a.b") == Exists(path("a", "b"), negated=True)


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (Exists(path(name)) for name in "abc")
    assert parse_q("a;b|c") == Or((And((a, b)), c))
    assert parse_q("a|b;c") == Or((a, And((b, c))))
    assert parse_q("(a|b);c") == And((Or((a, b)), c))


def test_groups_flatten_to_a_canonical_tree() -> None:
    a, b, c, d = (Exists(path(name)) for name in "abcd")
    assert parse_q("a;b;c") == And((a, b, c))
    assert parse_q("(a;b);(c;d)") == And((a, b, c, d))
    assert parse_q("((a))") == a
    assert parse_q("a|(b|(c|d))") == Or((a, b, c, d))


def test_whitespace_between_tokens_is_tolerated() -> None:
    assert parse_q(" a == 1 ; ( b | c ) ") == parse_q("a==1;(b|c)")
    assert parse_q("a == 1 .. 5") == parse_q("a==1..5")
    assert parse_q('a == "x" , "y"') == parse_q('a=="x","y"')


# --- q: errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "q: expected an attribute name, not the end at position 0"),
        ("a==", "q: expected a value after '==' at position 3"),
        ("temperature>=", "q: expected a value after '>=' at position 13"),
        ("a=1", "q: expected an operator (==, !=, >, >=, <, <=, ~=, !~=), ';', '|' or ')' after"),
        ("a==bob", "q: expected a value after '==' (a number, a quoted string"),
        ('a=="open', "q: unterminated string starting at position 3"),
        ("(a;b", "q: expected ')' (to match the '(' at 0) at position 4"),
        ("a;b)", "q: unbalanced ')' at position 3"),
        ("a;", "q: expected an attribute name, not the end at position 2"),
        ("a||b", "q: expected an attribute name, not '|' at position 2"),
        ("a>true", "q: '>' needs a number, a quoted string or a date/time at position 1"),
        ("a<urn:x:y", "q: '<' needs a number"),
        ("a>1,2", "q: value lists are allowed only with '==' and '!=', not '>'"),
        ('a==1.."z"', "q: the ends of a range differ in kind (number, string) at position 1"),
        ("a==true..false", "q: a range needs numbers, quoted strings or dates/times"),
        ("!a==1", "q: '!' tests non-existence and takes no '==' at position 2"),
        ("a.observedAt.b", "q: 'observedAt' must end the attribute path at position 12"),
        ("a.observedAt[k]", "q: 'observedAt' must end the attribute path"),
        ("a.==1", "q: expected a sub-attribute name after '.', not '=' at position 2"),
        ("a[]==1", "q: expected a key and ']' after '[' at position 1"),
        ("a[k==1", "q: expected a key and ']' after '['"),
        ("a~=", "q: expected a regular expression after '~=' at position 3"),
        ("a~=(x", "q: invalid regular expression (missing ) at position 2"),
        ("a==2018-13-01", "q: invalid date '2018-13-01' at position 3"),
        ("a==2018-02-30T00:00:00Z", "q: invalid date-time"),
        ("a==25:00:00", "q: invalid time"),
        ("a==1e999", "q: number out of range at position 3"),
        ("a==" + "9" * 5000, "q: number has too many digits at position 3"),
        ("a==5x", "q: expected a value after '=='"),
        ("a==1 b", "q: expected ';', '|' or the end of the query, not 'b' at position 5"),
        ("(" * 40 + "a" + ")" * 40, "q: parentheses nested deeper than 32"),
    ],
)
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_q(text)
    assert str(caught.value).startswith(message)
    assert caught.value.status == 400


# --- scopeQ and type selection


def test_parse_scopes() -> None:
    madrid = ScopePattern(("Madrid",))
    assert parse_scope_q("/Madrid") == madrid
    assert parse_scope_q("/Madrid/#") == ScopePattern(("Madrid", "#"))
    assert parse_scope_q("/Madrid/+/Parks") == ScopePattern(("Madrid", "+", "Parks"))
    assert parse_scope_q("/#") == ScopePattern(("#",))
    assert parse_scope_q("/a,/b|/c") == Or(tuple(ScopePattern((n,)) for n in "abc"))
    assert parse_scope_q("(/a;/b)|/c") == Or(
        (And((ScopePattern(("a",)), ScopePattern(("b",)))), ScopePattern(("c",)))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Madrid", "scopeQ: expected a scope starting with '/', not 'M' at position 0"),
        ("/", "scopeQ: expected a scope segment after '/' at position 1"),
        ("/a//b", "scopeQ: expected a scope segment after '/' at position 3"),
        ("/a/#/b", "scopeQ: '#' must be the last segment of a scope at position 4"),
        ("/a#", "scopeQ: '#' and '+' must stand alone as scope segments at position 1"),
        ("/a;", "scopeQ: expected a scope starting with '/', not the end at position 3"),
    ],
)
def test_scope_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        parse_scope_q(text)


def test_parse_types() -> None:
    a, b, c = (TypeName(name) for name in "ABC")
    assert parse_types("A") == a
    assert parse_types("A,B") == Or((a, b))
    assert parse_types("A|B") == Or((a, b))
    assert parse_types("(A;B)|C") == Or((And((a, b)), c))
    assert parse_types("A;B,C") == Or((And((a, b)), c))
    assert parse_types("https://example.org/Car#x") == TypeName("https://example.org/Car#x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "type: expected an entity type name, not the end at position 0"),
        ("A,", "type: expected an entity type name, not the end at position 2"),
        ("A,,B", "type: expected an entity type name, not ',' at position 2"),
        ("(A", "type: expected ')' (to match the '(' at 0) at position 2"),
        ("A)", "type: unbalanced ')' at position 1"),
    ],
)
def test_type_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        parse_types(text)


# --- render and map_names


def test_render_examples() -> None:
    text = 'a.b[k]=="x\\"y";(c.observedAt>=2020-01-01T00:00:00Z|!d)'
    assert render(parse_q(text)) == text
    assert render(parse_q("a~=^x")) == 'a~="^x"'
    assert render(parse_q("a==1..5")) == "a==1..5"
    assert render(parse_q("a==1.5,true")) == "a==1.5,true"
    assert render(parse_scope_q("/a/+/#|/b")) == "/a/+/#|/b"
    assert render(parse_types("(A;B),C")) == "A;B|C"
    assert render(parse_types("(A|B);C")) == "(A|B);C"


def test_map_names_expands_attributes_and_sub_attributes_only() -> None:
    parsed = parse_q("a.b[k]==1;c.observedAt>2020-01-01;!d")

    def expand(name: str) -> str:
        return "https://ex.org/" + name

    mapped = map_names(parsed, expand)
    assert mapped == And(
        (
            Compare(
                AttrPath("https://ex.org/a", ("https://ex.org/b",), ("k",), raw_sub=("b",)),
                "==",
                1,
            ),
            Compare(path("https://ex.org/c", meta="observedAt"), ">", Date("2020-01-01")),
            Exists(path("https://ex.org/d"), negated=True),
        )
    )
    assert isinstance(mapped, And)
    first = mapped.items[0]
    assert isinstance(first, Compare)
    assert first.path.raw_sub == ("b",)
    assert map_type_names(parse_types("A,B"), expand) == Or(
        (TypeName("https://ex.org/A"), TypeName("https://ex.org/B"))
    )
    assert map_names(parse_scope_q("/a/#"), expand) == ScopePattern(("a", "#"))


# --- property-based

NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_:@-]{0,6}", fullmatch=True)
SUB_NAME = NAME.filter(lambda name: name not in METADATA_NAMES)
KEY = st.text(st.characters(exclude_characters="]", exclude_categories=["Cs"]), min_size=1)


@st.composite
def datetime_literals(draw: st.DrawFn) -> DateTime:
    """Draw an unquoted date-time as a client might write it."""
    moment = draw(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)))
    text = moment.strftime("%Y-%m-%dT%H:%M")
    text += draw(st.sampled_from(["", moment.strftime(":%S"), moment.strftime(":%S.%f")]))
    return DateTime(text + draw(st.sampled_from(["", "Z", "+01:00", "-05:30", "+0200"])))


NUMBERS = st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
DATES = st.dates(min_value=datetime(1000, 1, 1).date()).map(lambda d: Date(d.isoformat()))
TIMES = st.times().map(lambda t: Time(t.strftime("%H:%M:%S")))
TEXTS = st.text() | DATES | TIMES
URIS = st.from_regex(
    r"urn:ngsi-ld:[A-Za-z]+:[A-Za-z0-9:]+|https://example\.org/[a-z/]*", fullmatch=True
)
COMPARABLE: st.SearchStrategy[Value] = NUMBERS | TEXTS | datetime_literals()
VALUES: st.SearchStrategy[Value] = COMPARABLE | st.booleans() | URIS.map(Uri)
RANGES = (
    st.builds(Range, NUMBERS, NUMBERS)
    | st.builds(Range, TEXTS, TEXTS)
    | st.builds(Range, datetime_literals(), datetime_literals())
)


def _compiles_quietly(pattern: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            re.compile(pattern)
    except (re.error, OverflowError, RecursionError, Warning):
        return False
    return True


PATTERNS = st.sampled_from(["^a", "b$", "(?i)bob", "x|y", "[0-9]+", "a;b", r"\d", '"', "\\\\"]) | (
    st.text(max_size=8).filter(lambda p: bool(p) and _compiles_quietly(p))
)
PATHS = st.builds(
    AttrPath,
    NAME,
    st.lists(SUB_NAME, max_size=2).map(tuple),
    st.lists(KEY, max_size=2).map(tuple),
    st.none() | st.sampled_from(sorted(METADATA_NAMES)),
).filter(lambda p: p.meta is None or not p.keys)
ORDERING = st.sampled_from(["<", "<=", ">", ">="])
EQUALITY = st.sampled_from(["==", "!="])
COMPARISONS = st.builds(Compare, PATHS, ORDERING, COMPARABLE) | st.builds(
    Compare,
    PATHS,
    EQUALITY,
    VALUES | RANGES | st.lists(VALUES, min_size=2, max_size=4).map(lambda v: ValueList(tuple(v))),
)
Q_LEAVES = (
    COMPARISONS
    | st.builds(Match, PATHS, PATTERNS, st.booleans())
    | st.builds(Exists, PATHS, st.booleans())
)


def _and(items: list[Node]) -> Node:
    return And(tuple(p for i in items for p in (i.items if isinstance(i, And) else [i])))


def _or(items: list[Node]) -> Node:
    return Or(tuple(p for i in items for p in (i.items if isinstance(i, Or) else [i])))


def trees(leaves: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    """Draw canonical logical trees over some leaves."""
    return st.recursive(
        leaves,
        lambda children: st.lists(children, min_size=2, max_size=3).flatmap(
            lambda items: st.sampled_from([_and(items), _or(items)])
        ),
        max_leaves=6,
    )


SCOPES = st.builds(
    lambda names, tail: ScopePattern(tuple(names) + tail),
    st.lists(NAME | st.just("+"), max_size=3),
    st.sampled_from([(), ("#",)]),
).filter(lambda s: bool(s.segments))
TYPES = st.from_regex(r"[A-Za-z][A-Za-z0-9_:/#.@-]{0,10}", fullmatch=True).map(TypeName)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(Q_LEAVES))
def test_q_round_trips_through_render(tree: Node) -> None:
    text = render(tree)
    assert parse_q(text) == tree
    assert render(parse_q(text)) == text


@settings(max_examples=150, deadline=None)
@given(trees(SCOPES))
def test_scope_q_round_trips_through_render(tree: Node) -> None:
    assert parse_scope_q(render(tree)) == tree


@settings(max_examples=150, deadline=None)
@given(trees(TYPES))
def test_types_round_trip_through_render(tree: Node) -> None:
    assert parse_types(render(tree)) == tree


QUERY_ALPHABET = 'ab.[]()=!<>~;|,"\\0159-:TZ/#+e. x'


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30) | st.text(QUERY_ALPHABET, max_size=30))
def test_garbage_raises_only_invalid_request(text: str) -> None:
    for parse in (parse_q, parse_scope_q, parse_types):
        with contextlib.suppress(InvalidRequest):
            parse(text)


@settings(max_examples=300, deadline=None)
@given(trees(Q_LEAVES), st.data())
def test_mutated_queries_raise_only_invalid_request(tree: Node, data: st.DataObject) -> None:
    text = render(tree)
    cut = data.draw(st.integers(0, len(text)))
    inserted = data.draw(st.text(QUERY_ALPHABET, max_size=3))
    mutated = text[:cut] + inserted + text[cut + data.draw(st.integers(0, 3)) :]
    with contextlib.suppress(InvalidRequest):
        parse_q(mutated)
