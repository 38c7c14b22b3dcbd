"""Rules that do the same work share it: twins share sliding windows, banks share readings.

Rules over one type often differ only in what they test (thresholds of one average, `having`
over the same aggregates), so each would keep the same window per key and do the same work on
every change. Such rules (same trigger filter, tenants, key, window and aggregates: twins) are
linked: the first by id (the lead) moves its window and works out the aggregates; each other
twin whose window *is* the lead's (the same objects, as they are when both started together)
takes the lead's window and aggregates and only tests its own condition. A twin whose window
differs (it started later, was turned off and on, was restored from another state) keeps its own
window, as any rule does; a restore links windows again where they are equal. Snapshots hold
each rule's window on its own, as before: sharing changes nothing a rule computes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from smartcity.rules.compile import memo_slot
from smartcity.rules.compiled import TIME_ONE_IN, Callee, RuleMetrics, RuleRuntime
from smartcity.rules.events import Event, Subject
from smartcity.rules.firing import Firing, gathered
from smartcity.rules.snapshots import copy_data
from smartcity.rules.windowed import ThresholdRule, WindowedRule

WINDOW_PARTS = ("items", "acc")
"""What a key's state holds of its sliding window (the rest is the rule's own)."""


class Twin:
    """A rule's link to its twins: where changes leave the lead's window, and the lead."""

    __slots__ = ("lead", "own_keys", "slot")

    def __init__(self, slot: int, lead: WindowedRule | None) -> None:
        self.slot = slot
        """The change's memo slot where the lead leaves its window before and after, and its
        aggregates."""
        self.lead = lead
        """The rule that moves the window (None: this rule is the lead)."""
        self.own_keys: set[str] = set()
        """Keys whose window this rule made its own copy of (it shares no object any more)."""

    def own(self, state: dict[str, Any], state_key: str) -> None:
        """Make a key's window this rule's own before it moves it (once per key)."""
        if state_key in self.own_keys:
            return
        self.own_keys.add(state_key)
        for part in WINDOW_PARTS:
            if part in state:
                state[part] = copy_data(state[part])


def _signature(rule: WindowedRule) -> str | None:
    windowing = rule.windowing
    if windowing.window is None or windowing.tumbling or windowing.running is None:
        return None
    when = rule.when
    return repr(
        (
            when.slot,
            sorted(when.types),
            sorted(rule.tenants) if rule.tenants is not None else None,
            rule.keyer.slot,
            windowing.window.model_dump(),
            windowing.plan,
        )
    )


def link_twins(rules: Iterable[RuleRuntime]) -> None:
    """Link the rules (enabled ones, in id order) that keep the same sliding windows."""
    groups: dict[str, list[WindowedRule]] = {}
    for runtime in rules:
        if isinstance(runtime, WindowedRule):
            runtime.twin = None
            signature = _signature(runtime)
            if signature is not None:
                groups.setdefault(signature, []).append(runtime)
    for signature, group in groups.items():
        if len(group) < 2:
            continue
        lead, slot = group[0], memo_slot("twins" + signature)
        lead.twin = Twin(slot, None)
        for other in group[1:]:
            other.twin = Twin(slot, lead)


def share_equal_windows(rules: Iterable[RuleRuntime]) -> None:
    """Let twins share the windows that are equal to their lead's (after a restore)."""
    for runtime in rules:
        if not isinstance(runtime, WindowedRule) or runtime.twin is None:
            continue
        lead = runtime.twin.lead
        if lead is None:
            continue
        for state_key, state in runtime.states.items():
            theirs = lead.states.get(state_key)
            if theirs is None or any(part not in state for part in WINDOW_PARTS):
                continue
            if all(state[part] == theirs.get(part) for part in WINDOW_PARTS):
                for part in WINDOW_PARTS:
                    state[part] = theirs[part]


class ThresholdBank(Callee):
    """Thresholds on the same reading of the same changes, evaluated together.

    Rules with the same filter, tenants and key that test a reading's own value (each with its
    own limits) need the same key and value from a change; a bank works them out once and
    then gives each rule its evaluation, in id order, as if each were called on its own. The
    index makes a bank only of rules that follow each other among the rules of their type, so
    firings and timers keep their order.
    """

    def __init__(self, rules: list[ThresholdRule]) -> None:
        self.rules = rules
        self.id = rules[0].id
        self.metrics = RuleMetrics()
        """The bank's own evaluation time (each rule's own is on the rule)."""

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        """Give a change that passed the rules' shared filter to each rule; return what fired."""
        rules = self.rules
        keyed = _key_of(rules, event)
        if keyed is None:
            return None
        key, geometry = keyed
        state_key = event.state_key(key)
        value = event.value(rules[0].plain)
        numeric = type(value) in (int, float)
        fired: list[Firing] | None = None
        timed = event.timed
        started = time.perf_counter() if timed else 0.0
        for rule in rules:
            state = _matched(rule, state_key)
            if numeric:
                found = rule.on_reading(event, state, key, geometry, value)
                if found:
                    fired = gathered(fired, found)
            if timed:
                ended = time.perf_counter()
                rule.metrics.seconds += (ended - started) * TIME_ONE_IN
                started = ended
        return fired


class TwinBank(Callee):
    """Twins behind one gate (rules that keep the same sliding windows), called together.

    The index calls the bank where the lead stands among the rules in id order; the bank keys
    the change once, lets the lead move the window and each twin test its own condition, and
    tells at which place each firing belongs (`fired_places`), so that the index can hand out
    the firings of a change in id order, as if each rule had been called at its own place.
    Nothing else depends on that order: rules over sliding windows set no timers, and no rule
    reads another's state.
    """

    def __init__(self, members: list[tuple[int, WindowedRule]]) -> None:
        self.places = [place for place, _ in members]
        self.rules = [rule for _, rule in members]
        self.id = self.rules[0].id
        self.metrics = RuleMetrics()
        """The bank's own evaluation time (each rule's own is on the rule)."""
        self.fired_places: list[int] = []
        """The place of each firing the last call returned."""

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        """Give a change that passed the twins' shared filter to each; return what fired."""
        rules = self.rules
        fired_places = self.fired_places
        fired_places.clear()
        keyed = _key_of(rules, event)
        if keyed is None:
            return None
        key, geometry = keyed
        state_key = event.state_key(key)
        fired: list[Firing] | None = None
        # One subject for all: a rule reads it only while it fires, and keeps nothing of it.
        subject = Subject(event.tenant, key, geometry=geometry, event=event)
        timed = event.timed
        started = time.perf_counter() if timed else 0.0
        for index, rule in enumerate(rules):
            state = _matched(rule, state_key)
            values = rule.slide(event, state, state_key)
            subject.evidence = state["items"]
            found = rule.evaluate(subject, state, values, event.t)
            if found:
                fired = gathered(fired, found)
                fired_places.extend([self.places[index]] * len(found))
            if timed:
                ended = time.perf_counter()
                rule.metrics.seconds += (ended - started) * TIME_ONE_IN
                started = ended
        return fired


def _key_of(
    rules: Sequence[WindowedRule], event: Event
) -> tuple[str, dict[str, Any] | None] | None:
    """Return the key the rules of a bank share for a change (None: it has none, and each
    rule counts the change as met)."""
    keyed = rules[0].keyer.key(event)
    if keyed is None:
        for rule in rules:
            rule.metrics.matches += 1
    return keyed


def _matched(rule: WindowedRule, state_key: str) -> dict[str, Any]:
    """Count a change as met by a rule of a bank; return the rule's state of its key."""
    rule.metrics.matches += 1
    return rule.state_at(state_key)


def bank_twins(members: list[tuple[int, RuleRuntime]]) -> dict[int, list[tuple[int, WindowedRule]]]:
    """Return the twins among a gate's members with their places, by their twin slot.

    Only groups of two or more that share a sliding window are returned (`link_twins` linked
    them before); a rule appears in one group at most.
    """
    groups: dict[int, list[tuple[int, WindowedRule]]] = {}
    for place, runtime in members:
        if isinstance(runtime, WindowedRule) and runtime.twin is not None:
            groups.setdefault(runtime.twin.slot, []).append((place, runtime))
    return {slot: group for slot, group in groups.items() if len(group) > 1}


def banked(runtime: RuleRuntime) -> tuple[int, str] | None:
    """Return what a threshold shares with its bank (key, reading), None if it takes none."""
    if isinstance(runtime, ThresholdRule) and runtime.reading_only:
        return (runtime.keyer.slot, runtime.plain)
    return None
