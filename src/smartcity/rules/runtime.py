"""What every compiled rule shares: the change being looked at, keys, arming, firing, actions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import shapely

from smartcity.core.entity import StoredEntity, instance_value
from smartcity.rules.calendars import CompiledSchedule, Sun
from smartcity.rules.compile import CompiledFilter, memo_slot
from smartcity.rules.firing import ActionSpec, Evidence, Firing, FiringKind
from smartcity.rules.model import Action, KeyBy, Rule
from smartcity.rules.names import NameMap, format_moment, local_name
from smartcity.rules.spatial import Plane, Point, Zones, entity_geometry, entity_point, grid_cell
from smartcity.rules.state import (
    CompiledJoin,
    Selection,
    WorldState,
    attribute_value,
    compile_target,
)
from smartcity.rules.templates import render

_UNSET: Any = object()
Item = list[Any]
"""A remembered change: ``[t, seq, entity_id, type, ...]`` (JSON-ready)."""
Timer = Callable[[float, str, str], None]
"""Ask to be called back at an event time: (due, state key, tag)."""


@dataclass(slots=True)
class Env:
    """What the rules of one rule set share."""

    plane: Plane
    zones: Zones
    sun: Sun
    zone_info: ZoneInfo
    calendars: dict[str, list[date]]
    state: WorldState


class Event:
    """One change as the rules see it, at its event time."""

    __slots__ = (
        "_point",
        "changed",
        "created",
        "entity",
        "memo",
        "names",
        "seq",
        "t",
        "tenant",
        "type_name",
        "values",
    )

    def __init__(
        self,
        tenant: str,
        entity: StoredEntity,
        names: NameMap,
        changed: list[str],
        created: bool,
        t: float,
        seq: int,
        type_name: str,
    ) -> None:
        self.tenant = tenant
        self.entity = entity
        self.names = names
        self.changed = changed
        self.created = created
        self.t = t
        self.seq = seq
        self.type_name = type_name
        self._point: Any = _UNSET
        self.memo: dict[int, Any] = {}
        """Answers of filters and keys, by slot, shared by the rules this change meets."""
        self.values: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        """Return an attribute's value (a relationship's object), read once per change."""
        values = self.values
        if name in values:
            return values[name]
        found = values[name] = attribute_value(self.entity, self.names, name)
        return found

    @property
    def point(self) -> Point | None:
        """Return where the changed entity is (its location)."""
        if self._point is _UNSET:
            self._point = entity_point(self.entity, self.names)
        point: Point | None = self._point
        return point

    def item(self, *values: Any) -> Item:
        """Return the change as a window or pattern item."""
        return [self.t, self.seq, self.entity.id, self.type_name, *values]


def passes(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    """Tell whether a change passes a filter (its type was checked by the engine's index)."""
    memo = event.memo
    found = memo.get(check.slot)
    if found is None:
        found = memo[check.slot] = _passes(check, event, zones)
    return bool(found)


def _passes(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    if check.watch is not None and not event.created:
        iris = event.names.iris
        changed = event.changed
        for name in check.watch:
            iri = iris.get(name)
            if iri is not None and iri in changed:
                break
        else:
            return False
    return holds(check, event, zones)


def holds(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    """Tell whether a changed entity meets a filter's id, q and zones (not its watch list)."""
    memo = event.memo
    found = memo.get(check.hold_slot)
    if found is None:
        found = memo[check.hold_slot] = _holds(check, event, zones)
    return bool(found)


def _holds(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    if check.id is not None and check.id.fullmatch(event.entity.id) is None:
        return False
    if check.q is not None and not check.q(event.entity, event.names):
        return False
    if check.spatial:
        point = event.point
        if point is None:
            return False
        if check.inside is not None and not _in(check.inside, point, event, zones):
            return False
        if check.outside is not None and _in(check.outside, point, event, zones):
            return False
    return True


def _in(zone: str, point: Point, event: Event, zones: Zones) -> bool:
    if zone.startswith("@"):
        own = entity_geometry(event.entity, event.names, zone[1:])
        if own is None:
            return False
        try:
            return bool(own.covers(shapely.Point(point)))
        except shapely.errors.ShapelyError:  # an invalid polygon from a device
            return False
    return zones.contains(zone, point)


class Keyer:
    """What a rule keeps its state by: entity, relationship, attribute, zone, grid cell, one."""

    def __init__(self, key: str | KeyBy, env: Env) -> None:
        self.env = env
        self.kind = key if isinstance(key, str) else "by"
        self.by = key if isinstance(key, KeyBy) else None
        if self.by is not None and self.by.zone is not None:
            self.zone_names = list(env.zones.names) if "*" in self.by.zone else list(self.by.zone)
        self.slot = memo_slot("key" + repr(key))

    def key(self, event: Event) -> tuple[str, dict[str, Any] | None] | None:
        """Return the key of a change and the key's own geometry (zone, cell), if any."""
        if self.kind == "entity":
            return event.entity.id, None
        memo = event.memo
        found = memo.get(self.slot, _UNSET)
        if found is _UNSET:
            found = memo[self.slot] = self._key(event)
        keyed: tuple[str, dict[str, Any] | None] | None = found
        return keyed

    def _key(self, event: Event) -> tuple[str, dict[str, Any] | None] | None:
        if self.kind == "entity":
            return event.entity.id, None
        if self.kind == "global":
            return "*", None
        by = self.by
        assert by is not None
        if by.relationship is not None or by.attribute is not None:
            value = attribute_value(
                event.entity, event.names, by.relationship or by.attribute or ""
            )
            if value is None or isinstance(value, dict | list):
                return None
            return str(value), None
        point = event.point
        if point is None:
            return None
        if by.grid is not None:
            return grid_cell(self.env.plane, point, by.grid)
        zone = self.env.zones.zone_of(point, self.zone_names)
        return (zone, self.env.zones.geojson[zone]) if zone is not None else None


@dataclass(slots=True)
class RuleMetrics:
    """What one rule did since it was loaded."""

    events: int = 0
    """Changes of its entity types it looked at."""
    matches: int = 0
    """Changes that passed its filters."""
    firings: int = 0
    actions: int = 0
    suppressed: int = 0
    seconds: float = 0.0
    """Time spent evaluating it (wall time)."""

    def as_dict(self) -> dict[str, Any]:
        """Return the metrics as JSON-ready data."""
        return {
            "events": self.events,
            "matches": self.matches,
            "firings": self.firings,
            "actions": self.actions,
            "suppressed": self.suppressed,
            "evaluationSeconds": round(self.seconds, 6),
        }


class CompiledAction:
    """An action ready to render."""

    def __init__(self, action: Action) -> None:
        self.kind = action.kind
        self.body: dict[str, Any] = getattr(action, action.kind)
        default = ("raise", "clear", "fire") if self.kind == "alert" else ("raise", "fire")
        self.on = frozenset(action.on or default)
        self.target: str | Selection | None = None
        self.ids: list[str] = []
        self.limit = 50
        if isinstance(action.target, str):
            self.target = action.target
        elif action.target is not None:
            self.target = compile_target(action.target) if action.target.type else None
            self.ids = list(action.target.ids or [])
            self.limit = action.target.limit


class Subject:
    """Who a firing is about: the last change behind it, where, and its key's geometry.

    Made for every evaluation but read only when something fires, so what it takes from the
    change (the entity's position) is worked out only when asked.
    """

    __slots__ = ("_entity", "_event", "_names", "_point", "evidence", "geometry", "key", "tenant")

    def __init__(
        self,
        tenant: str,
        key: str,
        entity: StoredEntity | None = None,
        names: NameMap | None = None,
        point: Point | None = None,
        geometry: dict[str, Any] | None = None,
        event: Event | None = None,
    ) -> None:
        self.tenant = tenant
        self.key = key
        self.geometry = geometry
        self.evidence: list[Item] = []
        self._event = event
        self._entity = entity
        self._names = names
        self._point = point

    @property
    def entity(self) -> StoredEntity | None:
        """Return the entity of the last change behind the firing."""
        return self._event.entity if self._event is not None else self._entity

    @property
    def names(self) -> NameMap | None:
        """Return the name map of that entity."""
        return self._event.names if self._event is not None else self._names

    @property
    def point(self) -> Point | None:
        """Return where that entity is."""
        return self._event.point if self._event is not None else self._point


class RuleRuntime:
    """The parts of a compiled rule every kind uses; kinds add `on_event` and `on_timer`."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        self.rule = rule
        self.id = rule.id
        self.version = version
        self.env = env
        self.timer = timer
        self.keyer = Keyer(rule.key, env)
        self.joins = [CompiledJoin(join) for join in rule.require]
        self.schedule = (
            CompiledSchedule(rule.schedule, env.zone_info, env.sun, env.calendars)
            if rule.schedule
            else None
        )
        self.actions = [CompiledAction(action) for action in rule.actions]
        self.title = (
            rule.title
            if isinstance(rule.title, str)
            else rule.title.get("ko") or next(iter(rule.title.values()), "")
        )
        self.states: dict[str, dict[str, Any]] = {}
        self.metrics = RuleMetrics()
        self.tenants = frozenset(rule.tenants) if rule.tenants else None

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        """Return the filters changes reach this rule by, with the role each plays."""
        raise NotImplementedError

    def on_event(self, role: str, event: Event) -> list[Firing]:
        """Take a change that reached the rule; return what fired."""
        raise NotImplementedError

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        """Take a timer that came due; return what fired."""
        return []

    def prime(self, tenant: str, entity: StoredEntity, moment: float) -> None:
        """Learn of an entity that exists before the first change."""

    def forget(self, tenant: str, entity: StoredEntity) -> None:
        """Drop what is kept for an entity that was deleted (its own key's state)."""
        if self.keyer.kind == "entity":
            self.states.pop(tenant + "\x1f" + entity.id, None)

    def state(self, tenant: str, key: str) -> dict[str, Any]:
        """Return a key's state (made when first asked)."""
        state_key = tenant + "\x1f" + key
        found = self.states.get(state_key)
        if found is None:
            found = self.states[state_key] = {}
        return found

    def armed(self, subject: Subject, moment: float) -> bool:
        """Tell whether the schedule and the joins hold for a subject at a moment."""
        if self.schedule is not None and not self.schedule.armed(moment):
            return False
        if not self.joins:
            return True
        entity, names = subject.entity, subject.names
        if entity is None and any(join.via is not None for join in self.joins):
            return False
        state, zones = self.env.state, self.env.zones
        return all(
            join.holds(state, zones, subject.tenant, entity, names, subject.point, moment)
            for join in self.joins
        )

    def emit(
        self,
        kind: FiringKind,
        subject: Subject,
        moment: float,
        values: dict[str, Any],
        state: dict[str, Any],
    ) -> Firing | None:
        """Return a firing with its actions rendered (None when suppressed)."""
        suppress = self.rule.suppress
        if kind != "clear" and suppress:
            last = state.get("fired")
            if last is not None and moment - last < suppress:
                self.metrics.suppressed += 1
                return None
            state["fired"] = moment
        at = format_moment(moment)
        location = subject.geometry
        if location is None and subject.point is not None:
            location = {"type": "Point", "coordinates": [subject.point[0], subject.point[1]]}
        evidence = tuple(
            Evidence(subject.tenant, item[2], item[3], item[1], format_moment(item[0]))
            for item in subject.evidence[-10:]
        )
        scope: dict[str, Any] = {
            "rule": {
                "id": self.id,
                "title": self.title,
                "severity": self.rule.severity,
                "version": self.version,
            },
            "key": subject.key,
            "at": at,
            "kind": kind,
            "values": values,
            "entity": _entity_scope(subject),
            "targets": [],
        }
        specs = []
        for action in self.actions:
            if kind not in action.on:
                continue
            targeted = action.target is not None or bool(action.ids)
            if targeted:  # later actions may name these targets too ({{ targets }})
                scope["targets"] = self._targets(action, subject)
            params = render(action.body, scope)
            if action.kind == "alert":
                params = _alert(params, self, subject, kind, evidence)
            if targeted:
                params["targets"] = scope["targets"]
            specs.append(ActionSpec(action.kind, params))  # type: ignore[arg-type]
        self.metrics.firings += 1
        self.metrics.actions += len(specs)
        return Firing(
            rule_id=self.id,
            rule_version=self.version,
            tenant=subject.tenant,
            key=subject.key,
            kind=kind,
            at=at,
            severity=self.rule.severity,
            actions=tuple(specs),
            evidence=evidence,
            values=dict(values),
            location=location,
        )

    def _targets(self, action: CompiledAction, subject: Subject) -> list[str]:
        if action.target == "entity":
            return [subject.entity.id] if subject.entity is not None else []
        if action.target == "key":
            return [subject.key]
        found = list(action.ids)
        if isinstance(action.target, Selection):
            selected = action.target.select(
                self.env.state, self.env.zones, subject.tenant, subject.point, action.limit
            )
            found.extend(entity.id for entity in selected)
        return found[: action.limit]

    def timed(self, started: float) -> None:
        """Add the time since `started` (perf_counter) to the rule's evaluation time."""
        self.metrics.seconds += time.perf_counter() - started


def _entity_scope(subject: Subject) -> dict[str, Any]:
    entity = subject.entity
    if entity is None:
        return {"id": subject.evidence[-1][2] if subject.evidence else None}
    scope: dict[str, Any] = {
        "id": entity.id,
        "type": local_name(entity.types[0]) if entity.types else None,
    }
    for iri, instances in entity.attrs.items():
        if instances:
            scope.setdefault(local_name(iri), instance_value(instances[0]))
    scope["id"] = entity.id
    return scope


def _alert(
    params: dict[str, Any],
    rule: RuleRuntime,
    subject: Subject,
    kind: FiringKind,
    evidence: tuple[Evidence, ...],
) -> dict[str, Any]:
    """Fill in a Smart Data Models Alert's fields the rule did not give."""
    entities = sorted({item.entity_id for item in evidence})
    params.setdefault("severity", rule.rule.severity)
    params.setdefault("name", rule.title)
    if subject.entity is not None:
        params.setdefault("alertSource", subject.entity.id)
    elif entities:
        params.setdefault("alertSource", entities[-1])
    params.setdefault("entities", entities)
    params["state"] = "cleared" if kind == "clear" else "raised"
    return params
