"""Parse and render the NGSI-LD query languages: ``q``, ``scopeQ`` and entity type selection.

ETSI GS CIM 009 clauses 4.9 (``q``), 4.19 (``scopeQ``) and 4.17 (type selection). All three share
the logical operators: ``;`` is AND, ``|`` is OR (``,`` too in ``scopeQ`` and type selection), AND
binds tighter than OR, and parentheses group. Parsing yields a canonical tree: nested groups of
the same operator are flattened and single-item groups vanish, so ``parse(render(t)) == t``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Final, Literal, TypeAlias, cast

from smartcity.core.errors import InvalidRequest
from smartcity.core.patterns import pattern_problem

METADATA_NAMES: Final = frozenset(
    {"observedAt", "modifiedAt", "createdAt", "unitCode", "datasetId"}
)
MAX_DEPTH: Final = 32

Operator: TypeAlias = Literal["==", "!=", ">", ">=", "<", "<="]


@dataclass(frozen=True, slots=True)
class DateTime:
    """An unquoted ISO 8601 date-time literal, as written."""

    text: str


@dataclass(frozen=True, slots=True)
class Date:
    """An unquoted ISO 8601 date literal, as written."""

    text: str


@dataclass(frozen=True, slots=True)
class Time:
    """An unquoted ISO 8601 time literal, as written."""

    text: str


@dataclass(frozen=True, slots=True)
class Uri:
    """An unquoted URI literal (the object of a relationship, typically)."""

    text: str


Value: TypeAlias = bool | int | float | str | DateTime | Date | Time | Uri


@dataclass(frozen=True, slots=True)
class Range:
    """The inclusive value range ``low..high``."""

    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class ValueList:
    """The value list ``a,b,c``: equal to any of them."""

    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute path: ``attr.sub.sub[key][key]``, optionally ending in a metadata name.

    ``sub`` holds the sub-attribute names (expanded by `map_names`); ``raw_sub`` keeps them as
    written, for navigating into a compound value that has such a key instead.
    """

    attr: str
    sub: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    meta: str | None = None
    raw_sub: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.raw_sub) != len(self.sub):
            object.__setattr__(self, "raw_sub", self.sub)

    @property
    def top_level(self) -> bool:
        """Tell whether the path names a whole attribute, nothing below it."""
        return not self.sub and not self.keys and self.meta is None


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison ``path op value`` (ranges and lists only with ``==`` and ``!=``)."""

    path: AttrPath
    op: Operator
    value: Value | Range | ValueList


@dataclass(frozen=True, slots=True)
class Match:
    """A pattern match ``path~=regex`` or, negated, ``path!~=regex``."""

    path: AttrPath
    pattern: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    """An existence test ``path`` or, negated, ``!path``."""

    path: AttrPath
    negated: bool = False


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """A scope pattern such as ``/Madrid/+/Parks`` or ``/Madrid/#``, split into segments."""

    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TypeName:
    """One entity type in a type selection."""

    name: str


@dataclass(frozen=True, slots=True)
class And:
    """All of the items hold (``;``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of the items holds (``|``)."""

    items: tuple[Node, ...]


Node: TypeAlias = Compare | Match | Exists | ScopePattern | TypeName | And | Or
QExpr: TypeAlias = Node
ScopeExpr: TypeAlias = Node
TypeExpr: TypeAlias = Node

_OPERATORS: Final = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|),\"]*")
_TEMPORAL: Final[tuple[tuple[re.Pattern[str], type[DateTime | Date | Time], str], ...]] = (
    (_DATETIME, DateTime, "date-time"),
    (_DATE, Date, "date"),
    (_TIME, Time, "time"),
)


def parse_q(text: str) -> QExpr:
    """Parse a ``q`` query (already URL-decoded)."""
    parser = _Parser(text, "q")
    return parser.parse_all(parser.q_term, "|")


def parse_scope_q(text: str) -> ScopeExpr:
    """Parse a ``scopeQ`` query."""
    parser = _Parser(text, "scopeQ")
    return parser.parse_all(parser.scope_term, "|,")


def parse_types(text: str) -> TypeExpr:
    """Parse an entity type selection: ``A,B``, ``A|B``, ``(A;B)|C``."""
    parser = _Parser(text, "type")
    return parser.parse_all(parser.type_term, "|,")


def parse_datetime(text: str) -> datetime | None:
    """Return the moment an ISO 8601 date-time string names, or None if it names none."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class _Parser:
    """A recursive-descent parser over one query string."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0
        self.depth = 0

    def error(self, message: str, at: int | None = None) -> InvalidRequest:
        where = self.pos if at is None else at
        return InvalidRequest(f"{self.what}: {message} at position {where}")

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse_all(self, term: Callable[[], Node], or_marks: str) -> Node:
        node = self.parse_or(term, or_marks)
        char = self.peek()
        if char == ")":
            raise self.error("unbalanced ')'")
        if char:
            marks = "', '".join([";", *or_marks])
            raise self.error(f"expected '{marks}' or the end of the query, not {char!r}")
        return node

    def parse_or(self, term: Callable[[], Node], or_marks: str) -> Node:
        items = [self.parse_and(term, or_marks)]
        while self.peek() and self.peek() in or_marks:
            self.pos += 1
            items.append(self.parse_and(term, or_marks))
        flat = [part for item in items for part in (item.items if isinstance(item, Or) else [item])]
        return flat[0] if len(flat) == 1 else Or(tuple(flat))

    def parse_and(self, term: Callable[[], Node], or_marks: str) -> Node:
        items = [self.parse_group(term, or_marks)]
        while self.peek() == ";":
            self.pos += 1
            items.append(self.parse_group(term, or_marks))
        flat = [
            part for item in items for part in (item.items if isinstance(item, And) else [item])
        ]
        return flat[0] if len(flat) == 1 else And(tuple(flat))

    def parse_group(self, term: Callable[[], Node], or_marks: str) -> Node:
        if self.peek() != "(":
            return term()
        start = self.pos
        if self.depth >= MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than {MAX_DEPTH}")
        self.pos += 1
        self.depth += 1
        node = self.parse_or(term, or_marks)
        self.depth -= 1
        if self.peek() != ")":
            raise self.error(f"expected ')' (to match the '(' at {start})")
        self.pos += 1
        return node

    def q_term(self) -> Node:
        negated = self.peek() == "!"
        if negated:
            self.pos += 1
        path = self.path()
        char = self.peek()
        if char in ("", ";", "|", ")"):
            return Exists(path, negated)
        at = self.pos
        op = next((op for op in _OPERATORS if self.text.startswith(op, at)), None)
        if op is None:
            raise self.error(
                "expected an operator (==, !=, >, >=, <, <=, ~=, !~=), ';', '|' or ')' "
                f"after the attribute path, not {char!r}"
            )
        if negated:
            raise self.error(f"'!' tests non-existence and takes no '{op}'", at)
        self.pos += len(op)
        if op in ("~=", "!~="):
            return Match(path, self.pattern(op), op == "!~=")
        operator = cast(Operator, op)
        first = self.value(op)
        if op in ("==", "!="):
            if self.peek() == "." and self.text.startswith("..", self.pos):
                self.pos += 2
                return Compare(path, operator, self.range_end(first, at))
            if self.peek() == ",":
                values = [first]
                while self.peek() == ",":
                    self.pos += 1
                    values.append(self.value(","))
                return Compare(path, operator, ValueList(tuple(values)))
            return Compare(path, operator, first)
        if self.peek() == ",":
            raise self.error(f"value lists are allowed only with '==' and '!=', not '{op}'")
        if _kind(first) is None:
            raise self.error(f"'{op}' needs a number, a quoted string or a date/time", at)
        return Compare(path, operator, first)

    def range_end(self, low: Value, at: int) -> Range:
        high = self.value("..")
        low_kind, high_kind = _kind(low), _kind(high)
        if low_kind is None or high_kind is None:
            raise self.error("a range needs numbers, quoted strings or dates/times", at)
        if low_kind != high_kind:
            raise self.error(f"the ends of a range differ in kind ({low_kind}, {high_kind})", at)
        return Range(low, high)

    def path(self) -> AttrPath:
        attr = self.name("an attribute name")
        sub: list[str] = []
        meta: str | None = None
        while self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            if meta is not None:
                raise self.error(f"'{meta}' must end the attribute path", self.pos - 1)
            segment = self.name("a sub-attribute name after '.'")
            if segment in METADATA_NAMES:
                meta = segment
            else:
                sub.append(segment)
        keys: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] == "[":
            if meta is not None:
                raise self.error(f"'{meta}' must end the attribute path")
            end = self.text.find("]", self.pos + 1)
            if end <= self.pos + 1:
                raise self.error("expected a key and ']' after '['")
            keys.append(self.text[self.pos + 1 : end])
            self.pos = end + 1
        return AttrPath(attr, tuple(sub), tuple(keys), meta)

    def name(self, what: str) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in "_-:@"):
            self.pos += 1
        if self.pos == start:
            found = repr(text[start]) if start < len(text) else "the end"
            raise self.error(f"expected {what}, not {found}")
        return text[start : self.pos]

    def value(self, after: str) -> Value:
        char = self.peek()
        start = self.pos
        if not char:
            raise self.error(f"expected a value after '{after}'")
        if char == '"':
            return self.quoted()
        for pattern, make, label in _TEMPORAL:
            match = pattern.match(self.text, start)
            if match and self.ends_value(match.end()):
                if not _valid_temporal(make, match.group()):
                    raise self.error(f"invalid {label} {match.group()!r}", start)
                self.pos = match.end()
                return make(match.group())
        match = _NUMBER.match(self.text, start)
        if match and self.ends_value(match.end()):
            self.pos = match.end()
            return self.number(match.group(), start)
        for word, boolean in (("true", True), ("false", False)):
            if self.text.startswith(word, start) and self.ends_value(start + len(word)):
                self.pos = start + len(word)
                return boolean
        match = _URI.match(self.text, start)
        if match:
            self.pos = match.end()
            return Uri(match.group())
        raise self.error(
            f"expected a value after '{after}' (a number, a quoted string, a date/time, "
            "true, false or a URI)"
        )

    def ends_value(self, end: int) -> bool:
        return (
            end >= len(self.text)
            or self.text[end] in ";|),"
            or self.text[end].isspace()
            or self.text.startswith("..", end)
        )

    def number(self, text: str, start: int) -> int | float:
        try:
            number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise self.error("number has too many digits", start) from None
        if abs(number) == float("inf"):
            raise self.error("number out of range", start)
        return number

    def quoted(self) -> str:
        start = self.pos
        text = self.text
        out: list[str] = []
        self.pos += 1
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '"\\':
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                return "".join(out)
            out.append(char)
        raise self.error("unterminated string starting", start)

    def pattern(self, op: str) -> str:
        if self.peek() == '"':
            start = self.pos
            pattern = self.quoted()
        else:
            start = self.pos
            self.pos = _pattern_end(self.text, start)
            pattern = self.text[start : self.pos]
        if not pattern:
            raise self.error(f"expected a regular expression after '{op}'", start)
        problem = pattern_problem(pattern)
        if problem is not None:
            raise self.error(f"invalid regular expression ({problem})", start)
        return pattern

    def scope_term(self) -> Node:
        if self.peek() != "/":
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            raise self.error(f"expected a scope starting with '/', not {found}")
        segments: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] == "/":
            if segments and segments[-1] == "#":
                raise self.error("'#' must be the last segment of a scope")
            self.pos += 1
            start = self.pos
            segment = self.word("/;|,()")
            if not segment:
                raise self.error("expected a scope segment after '/'")
            if segment not in ("#", "+") and ("#" in segment or "+" in segment):
                raise self.error("'#' and '+' must stand alone as scope segments", start)
            segments.append(segment)
        return ScopePattern(tuple(segments))

    def type_term(self) -> Node:
        self.peek()
        name = self.word(";|,()")
        if not name:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            raise self.error(f"expected an entity type name, not {found}")
        return TypeName(name)

    def word(self, stops: str) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stops and not text[self.pos].isspace():
            self.pos += 1
        return text[start : self.pos]


def _pattern_end(text: str, start: int) -> int:
    """Return where an unquoted regex ends: at ';' or '|' outside groups, or an unopened ')'."""
    depth = 0
    in_class = False
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif char in ";|" and depth == 0:
            break
        index += 1
    return min(index, len(text))


def _valid_temporal(make: type[DateTime | Date | Time], text: str) -> bool:
    parse: Callable[[str], object] = {
        DateTime: datetime.fromisoformat,
        Date: date.fromisoformat,
        Time: time.fromisoformat,
    }[make]
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _kind(value: Value) -> str | None:
    """Return the kind a comparable literal has (number, string, date-time), None for others."""
    if isinstance(value, bool | Uri):
        return None
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, DateTime):
        return "date-time"
    return "string"


def render(expr: Node) -> str:
    """Render a tree back to query text (parsing the text gives the same tree)."""
    if isinstance(expr, And):
        return ";".join(f"({render(i)})" if isinstance(i, Or) else render(i) for i in expr.items)
    if isinstance(expr, Or):
        return "|".join(render(item) for item in expr.items)
    if isinstance(expr, Exists):
        return ("!" if expr.negated else "") + render_path(expr.path)
    if isinstance(expr, Match):
        return render_path(expr.path) + ("!~=" if expr.negated else "~=") + _quote(expr.pattern)
    if isinstance(expr, Compare):
        value = expr.value
        if isinstance(value, Range):
            text = f"{render_value(value.low)}..{render_value(value.high)}"
        elif isinstance(value, ValueList):
            text = ",".join(render_value(item) for item in value.values)
        else:
            text = render_value(value)
        return render_path(expr.path) + expr.op + text
    if isinstance(expr, ScopePattern):
        return "".join("/" + segment for segment in expr.segments)
    return expr.name


def render_path(path: AttrPath) -> str:
    """Render an attribute path as written in ``q``."""
    text = ".".join([path.attr, *path.sub])
    if path.meta is not None:
        text += "." + path.meta
    return text + "".join(f"[{key}]" for key in path.keys)


def render_value(value: Value) -> str:
    """Render a literal as written in ``q``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    return value.text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def map_names(expr: Node, expand: Callable[[str], str]) -> Node:
    """Return the tree with attribute, sub-attribute and type names passed through ``expand``."""
    if isinstance(expr, And | Or):
        return replace(expr, items=tuple(map_names(item, expand) for item in expr.items))
    if isinstance(expr, Compare | Match | Exists):
        path = expr.path
        mapped = replace(
            path,
            attr=expand(path.attr),
            sub=tuple(expand(name) for name in path.sub),
            raw_sub=path.raw_sub,
        )
        return replace(expr, path=mapped)
    if isinstance(expr, TypeName):
        return TypeName(expand(expr.name))
    return expr


def map_type_names(expr: Node, expand: Callable[[str], str]) -> Node:
    """Return a type selection with its type names passed through ``expand``."""
    return map_names(expr, expand)
