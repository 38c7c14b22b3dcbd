"""Rules over time: sequences (A then B, A without B) and absences (silent devices)."""

from __future__ import annotations

import math
from typing import Any, Final

from smartcity.core.entity import StoredEntity
from smartcity.rules.compile import CompiledFilter
from smartcity.rules.compiled import RuleRuntime
from smartcity.rules.events import (
    Env,
    Event,
    Subject,
    Timer,
    passes,
    remember_where,
    restored_subject,
    split_state_key,
    state_key_of,
    subject_of,
    where_of,
)
from smartcity.rules.firing import Firing
from smartcity.rules.kinds import MatchRule, StateRule
from smartcity.rules.model import Rule
from smartcity.rules.names import format_moment, local_name, name_map, parse_moment
from smartcity.rules.windowed import AggregateRule, ThresholdRule

_NEVER: Final = -math.inf


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

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        check = self.then if role == "then" else self.first
        if not passes(check, event, self.env.zones):
            return None
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return None
        key, geometry = keyed
        state_key = state_key_of(event.tenant, self._slot(event, key))
        state = self.state_at(state_key)
        pending: list[list[Any]] = state.setdefault("pending", [])
        within = self.spec.within
        if role == "first":
            point = event.point
            pending.append([*event.item(), key, list(point) if point else None])
            if self.spec.absent:
                self.timer(event.t + within, state_key, "due")
            return None
        matched = [
            a for a in pending if a[0] <= event.t <= a[0] + within and self._near(a, event, key)
        ]
        if self.spec.absent:
            for a in matched:
                pending.remove(a)
            return None
        pending[:] = [a for a in pending if a[0] + within >= event.t]
        if not matched:
            return None
        first = matched[0]
        pending.remove(first)
        subject = subject_of(event, first[4], geometry)
        if not self.armed(subject, event.t):
            return None
        subject.evidence = [first[:4], event.item()]
        values = {"gap": event.t - first[0], "first": first[2], "then": event.entity.id}
        firing = self.emit("fire", subject, event.t, values, self.state(event.tenant, first[4]))
        return [firing] if firing else None

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
        tenant = split_state_key(state_key)[0]
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

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        if not passes(self.when, event, self.env.zones):
            return None
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return None
        key, geometry = keyed
        state_key = event.state_key(key)
        state = self.state_at(state_key)
        if event.t < state.get("last", _NEVER):
            return None
        state["last"] = event.t
        remember_where(state, event, key, geometry)
        state["seen"] = event.item()
        if not state.get("armed"):  # one timer per key at a time, moved on when it comes due
            state["armed"] = True
            self.timer(event.t + self.after, state_key, "silent")
        if not state.get("raised"):
            return None
        state["raised"] = False
        if state.pop("silent", False):
            return None
        subject = subject_of(event, key, geometry)
        subject.evidence = [event.item()]
        firing = self.emit("clear", subject, event.t, {"silentSeconds": 0}, state)
        return [firing] if firing else None

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
        state_key = state_key_of(tenant, keyed[0])
        state = self.state_at(state_key)
        if "last" in state:
            return
        state["last"] = moment
        state["where"] = where_of(subject_of(event, keyed[0], keyed[1]))
        state["seen"] = event.item()
        state["armed"] = True
        self.timer(moment + self.after, state_key, "silent")

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        state = self.states.get(state_key)
        if state is None:
            return []
        state["armed"] = False
        silent_from = max(state.get("last", 0.0), self._resumed(due)) + self.after
        if silent_from > due:  # heard from since the timer was set (or deaf): wait on
            state["armed"] = True
            self.timer(silent_from, state_key, "silent")
            return []
        if state.get("raised"):
            return []
        tenant, key = split_state_key(state_key)
        subject = restored_subject(self.env, tenant, key, state)
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

    def _resumed(self, due: float) -> float:
        """Return the end of a feed gap at least `after` long that `due` falls in, else -inf:
        nothing at all was heard then, so silence counts from when the feed came back."""
        for heard, resumed in self.env.gaps:
            if heard < due <= resumed and resumed - heard >= self.after:
                return resumed
        return float("-inf")


def _iso(moment: float) -> str:

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
