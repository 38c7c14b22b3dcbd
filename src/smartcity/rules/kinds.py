"""The kinds of rule: match, state, threshold, aggregate, sequence and absence."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from smartcity.core.entity import StoredEntity
from smartcity.rules.aggregates import Aggregate, Item, Windowing, parse_aggregate
from smartcity.rules.compile import CompiledFilter
from smartcity.rules.firing import Firing
from smartcity.rules.match import compile_values_q
from smartcity.rules.model import Rule, parse_threshold
from smartcity.rules.names import local_name, name_map, parse_moment
from smartcity.rules.runtime import Env, Event, RuleRuntime, Subject, Timer, holds, passes
from smartcity.rules.state import OPERATORS

_process_time = time.process_time


SubjectSource = Subject | Callable[[], Subject]
"""A subject, or how to make it (most evaluations fire nothing and never need one)."""


def resolve(source: SubjectSource) -> Subject:
    """Return the subject a source stands for."""
    return source if isinstance(source, Subject) else source()


def _subject(event: Event, key: str, geometry: dict[str, Any] | None) -> Subject:
    return Subject(event.tenant, key, geometry=geometry, event=event)


class MatchRule(RuleRuntime):
    """Fire on every change that passes the filter (while armed, at most once per `suppress`)."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.when is not None
        self.when = CompiledFilter(rule.when, set())

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def on_event(self, role: str, event: Event) -> list[Firing]:
        if not passes(self.when, event, self.env.zones):
            return []
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return []
        subject = _subject(event, *keyed)
        if not self.armed(subject, event.t):
            return []
        subject.evidence = [event.item()]
        state = self.state(event.tenant, subject.key)
        firing = self.emit("fire", subject, event.t, {}, state)
        return [firing] if firing else []


class Hysteresis(RuleRuntime):
    """Raise when a condition starts to hold (for long enough, while armed); clear when it ends."""

    hold_for: float | None = None

    def transition(
        self,
        source: SubjectSource,
        state: dict[str, Any],
        hot: bool,
        cold: bool,
        moment: float,
        values: dict[str, Any],
        start: float | None = None,
    ) -> list[Firing]:
        """Move a key's state on one evaluation; return the raise or clear it caused.

        `start` is when the evaluated readings began (a tumbling block's start): a condition
        that holds over a whole block has held since then.
        """
        if state.get("raised"):
            if not cold:
                return []
            state["raised"] = False
            state.pop("since", None)
            if state.pop("silent", False):
                return []
            firing = self.emit("clear", resolve(source), moment, values, state)
            return [firing] if firing else []
        if not hot:
            state.pop("since", None)
            return []
        if self.hold_for:
            since = state.setdefault("since", moment if start is None else start)
            if moment - since < self.hold_for:
                return []
        subject = resolve(source)
        if not self.armed(subject, moment):
            return []
        state["raised"] = True
        firing = self.emit("raise", subject, moment, values, state)
        if firing is None:
            state["silent"] = True
            return []
        return [firing]


class StateRule(Hysteresis):
    """Raised while the changed entity meets `condition` (illegal parking, out of safe zone)."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.when is not None
        assert rule.condition is not None
        self.condition = CompiledFilter(rule.condition, set())
        reads = set(self.condition.watch or ())
        if rule.condition.inside or rule.condition.outside:
            reads.add("location")
        self.when = CompiledFilter(rule.when, reads)
        self.hold_for = rule.for_

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def on_event(self, role: str, event: Event) -> list[Firing]:
        if not passes(self.when, event, self.env.zones):
            return []
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return []
        key, geometry = keyed

        def reading() -> Subject:
            subject = _subject(event, key, geometry)
            subject.evidence = [event.item()]
            return subject

        hot = holds(self.condition, event, self.env.zones)
        state = self.state(event.tenant, key)
        return self.transition(reading, state, hot, not hot, event.t, {})


class WindowedRule(Hysteresis):
    """A rule that keeps a window of readings per key (threshold and aggregate rules)."""

    windowing: Windowing
    when: CompiledFilter
    plain = ""
    """The attribute a threshold without a window reads."""

    def setup_window(self, rule: Rule, extra: dict[str, Aggregate]) -> CompiledFilter:
        """Compile the window and return the `when` filter that watches its attributes."""
        aggregates = {name: parse_aggregate(text) for name, text in rule.aggregates.items()}
        aggregates.update(extra)
        self.windowing = Windowing(rule.window, aggregates)
        assert rule.when is not None
        return CompiledFilter(rule.when, set(self.windowing.columns))

    def read(self, event: Event) -> Item:
        """Return a change as a window item (its time, origin and the watched values)."""
        value = event.value
        return event.item(*[value(column) for column in self.windowing.columns])

    def close_blocks(
        self, subject: Subject, state: dict[str, Any], blocks: list[list[Item]]
    ) -> list[Firing]:
        """Evaluate closed tumbling blocks (at the end of each)."""
        fired: list[Firing] = []
        for items in blocks:
            end = self.block_end(items)
            start = end - self.windowing.size if self.windowing.size is not None else items[0][0]
            subject.evidence = items
            fired.extend(self.evaluate(subject, state, self.windowing.values(items), end, start))
        return fired

    def block_end(self, items: list[Item]) -> float:
        """Return when a tumbling block ended (time blocks) or its last reading (count blocks)."""
        if self.windowing.size is not None:
            return self.windowing.block_of(items[0][0]) + self.windowing.size
        return float(items[-1][0])

    def evaluate(
        self,
        subject: SubjectSource,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing]:
        """Evaluate the rule's condition on a window's values."""
        raise NotImplementedError

    def on_event(self, role: str, event: Event) -> list[Firing]:
        when = self.when
        passed = event.memo.get(when.slot)
        if passed is None:
            passed = passes(when, event, self.env.zones)
        if not passed:
            return []
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return []
        tenant = event.tenant
        key, geometry = keyed
        state_key = tenant + "\x1f" + key
        state = self.states.get(state_key)
        if state is None:
            state = self.states[state_key] = {}
        windowing = self.windowing
        if windowing.window is None:  # a reading's own value: no window to keep

            def reading() -> Subject:
                subject = Subject(tenant, key, geometry=geometry, event=event)
                subject.evidence = [event.item()]
                return subject

            return self.evaluate(reading, state, {"value": event.value(self.plain)}, event.t)
        item = self.read(event)
        if windowing.tumbling:
            subject = Subject(tenant, key, geometry=geometry, event=event)
            had_block = state.get("block")
            blocks = windowing.add(state, item)
            fired = self.close_blocks(subject, state, blocks) if blocks else []
            if windowing.size is not None and state.get("block") != had_block:
                self.timer(state["block"] + windowing.size, state_key, "block")
            _remember_where(state, subject, event)
            return fired
        windowing.add(state, item)
        items = state["items"]

        def window() -> Subject:
            subject = Subject(tenant, key, geometry=geometry, event=event)
            subject.evidence = items
            return subject

        return self.evaluate(window, state, windowing.values(items, state), event.t)

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        state = self.states.get(state_key)
        if state is None:
            return []
        items = self.windowing.close_due(state, due)
        if not items:
            return []
        tenant, key = state_key.split("\x1f", 1)
        subject = _restored_subject(self, tenant, key, state)
        return self.close_blocks(subject, state, [items])


def _remember_where(state: dict[str, Any], subject: Subject, event: Event) -> None:
    """Keep where a key's entity is, for timers; again only when its location changed."""
    where = state.get("where")
    if where is None or where.get("entity") != event.entity.id or event.created:
        state["where"] = _where(subject)
        return
    location = event.names.iris.get("location")
    if location is not None and location in event.changed:
        state["where"] = _where(subject)


def _where(subject: Subject) -> dict[str, Any]:
    return {
        "entity": subject.entity.id if subject.entity is not None else None,
        "point": list(subject.point) if subject.point is not None else None,
        "geometry": subject.geometry,
    }


def _restored_subject(rule: RuleRuntime, tenant: str, key: str, state: dict[str, Any]) -> Subject:
    """Return the subject of a key when a timer (not a change) fires it."""
    where = state.get("where") or {}
    entity = rule.env.state.get(tenant, where.get("entity") or "")
    point = where.get("point")
    return Subject(
        tenant,
        key,
        entity,
        name_map(entity) if entity is not None else None,
        (point[0], point[1]) if point else None,
        where.get("geometry"),
    )


class ThresholdRule(WindowedRule):
    """Raise when a value (a reading or an aggregate) crosses `raise`; clear at `clear`."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.value is not None
        assert rule.raise_ is not None
        self.value_name = rule.value if rule.value in rule.aggregates else "value"
        extra = {} if rule.value in rule.aggregates else {"value": parse_aggregate(rule.value)}
        self.when = self.setup_window(rule, extra)
        plain = extra.get("value")
        self.plain = (
            (plain.attribute or "") if plain is not None and plain.function == "last" else ""
        )
        op, number = parse_threshold(rule.raise_)
        self.hot = (OPERATORS[op], number)
        self.cold = None
        if rule.clear is not None:
            op, number = parse_threshold(rule.clear)
            self.cold = (OPERATORS[op], number)
        self.hold_for = rule.for_

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def evaluate(
        self,
        subject: SubjectSource,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing]:
        value = values.get(self.value_name)
        if value.__class__ not in (int, float):
            return []
        hot = self.hot[0](value, self.hot[1])
        cold = self.cold[0](value, self.cold[1]) if self.cold else not hot
        return self.transition(subject, state, hot, cold, moment, values, start)


class AggregateRule(WindowedRule):
    """Aggregates over a window, tested by `having`: at each block's end, or raised while true."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.having is not None
        self.when = self.setup_window(rule, {})
        self.having = compile_values_q(rule.having)

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def evaluate(
        self,
        subject: SubjectSource,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing]:
        hot = self.having(values)
        if self.windowing.tumbling:
            if not hot:
                return []
            whom = resolve(subject)
            if not self.armed(whom, moment):
                return []
            firing = self.emit("fire", whom, moment, values, state)
            return [firing] if firing else []
        return self.transition(subject, state, hot, not hot, moment, values)


class SequenceRule(RuleRuntime):
    """A followed by B within a time (same key, or within a distance); or A without B."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.sequence is not None
        self.spec = rule.sequence
        self.first = CompiledFilter(rule.sequence.first, set())
        self.then = CompiledFilter(rule.sequence.then, set())

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("then", self.then), ("first", self.first)]

    def _slot(self, event: Event, key: str) -> str:
        return "*" if self.spec.distance is not None else key

    def on_event(self, role: str, event: Event) -> list[Firing]:
        check = self.then if role == "then" else self.first
        if not passes(check, event, self.env.zones):
            return []
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return []
        key, geometry = keyed
        state = self.state(event.tenant, self._slot(event, key))
        pending: list[list[Any]] = state.setdefault("pending", [])
        within = self.spec.within
        if role == "first":
            point = event.point
            pending.append([*event.item(), key, list(point) if point else None])
            if self.spec.absent:
                self.timer(event.t + within, event.tenant + "\x1f" + self._slot(event, key), "due")
            return []
        matched = [
            a for a in pending if a[0] <= event.t <= a[0] + within and self._near(a, event, key)
        ]
        if self.spec.absent:
            for a in matched:
                pending.remove(a)
            return []
        pending[:] = [a for a in pending if a[0] + within >= event.t]
        if not matched:
            return []
        first = matched[0]
        pending.remove(first)
        subject = _subject(event, first[4], geometry)
        if not self.armed(subject, event.t):
            return []
        subject.evidence = [first[:4], event.item()]
        values = {"gap": event.t - first[0], "first": first[2], "then": event.entity.id}
        firing = self.emit("fire", subject, event.t, values, self.state(event.tenant, first[4]))
        return [firing] if firing else []

    def _near(self, first: list[Any], event: Event, key: str) -> bool:
        if self.spec.distance is None:
            return bool(first[4] == key)
        point = event.point
        if point is None or first[5] is None:
            return False
        return self.env.plane.distance((first[5][0], first[5][1]), point) <= self.spec.distance

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        state = self.states.get(state_key)
        if state is None:
            return []
        pending = state.get("pending", [])
        due_now = [a for a in pending if a[0] + self.spec.within <= due]
        pending[:] = [a for a in pending if a[0] + self.spec.within > due]
        tenant = state_key.split("\x1f", 1)[0]
        fired: list[Firing] = []
        for first in due_now:
            entity = self.env.state.get(tenant, first[2])
            point = (first[5][0], first[5][1]) if first[5] else None
            subject = Subject(tenant, first[4], entity, name_map(entity) if entity else None, point)
            subject.evidence = [first[:4]]
            moment = first[0] + self.spec.within
            if self.schedule is not None and not self.schedule.armed(moment):
                continue
            firing = self.emit(
                "fire", subject, moment, {"first": first[2]}, self.state(tenant, first[4])
            )
            if firing:
                fired.append(firing)
        return fired


class AbsenceRule(RuleRuntime):
    """Raise when nothing was heard from a key for `after`; clear when it speaks again."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.when is not None
        assert rule.after is not None
        self.when = CompiledFilter(rule.when, set())
        self.after = rule.after

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def on_event(self, role: str, event: Event) -> list[Firing]:
        if not passes(self.when, event, self.env.zones):
            return []
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return []
        subject = _subject(event, *keyed)
        state = self.state(event.tenant, subject.key)
        if event.t < state.get("last", float("-inf")):
            return []
        state["last"] = event.t
        _remember_where(state, subject, event)
        state["seen"] = event.item()
        if not state.get("armed"):  # one timer per key at a time, moved on when it comes due
            state["armed"] = True
            self.timer(event.t + self.after, event.tenant + "\x1f" + subject.key, "silent")
        if not state.get("raised"):
            return []
        state["raised"] = False
        if state.pop("silent", False):
            return []
        subject.evidence = [event.item()]
        firing = self.emit("clear", subject, event.t, {"silentSeconds": 0}, state)
        return [firing] if firing else []

    def prime(self, tenant: str, entity: StoredEntity, moment: float) -> None:
        names = name_map(entity)
        type_names = [name for x in entity.types if (name := local_name(x)) in self.when.types]
        if not type_names:
            return
        event = Event(tenant, entity, names, [], True, moment, 0, type_names[0])
        if self.when.q is not None and not self.when.q(entity, names):
            return
        keyed = self.keyer.key(event)
        if keyed is None:
            return
        state = self.state(tenant, keyed[0])
        if "last" in state:
            return
        state["last"] = moment
        state["where"] = _where(_subject(event, *keyed))
        state["seen"] = event.item()
        state["armed"] = True
        self.timer(moment + self.after, tenant + "\x1f" + keyed[0], "silent")

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        state = self.states.get(state_key)
        if state is None:
            return []
        state["armed"] = False
        silent_from = state.get("last", 0.0) + self.after
        if silent_from > due:  # heard from since the timer was set: wait on
            state["armed"] = True
            self.timer(silent_from, state_key, "silent")
            return []
        if state.get("raised"):
            return []
        tenant, key = state_key.split("\x1f", 1)
        subject = _restored_subject(self, tenant, key, state)
        subject.evidence = [state["seen"]] if state.get("seen") else []
        if not self.armed(subject, due) and (self.joins or self.schedule):
            return []
        state["raised"] = True
        values = {"silentSeconds": self.after, "lastSeen": _iso(state["last"])}
        firing = self.emit("raise", subject, due, values, state)
        if firing is None:
            state["silent"] = True
            return []
        return [firing]


def _iso(moment: float) -> str:
    from smartcity.rules.names import format_moment

    return format_moment(moment)


KINDS: dict[str, type[RuleRuntime]] = {
    "match": MatchRule,
    "state": StateRule,
    "threshold": ThresholdRule,
    "aggregate": AggregateRule,
    "sequence": SequenceRule,
    "absence": AbsenceRule,
}


def last_seen(entity: StoredEntity) -> float | None:
    """Return the newest observedAt (else modifiedAt) of an entity, for priming absences."""
    newest = None
    for instances in entity.attrs.values():
        for instance in instances:
            observed = instance.get("observedAt")
            moment = parse_moment(observed) if isinstance(observed, str) else None
            if moment is not None and (newest is None or moment > newest):
                newest = moment
    if newest is None and entity.modified_at:
        newest = parse_moment(entity.modified_at)
    return newest
