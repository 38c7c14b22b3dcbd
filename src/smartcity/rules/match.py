"""Precompiled conditions: NGSI-LD ``q`` over a changed entity, by the names rules use.

Conditions are parsed by the broker's parser (`core.qlang.parse_q`) and keep its meaning exactly:
leaves compare through the broker's own predicates and keys (`core.qeval`). What this module adds
is speed: each leaf's predicate is built once, not at every evaluation, and attribute names are
found through the entity's cached name map (`names.py`).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from smartcity.core.entity import StoredEntity
from smartcity.core.qeval import (
    as_number,
    compare_predicate,
    instance_keys,
    match_predicate,
    resolve,
    value_keys,
)
from smartcity.core.qlang import (
    And,
    AttrPath,
    Compare,
    Exists,
    Match,
    Node,
    Or,
    parse_q,
)
from smartcity.rules.names import NameMap

Condition = Callable[[StoredEntity, NameMap], bool]
_ids = itertools.count(1)
_OPS: Final = {"==": 0, "!=": 1, ">": 2, ">=": 3, "<": 4, "<=": 5}
_MAX_REMEMBERED: Final = 4096


class Bound:
    """A comparison with a fixed number (``>= 0.9``), as the operator would make it.

    Compiled, comparing two floats here costs a fraction of calling `operator.ge` with them
    (which boxes both), and rules compare readings with their limits on every change.
    """

    __slots__ = ("code", "number")

    def __init__(self, op: str, number: float) -> None:
        self.code = _OPS[op]
        self.number = number

    def holds(self, value: float) -> bool:
        """Tell whether a number meets the comparison."""
        code, number = self.code, self.number
        if code == 0:
            return value == number
        if code == 1:
            return value != number
        if code == 2:
            return value > number
        if code == 3:
            return value >= number
        if code == 4:
            return value < number
        return value <= number


def as_float(value: int | float) -> float:
    """Return a number as `core.qeval.as_number` does, compiled (it is called on readings
    of every change; only an integer too large for a float goes on to `as_number`)."""
    if type(value) is float:
        return value
    try:
        return float(value)
    except OverflowError:
        return as_number(value)


def q_names(expr: Node) -> set[str]:
    """Return the attribute names a q tree reads."""
    if isinstance(expr, And | Or):
        return set().union(*(q_names(item) for item in expr.items))
    if isinstance(expr, Compare | Match | Exists):
        return {expr.path.attr}
    return set()


def compile_q(text: str) -> tuple[Condition, set[str]]:
    """Return a fast test for a q condition and the attribute names it reads."""
    expr = parse_q(text)
    return _compile(expr), q_names(expr)


def compile_conjuncts(text: str) -> list[tuple[str, Condition]]:
    """Return the parts of a q condition that must all hold, each with a signature and its test.

    Rules often share a part (``detectedEvent=="violence"`` with different confidences), so a
    change can remember each part's answer by its signature and test it once for all of them.
    """
    expr = parse_q(text)
    parts = expr.items if isinstance(expr, And) else (expr,)
    return [(repr(part), _compile(part)) for part in parts]


def _compile(expr: Node) -> Condition:
    if isinstance(expr, And | Or):
        return _junction([_compile(item) for item in expr.items], isinstance(expr, Or))
    if isinstance(expr, Exists):
        return _exists(expr)
    if isinstance(expr, Compare):
        return _leaf(expr.path, compare_predicate(expr), expr.op == "!=", _numeric(expr))
    if isinstance(expr, Match):
        return _leaf(expr.path, match_predicate(expr), expr.negated, None)
    raise TypeError(f"not a q expression: {expr!r}")


def _numeric(expr: Compare) -> Bound | None:
    """Return a comparison with a number as a bound: what its predicate does with a number
    (`core.qeval.key_matches` on two ``num`` keys), without building keys (``!=`` gives the
    ``==`` test, as `core.qeval.compare_predicate` does)."""
    value = expr.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Bound("==" if expr.op == "!=" else expr.op, as_number(value))


def _junction(parts: list[Condition], any_of: bool) -> Condition:
    """Return the test that all parts hold (`any_of`: that one does), in order, lazily."""

    def junction(entity: StoredEntity, names: NameMap) -> bool:
        for part in parts:
            if part(entity, names) == any_of:
                return any_of
        return not any_of

    return junction


def _exists(expr: Exists) -> Condition:
    path, negated = expr.path, expr.negated
    if path.top_level:

        def top(entity: StoredEntity, names: NameMap) -> bool:
            iri = names.iris.get(path.attr)
            return bool(iri is not None and entity.attrs.get(iri)) != negated

        return top

    def deep(entity: StoredEntity, names: NameMap) -> bool:
        iri = names.iris.get(path.attr)
        if iri is None:
            return negated
        found = any(present for present, _ in resolve(replace(path, attr=iri), entity))
        return found != negated

    return deep


def _leaf(
    path: AttrPath,
    predicate: Callable[[Any], bool],
    negated: bool,
    numeric: Bound | None,
) -> Condition:
    """Return the test of one comparison, as `core.qeval._holds` defines it.

    A Property's number meets a numeric comparison directly; a Property's text or boolean is
    tested once and the answer remembered (it depends on the value alone), as readings repeat a
    few values ("occupied", "violence", true).
    """
    attr = sys.intern(path.attr)  # (as `names.local_name` interns the names it finds)
    if path.top_level:
        texts: dict[str, bool] = {}
        flags: dict[bool, bool] = {}

        def top(entity: StoredEntity, names: NameMap) -> bool:
            iri = names.iris.get(attr)
            if iri is None:
                return False
            instances = entity.attrs.get(iri)
            if instances is None:
                return False
            for instance in instances:
                value: Any = instance.get("value")
                kind = type(value)
                if (kind is float or kind is int) and instance.get(
                    "type", "Property"
                ) == "Property":
                    if numeric is not None:
                        hit = numeric.holds(as_float(value))
                    else:
                        hit = predicate(("num", as_number(value)))
                elif kind is str and instance.get("type", "Property") == "Property":
                    found = texts.get(value)
                    if found is None:
                        if len(texts) >= _MAX_REMEMBERED:
                            texts.clear()
                        found = texts[value] = any(
                            predicate(key) for key in instance_keys(instance)
                        )
                    hit = found
                elif kind is bool and instance.get("type", "Property") == "Property":
                    found = flags.get(value)
                    if found is None:
                        found = flags[value] = any(
                            predicate(key) for key in instance_keys(instance)
                        )
                    hit = found
                else:
                    hit = any(predicate(key) for key in instance_keys(instance))
                if hit != negated:
                    return True
            return False

        return top
    paths: dict[str, AttrPath] = {}

    def deep(entity: StoredEntity, names: NameMap) -> bool:
        iri = names.iris.get(attr)
        if iri is None:
            return False
        expanded = paths.get(iri)
        if expanded is None:
            expanded = paths[iri] = replace(path, attr=iri)
        for present, keys in resolve(expanded, entity):
            if present and any(predicate(key) for key in keys) != negated:
                return True
        return False

    return deep


class ValuesCondition:
    """A test of a q condition over named values (aggregates).

    Objects of compiled classes, not closures: compiled, calling `holds` is a direct call,
    where a closure goes through Python's generic call (argument parsing and all) each time.
    """

    def holds(self, values: dict[str, Any]) -> bool:
        """Tell whether the values meet the condition."""
        raise NotImplementedError


def compile_values_q(text: str) -> ValuesCondition:
    """Return a test of a q condition over named values (aggregates), each a Property's value.

    Leaves keep `core.qeval`'s meaning for a Property that holds the value; paths into values
    (``x[k]``, ``x.observedAt``) go through an entity made of the values.
    """
    return _compile_values(parse_q(text))


def _compile_values(expr: Node) -> ValuesCondition:
    if isinstance(expr, And | Or):
        return _ValuesJunction([_compile_values(item) for item in expr.items], isinstance(expr, Or))
    if not isinstance(expr, Compare | Match | Exists):
        raise TypeError(f"not a q expression: {expr!r}")
    path = expr.path
    if not path.top_level:
        return _ValuesPath(_compile(expr))
    if isinstance(expr, Exists):
        return _ValuesExists(path.attr, expr.negated)
    if isinstance(expr, Compare):
        return _ValuesLeaf(path.attr, compare_predicate(expr), expr.op == "!=", _numeric(expr))
    return _ValuesLeaf(path.attr, match_predicate(expr), expr.negated, None)


class _ValuesLeaf(ValuesCondition):
    """One comparison of a named value, as `core.qeval` defines it for a Property's value."""

    def __init__(
        self, name: str, predicate: Callable[[Any], bool], negated: bool, numeric: Bound | None
    ) -> None:
        self.name = name
        self.predicate = predicate
        self.negated = negated
        self.numeric = numeric

    def holds(self, values: dict[str, Any]) -> bool:
        value: Any = values.get(self.name)
        if value is None:
            return False
        kind = type(value)
        if kind is int or kind is float:
            numeric = self.numeric
            if numeric is not None:
                return numeric.holds(as_float(value)) != self.negated
            return self.predicate(("num", as_number(value))) != self.negated
        predicate = self.predicate
        return any(predicate(key) for key in value_keys(value)) != self.negated


class _ValuesExists(ValuesCondition):
    """Whether a named value is there (or, negated, is not)."""

    def __init__(self, name: str, negated: bool) -> None:
        self.name = name
        self.negated = negated

    def holds(self, values: dict[str, Any]) -> bool:
        return (values.get(self.name) is not None) != self.negated


class _ValuesPath(ValuesCondition):
    """A condition on a path into values, tested on an entity made of the values."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition

    def holds(self, values: dict[str, Any]) -> bool:
        return self.condition(*values_entity(values))


class _ValuesJunction(ValuesCondition):
    """The test that all parts hold over values (`any_of`: that one does), in order, lazily."""

    def __init__(self, parts: list[ValuesCondition], any_of: bool) -> None:
        self.parts = parts
        self.any_of = any_of

    def holds(self, values: dict[str, Any]) -> bool:
        any_of = self.any_of
        for part in self.parts:
            if part.holds(values) == any_of:
                return any_of
        return not any_of


def condition_id() -> int:
    """Return a fresh id for a compiled condition (its cache slot in name maps)."""
    return next(_ids)


_VALUE_NAMES: Final[dict[tuple[str, ...], NameMap]] = {}


def values_entity(values: dict[str, Any]) -> tuple[StoredEntity, NameMap]:
    """Return aggregates as an entity of Properties, so a q condition can test them."""
    attrs = {
        name: [{"type": "Property", "value": value}]
        for name, value in values.items()
        if value is not None
    }
    entity = StoredEntity("urn:smartcity:rules:values", [], attrs)
    shape = tuple(attrs)
    names = _VALUE_NAMES.get(shape)
    if names is None:
        names = NameMap(())
        names.iris = {name: name for name in shape}
        if len(_VALUE_NAMES) < 10_000:
            _VALUE_NAMES[shape] = names
    return entity, names
