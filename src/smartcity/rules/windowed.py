"""Rules over windows of readings: thresholds (with hysteresis) and aggregates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smartcity.rules.aggregates import Aggregate, Item, Windowing, parse_aggregate
from smartcity.rules.compile import CompiledFilter
from smartcity.rules.events import (
    Env,
    Event,
    Subject,
    Timer,
    drop,
    passes,
    remember_where,
    restored_subject,
    split_state_key,
)
from smartcity.rules.firing import Firing
from smartcity.rules.kinds import Hysteresis
from smartcity.rules.match import Bound, compile_values_q
from smartcity.rules.model import Rule, parse_threshold

if TYPE_CHECKING:
    from smartcity.rules.twins import Twin


class Moved:
    """A sliding window as its lead found and left it on one change, for the lead's twins."""

    __slots__ = ("acc", "acc_before", "items", "items_before", "values")

    def __init__(
        self, items_before: Any, acc_before: Any, items: Any, acc: Any, values: dict[str, Any]
    ) -> None:
        self.items_before = items_before
        self.acc_before = acc_before
        self.items = items
        self.acc = acc
        self.values = values


class WindowedRule(Hysteresis):
    """A rule that keeps a window of readings per key (threshold and aggregate rules)."""

    windowing: Windowing
    when: CompiledFilter
    twin: Twin | None = None
    """How the rule shares its sliding windows with rules that keep the same ones."""
    plain = ""
    """The attribute a threshold without a window reads."""

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        return [("when", self.when)]

    def setup_window(self, rule: Rule, extra: dict[str, Aggregate]) -> CompiledFilter:
        """Compile the window and return the `when` filter that watches its attributes."""
        aggregates = {name: parse_aggregate(text) for name, text in rule.aggregates.items()}
        aggregates.update(extra)
        self.windowing = Windowing(rule.window, aggregates)
        assert rule.when is not None
        return CompiledFilter(rule.when, set(self.windowing.columns))

    def read(self, event: Event) -> Item:
        """Return a change as a window item (its time, origin and the watched values)."""
        return event.item_with([event.value(column) for column in self.windowing.columns])

    def close_blocks(
        self, subject: Subject, state: dict[str, Any], blocks: list[list[Item]]
    ) -> list[Firing]:
        """Evaluate closed tumbling blocks (at the end of each)."""
        fired: list[Firing] = []
        for items in blocks:
            end = self.block_end(items)
            start = end - self.windowing.size if self.windowing.size is not None else items[0][0]
            subject.evidence = items
            found = self.evaluate(subject, state, self.windowing.values(items), end, start)
            if found:
                fired.extend(found)
        return fired

    def block_end(self, items: list[Item]) -> float:
        """Return when a tumbling block ended (time blocks) or its last reading (count blocks)."""
        if self.windowing.size is not None:
            return self.windowing.block_of(items[0][0]) + self.windowing.size
        return float(items[-1][0])

    def evaluate(
        self,
        subject: Subject,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing] | None:
        """Evaluate the rule's condition on a window's values (None: nothing fired)."""
        raise NotImplementedError

    def keyed_state(
        self, event: Event
    ) -> tuple[str, dict[str, Any] | None, str, dict[str, Any]] | None:
        """Count a change that passes the rule's filter; return its key, the key's geometry,
        where the key's state is kept and the state (None: the filter failed, or no key)."""
        if not passes(self.when, event, self.env.zones):
            return None
        self.metrics.matches += 1
        keyed = self.keyer.key(event)
        if keyed is None:
            return None
        key, geometry = keyed
        state_key = event.state_key(key)
        return key, geometry, state_key, self.state_at(state_key)

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        found = self.keyed_state(event)
        if found is None:
            return None
        key, geometry, state_key, state = found
        tenant = event.tenant
        windowing = self.windowing
        if windowing.window is None:  # a reading's own value: no window to keep
            subject = Subject(tenant, key, geometry=geometry, event=event)
            subject.evidence = [event.item()]
            return self.evaluate(subject, state, {"value": event.value(self.plain)}, event.t)
        if windowing.tumbling:
            item = self.read(event)
            subject = Subject(tenant, key, geometry=geometry, event=event)
            had_block = state.get("block")
            blocks = windowing.add(state, item)
            fired = self.close_blocks(subject, state, blocks) if blocks else None
            if windowing.size is not None and state.get("block") != had_block:
                self.timer(state["block"] + windowing.size, state_key, "block")
            remember_where(state, event, key, geometry)
            return fired
        values = self.slide(event, state, state_key)
        subject = Subject(tenant, key, geometry=geometry, event=event)
        subject.evidence = state["items"]
        return self.evaluate(subject, state, values, event.t)

    def slide(self, event: Event, state: dict[str, Any], state_key: str) -> dict[str, Any]:
        """Put a change in a key's sliding window; return the window's aggregates.

        Twins (`twins.py`) whose window is the very one their lead just moved take the lead's
        window and aggregates instead of doing the same work again.
        """
        windowing = self.windowing
        twin = self.twin
        before_items: Any = None
        before_acc: Any = None
        if twin is not None:
            if twin.lead is None:
                before_items, before_acc = state.get("items"), state.get("acc")
            else:
                shared = event.memo.get(twin.slot)
                if (
                    isinstance(shared, Moved)
                    and state.get("items") is shared.items_before
                    and state.get("acc") is shared.acc_before
                ):
                    # (the lead mostly moves its window in place: nothing to store then)
                    if shared.items is not shared.items_before:
                        state["items"] = shared.items
                    if shared.acc is not shared.acc_before:
                        state["acc"] = shared.acc
                    return shared.values
                twin.own(state, state_key)
        windowing.add(state, self.read(event))
        values = windowing.values(state["items"], state)
        if twin is not None and twin.lead is None:
            event.memo[twin.slot] = Moved(
                before_items, before_acc, state["items"], state["acc"], values
            )
        return values

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        state = self.states.get(state_key)
        if state is None:
            return []
        items = self.windowing.close_due(state, due)
        if not items:
            return []
        tenant, key = split_state_key(state_key)
        subject = restored_subject(self.env, tenant, key, state)
        return self.close_blocks(subject, state, [items])


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
        self.hot = Bound(*parse_threshold(rule.raise_))
        self.cold = Bound(*parse_threshold(rule.clear)) if rule.clear is not None else None
        self.hold_for = rule.for_
        self.reading_only = self.windowing.window is None and self.value_name == "value"

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        if not self.reading_only:
            return super().on_event(role, event)
        # A reading's own value: most readings cross nothing, and cost a few steps.
        found = self.keyed_state(event)
        if found is None:
            return None
        key, geometry, _, state = found
        value = event.value(self.plain)
        if type(value) not in (int, float):
            return None
        return self.on_reading(event, state, key, geometry, value)

    def on_reading(
        self,
        event: Event,
        state: dict[str, Any],
        key: str,
        geometry: dict[str, Any] | None,
        value: float,
    ) -> list[Firing] | None:
        """Evaluate a reading's own (numeric) value for a key (its filter passed; None: nothing
        fired)."""
        if state.get("raised"):
            cold = self.cold
            if not (cold.holds(value) if cold is not None else not self.hot.holds(value)):
                return None
        elif not self.hot.holds(value):
            drop(state, "since")
            return None
        # (no closure here: compiled, a function that makes one pays for it on every call)
        subject = Subject(event.tenant, key, geometry=geometry, event=event)
        subject.evidence = [event.item()]
        return self.evaluate(subject, state, {"value": value}, event.t)

    def evaluate(
        self,
        subject: Subject,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing] | None:
        value: Any = values.get(self.value_name)
        if type(value) not in (int, float):
            return None
        hot = self.hot.holds(value)
        cold = self.cold.holds(value) if self.cold is not None else not hot
        return self.transition(subject, state, hot, cold, moment, values, start)


class AggregateRule(WindowedRule):
    """Aggregates over a window, tested by `having`: at each block's end, or raised while true."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        super().__init__(rule, version, env, timer)
        assert rule.having is not None
        self.when = self.setup_window(rule, {})
        self.having = compile_values_q(rule.having)

    def evaluate(
        self,
        subject: Subject,
        state: dict[str, Any],
        values: dict[str, Any],
        moment: float,
        start: float | None = None,
    ) -> list[Firing] | None:
        hot = self.having.holds(values)
        if self.windowing.tumbling:
            if not hot:
                return None
            if not self.armed(subject, moment):
                return None
            firing = self.emit("fire", subject, moment, values, state)
            return [firing] if firing else None
        return self.transition(subject, state, hot, not hot, moment, values)
