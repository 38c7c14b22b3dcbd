"""Rules that look at one change at a time: match, and state with its hysteresis."""

from __future__ import annotations

from typing import Any

from smartcity.rules.compile import CompiledFilter
from smartcity.rules.compiled import RuleRuntime
from smartcity.rules.events import (
    Env,
    Event,
    Subject,
    Timer,
    drop,
    holds,
    passes,
    subject_of,
)
from smartcity.rules.firing import Firing
from smartcity.rules.model import Rule


class MatchRule(RuleRuntime):
    """Fire on every change that passes the filter (while armed, at most once per `suppress`)."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.when is not None
        self.when = CompiledFilter(rule.when, set())

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        if not passes(self.when, event, self.env.zones):
            return None
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return None
        subject = subject_of(event, keyed[0], keyed[1])
        if not self.armed(subject, event.t):
            return None
        subject.evidence = [event.item()]
        state = self.state_for(event, subject.key)
        firing = self.emit("fire", subject, event.t, {}, state)
        return [firing] if firing else None


class Hysteresis(RuleRuntime):
    """Raise when a condition starts to hold (for long enough, while armed); clear when it ends."""

    hold_for: float | None = None

    def transition(
        self,
        subject: Subject,
        state: dict[str, Any],
        hot: bool,
        cold: bool,
        moment: float,
        values: dict[str, Any],
        start: float | None = None,
    ) -> list[Firing] | None:
        """Move a key's state on one evaluation; return the raise or clear it caused.

        `start` is when the evaluated readings began (a tumbling block's start): a condition
        that holds over a whole block has held since then. None when nothing fired (most
        evaluations): no empty list made for them, here and in `windowed.py`'s evaluations.
        """
        if state.get("raised"):
            if not cold:
                return None
            state["raised"] = False
            drop(state, "since")
            if state.pop("silent", False):
                return None
            firing = self.emit("clear", subject, moment, values, state)
            return [firing] if firing else None
        if not hot:
            drop(state, "since")
            return None
        if self.hold_for:
            since = state.setdefault("since", moment if start is None else start)
            if moment - since < self.hold_for:
                return None
        if not self.armed(subject, moment):
            return None
        state["raised"] = True
        firing = self.emit("raise", subject, moment, values, state)
        if firing is None:
            state["silent"] = True
            return None
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

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        if not passes(self.when, event, self.env.zones):
            return None
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return None
        key, geometry = keyed
        hot = holds(self.condition, event, self.env.zones)
        state = self.state_for(event, key)
        if state.get("raised"):
            if hot:
                return None  # still raised
        elif not hot:
            drop(state, "since")
            return None  # still clear
        subject = subject_of(event, key, geometry)
        subject.evidence = [event.item()]
        return self.transition(subject, state, hot, not hot, event.t, {})
