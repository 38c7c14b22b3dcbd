"""The convergence-event engine: changes in, firings out, in event-time order, deterministic.

Changes wait in a reorder buffer until the watermark (the newest event time seen minus the
allowed lateness) passes them, then meet only the rules indexed under their entity type and
behind the shared filters they pass (`dispatch.py`), in event-time order together with the
rules' timers (absences, windows closing, sequences running out). A change later than the
watermark is too late for the rules (counted, and still applied to the joined state). Nothing
here reads a clock: the same changes give the same firings.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from smartcity.core.entity import StoredEntity
from smartcity.rules.calendars import Sun
from smartcity.rules.compiled import RuleRuntime
from smartcity.rules.dispatch import RuleIndex
from smartcity.rules.events import Env, Event
from smartcity.rules.firing import Firing, gathered
from smartcity.rules.loader import load_rule_set_text
from smartcity.rules.model import Rule, RuleSet
from smartcity.rules.names import event_time, local_name, name_map, parse_moment
from smartcity.rules.patterns import KINDS, last_seen
from smartcity.rules.snapshots import change_data, change_from, copy_data, finite, moment_or_never
from smartcity.rules.spatial import Plane, Zones, entity_point
from smartcity.rules.state import WorldState
from smartcity.rules.twins import link_twins, share_equal_windows
from smartcity.storage.base import ChangeKind, ChangeRecord

SNAPSHOT_FORMAT = 1
_NEVER: Final = float("-inf")
_GAPS_KEPT: Final = 16
"""Feed gaps remembered (a timer due in one fires right after its jump: older ones are done)."""
_UNSET: Final[Any] = object()
_CREATE: Final = ChangeKind.CREATE
_DELETE: Final = ChangeKind.DELETE
Buffered = tuple[float, int, ChangeRecord]
"""A change waiting for the watermark: its event time, its arrival order and the change."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A loaded rule, as the engine holds it."""

    id: str
    version: int
    kind: str
    enabled: bool
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load changed: rules added, changed (new version, fresh state), kept, removed."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    kept: tuple[str, ...]
    removed: tuple[str, ...]


def fingerprint(rule: Rule, rule_set: RuleSet) -> str:
    """Return a digest of a rule's definition and of the shared parts it names."""
    text = rule.model_dump_json(by_alias=True, exclude={"enabled"})
    shared = [rule_set.timezone, repr(rule_set.location)]
    shared += [f"{n}={rule_set.zones[n]}" for n in sorted(rule_set.zones) if f'"{n}"' in text]
    shared += [
        f"{n}={rule_set.calendars[n]}" for n in sorted(rule_set.calendars) if f'"{n}"' in text
    ]
    if '"*"' in text:
        shared += [f"{n}={rule_set.zones[n]}" for n in sorted(rule_set.zones)]
    return hashlib.sha256("\n".join([text, *shared]).encode()).hexdigest()[:24]


@mypyc_attr(allow_interpreted_subclasses=True)
class Engine:
    """The rule engine (implements `firing.RuleEngine`)."""

    def __init__(
        self,
        rule_set: RuleSet | None = None,
        *,
        lateness: float | None = None,
        clock_delay: float | None = None,
    ) -> None:
        self._lateness_override = lateness
        self.lateness = lateness if lateness is not None else 60.0
        self.clock_delay = clock_delay
        """How far behind `advance`'s clock the watermark stays (None: the lateness)."""
        self.rules: dict[str, RuleRuntime] = {}
        self.enabled: dict[str, bool] = {}
        self.fingerprints: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.index = RuleIndex(())
        self.read_types: frozenset[str] = frozenset()
        """The entity types a rule reads or joins with (local names): the others pass by."""
        self.watermark = float("-inf")
        self.newest = float("-inf")
        self.clock = float("-inf")
        """The newest moment `advance` was given since the engine was made (not kept in a
        snapshot): until the clock moves it, changes alone move the engine's time (a catch-up
        from the log, a backtest), and no jump of theirs is a feed gap."""
        self.gaps: list[tuple[float, float]] = []
        self.gap_floor = float("inf")
        """The shortest silence an absence rule waits for: no longer jump is a gap to any."""
        self.buffer: list[Buffered] = []
        """Changes that came after a later one, in a heap by event time."""
        self.in_order: deque[Buffered] = deque()
        """Changes that came in event-time order (most of them): appended, taken from the front."""
        self.timers: list[tuple[float, int, str, int, str, str]] = []
        self.order = 0
        self.too_late = 0
        self.changes = 0
        self.rule_set = RuleSet()
        self.env = self._env(self.rule_set, WorldState(Plane(self.rule_set.location), ()))
        if rule_set is not None:
            self.load(rule_set)

    # -- rules ---------------------------------------------------------------------------

    def _env(self, rule_set: RuleSet, state: WorldState) -> Env:
        zone = ZoneInfo(rule_set.timezone)
        return Env(
            plane=state.plane,
            zones=Zones(rule_set.zones),
            sun=Sun(rule_set.location, zone),
            zone_info=zone,
            calendars={name: list(days) for name, days in rule_set.calendars.items()},
            state=state,
            gaps=self.gaps,
        )

    def load(self, rule_set: RuleSet) -> LoadReport:
        """Replace the rule set; rules whose definition did not change keep their state."""
        kept_types = _kept_types(rule_set)
        old_state = self.env.state
        state = WorldState(Plane(rule_set.location), kept_types)
        if old_state.plane.origin == state.plane.origin:
            for (tenant, _), entities in old_state.entities.items():
                for entity in entities.values():
                    state.put(tenant, entity)
        env = self._env(rule_set, state)
        added: list[str] = []
        changed: list[str] = []
        kept: list[str] = []
        rules: dict[str, RuleRuntime] = {}
        for rule in rule_set.rules:
            digest = fingerprint(rule, rule_set)
            old = self.rules.get(rule.id)
            if old is not None and self.fingerprints.get(rule.id) == digest:
                version = old.version
                kept.append(rule.id)
            else:
                version = self.versions.get(rule.id, 0) + 1
                (changed if rule.id in self.versions else added).append(rule.id)
            runtime = KINDS[rule.kind](rule, version, env, self._timer_for(rule.id, version))
            if old is not None and old.version == version:
                runtime.states = old.states
                runtime.metrics = old.metrics
            rules[rule.id] = runtime
            self.versions[rule.id] = version
            self.fingerprints[rule.id] = digest
            self.enabled[rule.id] = (
                self.enabled.get(rule.id, rule.enabled) if rule.id in kept else rule.enabled
            )
        removed = sorted(set(self.rules) - set(rules))
        for rule_id in removed:
            self.enabled.pop(rule_id, None)
            self.fingerprints.pop(rule_id, None)
        self.rules = rules
        self.rule_set = rule_set
        self.env = env
        if self._lateness_override is None:
            self.lateness = rule_set.lateness
        self._index()
        return LoadReport(tuple(added), tuple(changed), tuple(kept), tuple(removed))

    def load_yaml(self, text: str, source: str = "<rules>") -> LoadReport:
        """Replace the rule set with one given as YAML text (RuleSetError if it is wrong)."""
        return self.load(load_rule_set_text(text, source))

    def _timer_for(self, rule_id: str, version: int) -> Any:
        def timer(due: float, state_key: str, tag: str) -> None:
            heapq.heappush(self.timers, (due, self.order, rule_id, version, state_key, tag))
            self.order += 1

        return timer

    def _index(self) -> None:
        self.index.count_events()
        enabled = self.enabled
        running = [
            self.rules[rule_id] for rule_id in sorted(self.rules) if enabled.get(rule_id, True)
        ]
        link_twins(running)
        self.index = RuleIndex(running)
        self.read_types = frozenset(self.index.by_type) | self.env.state.kept
        afters = [r.rule.after for r in running if r.rule.kind == "absence" and r.rule.after]
        self.gap_floor = min(afters) if afters else float("inf")

    def enable(self, rule_id: str, enabled: bool = True) -> None:
        """Turn a rule on or off (off forgets its state: it starts afresh when turned on)."""
        if rule_id not in self.rules:
            raise KeyError(rule_id)
        if not enabled:
            self.rules[rule_id].states.clear()
        self.enabled[rule_id] = enabled
        self._index()

    def rule_infos(self) -> list[RuleInfo]:
        """Return the loaded rules, by id."""
        return [
            RuleInfo(
                r.id, r.version, r.rule.kind, self.enabled.get(r.id, True), self.fingerprints[r.id]
            )
            for r in sorted(self.rules.values(), key=lambda r: r.id)
        ]

    def rule_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """Return each rule's counters by ("", rule id): one engine may serve any tenant."""
        self.index.count_events()
        return {("", rule.id): rule.metrics.counters() for rule in self.rules.values()}

    def metrics(self) -> dict[str, Any]:
        """Return the engine's counters and each rule's metrics."""
        self.index.count_events()
        return {
            "changes": self.changes,
            "tooLate": self.too_late,
            "buffered": len(self.buffer) + len(self.in_order),
            "timers": len(self.timers),
            "watermark": self.watermark if self.watermark > float("-inf") else None,
            "rules": {
                r.id: {"version": r.version, **r.metrics.as_dict()} for r in self.rules.values()
            },
        }

    @property
    def kept_types(self) -> frozenset[str]:
        """Return the entity types whose current state the rules join with (local names)."""
        return self.env.state.kept

    @property
    def prime_types(self) -> frozenset[str]:
        """Return the types `prime` wants: joined ones and those absence rules watch."""
        watched = {
            name
            for runtime in self.rules.values()
            if runtime.rule.kind == "absence" and runtime.rule.when is not None
            for name in runtime.rule.when.type or ()
        }
        return self.env.state.kept | watched

    # -- changes ---------------------------------------------------------------------------

    def prime(self, tenant: str, entities: Iterable[StoredEntity]) -> None:
        """Load the current state of entities (joined types; devices absence rules watch)."""
        absences = [
            r
            for r in self.rules.values()
            if r.rule.kind == "absence" and self.enabled.get(r.id, True)
        ]
        state = self.env.state
        for entity in entities:
            if state.types_of(entity):
                state.put(tenant, entity)
            if absences:
                moment = last_seen(entity)
                if moment is None:
                    continue
                for runtime in absences:
                    if runtime.tenants is None or tenant in runtime.tenants:
                        runtime.prime(tenant, entity, moment)

    def process(self, change: ChangeRecord) -> list[Firing]:
        """Take one committed change; return what fired (maybe for earlier, buffered changes).

        A change of a type no rule reads or joins with is counted and goes no further: it does
        not move the engine's time either (an alert a rule wrote, stamped when it was committed,
        must not make the readings still on their way late).
        """
        self.changes += 1
        read_types = self.read_types
        entity = change.entity
        for type_iri in entity.types:
            if local_name(type_iri) in read_types:
                break
        else:
            return []
        if change.kind is _DELETE:
            moment = parse_moment(change.at) or self.newest
        else:
            moment = event_time(entity, change.changed, change.at)
        if moment < self.watermark:
            self.too_late += 1
            self._apply_state(change)
            return []
        heard = self.newest
        if moment > heard:
            self.newest = moment
        in_order = self.in_order
        if not in_order or moment >= in_order[-1][0]:
            in_order.append((moment, self.order, change))
        else:
            heapq.heappush(self.buffer, (moment, self.order, change))
        self.order += 1
        self.watermark = max(self.watermark, self.newest - self.lateness)
        if moment - heard > self.gap_floor and self.clock > _NEVER:
            self._gap(max(heard, self.clock), moment)
        return self._drain()

    def advance(self, now: datetime) -> list[Firing]:
        """Move the watermark to `now` minus the clock delay; return what came due.

        The clock delay is how long after its event time a reading may still reach the engine;
        it is the lateness unless set apart (a low lateness fires changes as soon as they are the
        newest, while readings on their way still count when the clock moves time on).
        """
        self.clock = max(self.clock, now.timestamp())
        self.watermark = max(self.watermark, now.timestamp() - self._delay)
        return self._drain()

    @property
    def _delay(self) -> float:
        """How far behind the clock `advance` keeps the watermark (the lateness unless set)."""
        return self.lateness if self.clock_delay is None else self.clock_delay

    def resume(self, now: datetime) -> None:
        """Note that the engine runs again from `now` after it did not (a worker that starts
        on a checkpoint or on the current state): the time since it last heard or moved on is
        a feed gap (`_gap`), not a silence of each device. Call it before `advance(now)`."""
        self._gap(max(self.watermark, self.newest), now.timestamp() - self._delay)

    def _gap(self, heard: float, resumed: float) -> None:
        """Note a feed gap, if longer than an absence: from the last moment the engine heard
        anything to `resumed`, when it runs again (`resume`) or when, its clock running, a
        change came from further ahead of the clock (a simulation moved on by hours).

        Live, changes come at about the clock's time and the clock moves the engine's time on
        (`advance`, every second): a device silent while others are heard, or while nothing
        is, is silent.
        """
        if resumed - heard > self.gap_floor:
            gaps = self.gaps
            gaps.append((heard, resumed))
            del gaps[:-_GAPS_KEPT]

    def flush(self) -> list[Firing]:
        """Process every buffered change and due timer up to the newest event time (backtests:
        no change is to come)."""
        self.watermark = max(self.watermark, self.newest)
        return self._drain(final=True)

    def _drain(self, final: bool = False) -> list[Firing]:
        """Take the buffered changes the watermark reached and the timers it passed, in
        event-time order (a change before a timer due at its moment).

        A change at the very watermark may still be followed by others at the same moment
        (with a lateness of 0, by every change of that moment but the first), so a timer due
        then waits until the watermark is past it, unless no change is to come (`final`):
        otherwise a device heard exactly `after` after its last reading would be silent or
        not depending on which of the moment's changes came first.
        """
        fired: list[Firing] = []
        buffer, in_order, timers = self.buffer, self.in_order, self.timers
        watermark = self.watermark
        while True:
            # The next change, of those in order or the late ones: its parts, not the tuple
            # (compiled, a tuple kept in an optional variable is boxed anew at each step).
            change: ChangeRecord | None = None
            change_at = 0.0
            order = 0
            late = False
            if in_order:
                change_at, order, change = in_order[0]
            if buffer:
                other_at, other_order, other = buffer[0]
                if (
                    change is None
                    or other_at < change_at
                    or (other_at == change_at and other_order < order)
                ):
                    change_at, order, change, late = other_at, other_order, other, True
            if change is not None and not change_at <= watermark:
                change = None  # not due yet
            if timers:
                due = timers[0][0]
                if (due < watermark or (final and due <= watermark)) and (
                    change is None or due < change_at
                ):
                    due, _, rule_id, version, state_key, tag = heapq.heappop(timers)
                    runtime = self.rules.get(rule_id)
                    if (
                        runtime is not None
                        and runtime.version == version
                        and self.enabled.get(rule_id, True)
                    ):
                        started = time.perf_counter()
                        fired.extend(runtime.on_timer(state_key, tag, due))
                        runtime.timed(started)
                    continue
            if change is None:
                return fired
            if late:
                heapq.heappop(buffer)
            else:
                in_order.popleft()
            found = self._apply(change, change_at)
            if found:
                fired.extend(found)

    def _apply_state(self, change: ChangeRecord) -> None:
        state = self.env.state
        if state.kept and state.types_of(change.entity):
            if change.kind is _DELETE:
                state.remove(change.tenant, change.entity)
            else:
                state.put(change.tenant, change.entity)

    def _apply(self, change: ChangeRecord, moment: float) -> list[Firing] | None:
        """Apply a due change to the joined state and the rules; return what fired (None:
        nothing, as for most changes)."""
        entity, tenant, kind = change.entity, change.tenant, change.kind
        state = self.env.state
        if kind is _DELETE:
            if state.kept and state.types_of(entity):
                state.remove(tenant, entity)
            for type_iri in entity.types:
                for runtime in self.index.rules.get(local_name(type_iri), ()):
                    runtime.forget(tenant, entity)
            return None
        names = name_map(entity)
        point: Any = _UNSET
        if state.kept and state.types_of(entity):
            point = entity_point(entity, names)
            state.put_at(tenant, entity, point)
        fired: list[Firing] | None = None
        index = self.index
        for type_iri in entity.types:
            type_name = local_name(type_iri)
            gates = index.by_type.get(type_name)
            if not gates:
                continue
            event = Event(
                tenant,
                entity,
                names,
                change.changed,
                kind is _CREATE,
                moment,
                change.seq,
                type_name,
            )
            if point is not _UNSET:
                event.know_point(point)
            found = index.dispatch(gates, event, self.env)
            if found:
                fired = gathered(fired, found)
        return fired

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the engine's state (windows, pending patterns, timers, joined state)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "watermark": finite(self.watermark),
            "newest": finite(self.newest),
            "gaps": [[finite(heard), resumed] for heard, resumed in self.gaps],
            "order": self.order,
            "tooLate": self.too_late,
            "changes": self.changes,
            "buffer": [
                [t, order, change_data(change)]
                for t, order, change in sorted([*self.buffer, *self.in_order])
            ],
            "timers": [list(timer) for timer in sorted(self.timers)],
            "rules": {
                rule_id: {
                    "version": runtime.version,
                    "fingerprint": self.fingerprints[rule_id],
                    "enabled": self.enabled.get(rule_id, True),
                    "states": copy_data(runtime.states),
                }
                for rule_id, runtime in sorted(self.rules.items())
            },
            "world": self.env.state.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot; rules whose definition changed since start afresh."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a rule engine snapshot of format {SNAPSHOT_FORMAT}")
        self.watermark = moment_or_never(state["watermark"])
        self.newest = moment_or_never(state["newest"])
        self.gaps[:] = [
            (moment_or_never(heard), float(resumed)) for heard, resumed in state.get("gaps", ())
        ]
        self.order = int(state["order"])
        self.too_late = int(state.get("tooLate", 0))
        self.changes = int(state.get("changes", 0))
        self.buffer = []
        self.in_order = deque(
            sorted((t, order, change_from(data)) for t, order, data in state["buffer"])
        )
        saved = state["rules"]
        timers = []
        for rule_id, runtime in self.rules.items():
            item = saved.get(rule_id)
            if item is None or item["fingerprint"] != self.fingerprints[rule_id]:
                continue
            old_version = int(item["version"])
            if old_version != runtime.version:
                runtime.version = old_version
                runtime.timer = self._timer_for(rule_id, old_version)
                self.versions[rule_id] = old_version
            runtime.states = copy_data(item["states"])
            self.enabled[rule_id] = bool(item["enabled"])
        for due, order, rule_id, version, state_key, tag in state["timers"]:
            owner = self.rules.get(rule_id)
            if owner is not None and owner.version == version:
                timers.append((due, order, rule_id, version, state_key, tag))
        heapq.heapify(timers)
        self.timers = timers
        self.env.state.restore(state["world"])
        self._index()
        share_equal_windows(self.rules.values())


def _kept_types(rule_set: RuleSet) -> set[str]:
    kept: set[str] = set()
    for rule in rule_set.rules:
        for join in rule.require:
            kept.update(join.type)
        for action in rule.actions:
            if (
                action.target is not None
                and not isinstance(action.target, str)
                and action.target.type
            ):
                kept.update(action.target.type)
    return kept
