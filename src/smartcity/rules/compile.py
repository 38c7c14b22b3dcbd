"""Check a rule set as a whole and compile its filters and keys for the engine.

Every problem is reported with the path it was found at (``rules[3].when.q``), which the loader
turns into a line of the YAML file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smartcity.core.errors import InvalidRequest
from smartcity.core.qlang import parse_q
from smartcity.rules.aggregates import parse_aggregate
from smartcity.rules.match import Condition, compile_conjuncts, compile_q, q_names
from smartcity.rules.model import Filter, Rule, RuleSet
from smartcity.rules.spatial import valid_zone
from smartcity.rules.templates import check_templates

PathPart = str | int
Found = tuple[tuple[PathPart, ...], str]


def check_rule_set(rule_set: RuleSet) -> list[Found]:
    """Return every problem of a rule set that its model alone cannot see."""
    problems: list[Found] = []
    try:
        ZoneInfo(rule_set.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            (("timezone",), f"unknown time zone {rule_set.timezone!r}; e.g. Asia/Seoul")
        )
    for name, geometry in rule_set.zones.items():
        problem = valid_zone(geometry)
        if problem:
            problems.append((("zones", name), problem))
    seen: set[str] = set()
    for index, rule in enumerate(rule_set.rules):
        at: tuple[PathPart, ...] = ("rules", index)
        if rule.id in seen:
            problems.append(((*at, "id"), f"rule id {rule.id!r} is used twice; ids are unique"))
        seen.add(rule.id)
        problems.extend((path, message) for path, message in _check_rule(rule, rule_set, at))
    return problems


def _check_rule(rule: Rule, rule_set: RuleSet, at: tuple[PathPart, ...]) -> Iterator[Found]:
    filters: list[tuple[tuple[PathPart, ...], Filter, bool]] = []
    if rule.when is not None:
        filters.append(((*at, "when"), rule.when, True))
    if rule.condition is not None:
        filters.append(((*at, "condition"), rule.condition, False))
    if rule.sequence is not None:
        filters.append(((*at, "sequence", "first"), rule.sequence.first, True))
        filters.append(((*at, "sequence", "then"), rule.sequence.then, True))
    for path, item, typed in filters:
        if typed and not item.type:
            yield (path, "give the entity type(s) this filter is for, e.g. type: WasteContainer")
        yield from _check_q(path, item.q)
        yield from _check_id(path, item.id)
        for side in ("inside", "outside"):
            zone = getattr(item, side)
            if zone is not None and not zone.startswith("@") and zone not in rule_set.zones:
                yield ((*path, side), _unknown_zone(zone, rule_set))
    for number, join in enumerate(rule.require):
        path = (*at, "require", number)
        yield from _check_q(path, join.q)
        yield from _check_id(path, join.id)
        if join.inside is not None and join.inside not in rule_set.zones:
            yield ((*path, "inside"), _unknown_zone(join.inside, rule_set))
    if not isinstance(rule.key, str) and rule.key.zone is not None:
        for zone in rule.key.zone:
            if zone != "*" and zone not in rule_set.zones:
                yield ((*at, "key", "zone"), _unknown_zone(zone, rule_set))
    if rule.schedule is not None:
        for name in (rule.schedule.calendar, rule.schedule.not_calendar):
            if name is not None and name not in rule_set.calendars:
                known = ", ".join(sorted(rule_set.calendars)) or "none yet"
                yield (
                    (*at, "schedule"),
                    f"unknown calendar {name!r}: add it under calendars: (known: {known})",
                )
    yield from _check_aggregates(rule, at)
    for number, action in enumerate(rule.actions):
        path = (*at, "actions", number)
        body = getattr(action, action.kind)
        for problem in check_templates(body):
            yield ((*path, action.kind), problem)
        target = action.target
        if target is not None and not isinstance(target, str):
            yield from _check_q((*path, "target"), target.q)
            if target.inside is not None and target.inside not in rule_set.zones:
                yield ((*path, "target", "inside"), _unknown_zone(target.inside, rule_set))
            if not target.type and not target.ids:
                yield ((*path, "target"), "a target names entity types (with near/q) or ids")


def _check_aggregates(rule: Rule, at: tuple[PathPart, ...]) -> Iterator[Found]:
    names = set()
    for name, text in rule.aggregates.items():
        try:
            parse_aggregate(text)
        except ValueError as error:
            yield ((*at, "aggregates", name), str(error))
        names.add(name)
    if rule.value is not None and rule.value not in names:
        try:
            aggregate = parse_aggregate(rule.value)
        except ValueError as error:
            yield ((*at, "value"), str(error))
        else:
            if aggregate.function != "last" and rule.window is None:
                yield ((*at, "value"), f"{rule.value} is an aggregate: give the rule a window")
    if rule.kind == "aggregate" and not rule.aggregates:
        yield ((*at, "aggregates"), "an aggregate rule names its aggregates, e.g. n: count()")
    if rule.having is not None:
        try:
            used = q_names(parse_q(rule.having))
        except InvalidRequest as error:
            yield ((*at, "having"), f"{error.detail}; write it in the NGSI-LD q language")
        else:
            for name in sorted(used - names):
                known = ", ".join(sorted(names)) or "none"
                yield ((*at, "having"), f"{name!r} is not one of the aggregates ({known})")


def _check_q(path: tuple[PathPart, ...], q: str | None) -> Iterator[Found]:
    if q is None:
        return
    try:
        parse_q(q)
    except InvalidRequest as error:
        yield (
            (*path, "q"),
            f"{error.detail}; write it in the NGSI-LD q language, e.g. fillingLevel>=0.9 "
            "(quote the whole condition in YAML when it contains ':' or starts with a quote)",
        )


def _check_id(path: tuple[PathPart, ...], pattern: str | None) -> Iterator[Found]:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as error:
        yield ((*path, "id"), f"not a regular expression ({error}); e.g. urn:ngsi-ld:Camera:.*")


def _unknown_zone(zone: str, rule_set: RuleSet) -> str:
    known = ", ".join(sorted(rule_set.zones)) or "none yet"
    return f"unknown zone {zone!r}: add it under zones: (known: {known}) or use @attribute"


_SLOTS: dict[str, int] = {}


def memo_slot(signature: str) -> int:
    """Return the number under which changes remember a test's result (same test, same slot)."""
    found = _SLOTS.get(signature)
    if found is None:
        found = _SLOTS[signature] = len(_SLOTS) + 1
    return found


class CompiledFilter:
    """A filter ready to test changes.

    Rules often share a filter (``when: {type: TrafficFlowObserved}``), so a change remembers
    each filter's answer under its slot, and the next rule with the same filter reads it.
    """

    def __init__(self, item: Filter, reads: set[str]) -> None:
        self.types = frozenset(sys.intern(name) for name in item.type or ())  # (`local_name`)
        self.id = re.compile(item.id) if item.id else None
        self.q: Condition | None = None
        self.conjuncts: tuple[tuple[int, Condition], ...] = ()
        """The parts of q that must all hold, each under its memo slot (shared between rules)."""
        names: set[str] = set()
        if item.q:
            self.q, names = compile_q(item.q)
            self.conjuncts = tuple(
                (memo_slot("q" + signature), part) for signature, part in compile_conjuncts(item.q)
            )
        self.inside = item.inside
        self.outside = item.outside
        if item.watch is not None:
            self.watch: tuple[str, ...] | None = tuple(sys.intern(name) for name in item.watch)
        else:
            watched = sorted(sys.intern(name) for name in names | reads)
            self.watch = tuple(watched) if watched else None
        self.spatial = self.inside is not None or self.outside is not None
        self.always = self.id is None and self.q is None and not self.spatial
        """Whether every changed entity of its types meets its id, q and zones (it has none)."""
        signature = repr((item.id, item.q, self.watch, self.inside, self.outside))
        self.slot = memo_slot("passes" + signature)
        self.hold_slot = memo_slot("holds" + signature)

    def describe(self) -> dict[str, Any]:
        """Return what the filter looks at (for metrics and docs)."""
        return {"types": sorted(self.types), "watch": list(self.watch or ())}
