"""A change as rules see it (its event time, entity and names), filters, keys and subjects."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final
from zoneinfo import ZoneInfo

import shapely

from smartcity.core.entity import StoredEntity
from smartcity.rules.calendars import Sun
from smartcity.rules.compile import CompiledFilter, memo_slot
from smartcity.rules.model import KeyBy
from smartcity.rules.names import NameMap, name_map
from smartcity.rules.spatial import Plane, Point, Zones, entity_geometry, entity_point, grid_cell
from smartcity.rules.state import WorldState, attribute_value

_UNSET: Final[Any] = object()
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
    gaps: list[tuple[float, float]]
    """Feed gaps: jumps of the engine's time over which it heard nothing at all, (the last
    moment heard, the moment it went on from), newest last. Not the devices but the feed (or the
    engine) was silent then, so the absence rules count silence from a gap's end. The engine's
    own list, kept across loads."""


class Event:
    """One change as the rules see it, at its event time."""

    __slots__ = (
        "_key",
        "_moved",
        "_point",
        "_state_key",
        "changed",
        "created",
        "entity",
        "memo",
        "names",
        "seq",
        "t",
        "tenant",
        "timed",
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
        self._key: str | None = None
        self._state_key = ""
        self._moved: bool | None = None
        self.timed = False
        """Whether the rules' evaluation of this change is timed (`compiled.TIME_ONE_IN`)."""

    def moved(self) -> bool:
        """Tell whether the change may have moved the entity (created, or location changed)."""
        moved = self._moved
        if moved is None:
            location = self.names.iris.get("location")
            moved = self._moved = self.created or (
                location is not None and location in self.changed
            )
        return moved

    def state_key(self, key: str) -> str:
        """Return where rules keep a key's state: the tenant and the key (made once per key).

        Rules that key the same way ask with the same key object one after the other, so the
        text (and its hash) is made once for them all.
        """
        if key is self._key:
            return self._state_key
        found = self._state_key = state_key_of(self.tenant, key)
        self._key = key
        return found

    def value(self, name: str) -> Any:
        """Return an attribute's value (a relationship's object), read once per change."""
        values = self.values
        if name in values:
            return values[name]
        found = values[name] = attribute_value(self.entity, self.names, name)
        return found

    def know_point(self, point: Point | None) -> None:
        """Take the entity's position, worked out already (`point`)."""
        self._point = point

    @property
    def point(self) -> Point | None:
        """Return where the changed entity is (its location)."""
        if self._point is _UNSET:
            self._point = entity_point(self.entity, self.names)
        point: Point | None = self._point
        return point

    def item(self) -> Item:
        """Return the change as a pattern item (or a window's, without its values)."""
        return [self.t, self.seq, self.entity.id, self.type_name]

    def item_with(self, values: list[Any]) -> Item:
        """Return the change as a window item: the pattern item, then the watched values."""
        item = [self.t, self.seq, self.entity.id, self.type_name]
        item.extend(values)
        return item


def state_key_of(tenant: str, key: str) -> str:
    """Return where rules keep a key's state and timers: the tenant and the key in one text."""
    return f"{tenant}\x1f{key}"  # (one text made, not two)


def split_state_key(state_key: str) -> tuple[str, str]:
    """Return the tenant and the key of a state key (`state_key_of`)."""
    tenant, key = state_key.split("\x1f", 1)
    return tenant, key


def passes(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    """Tell whether a change passes a filter (its type was checked by the engine's index)."""
    memo = event.memo
    found = memo.get(check.slot)
    if found is None:
        found = memo[check.slot] = filter_passes(check, event, zones)
    return bool(found)


def filter_passes(check: CompiledFilter, event: Event, zones: Zones) -> bool:
    """Tell whether a change passes a filter, working it out (`passes` remembers the answer)."""
    if check.watch is not None and not event.created:
        iris = event.names.iris
        changed = event.changed
        for name in check.watch:
            iri = iris.get(name)
            if iri is not None and iri in changed:
                break
        else:
            return False
    return check.always or holds(check, event, zones)


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
    if check.conjuncts:
        memo, entity, names = event.memo, event.entity, event.names
        for slot, part in check.conjuncts:
            found = memo.get(slot)
            if found is None:
                found = memo[slot] = part(entity, names)
            if not found:
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
        by = self.by
        reads = (by.relationship or by.attribute) if by is not None else None
        self.reads = sys.intern(reads) if reads else None
        """The relationship or attribute keyed by (None: not by one); read from the model once,
        as a compiled attribute (the model's own attributes cost a look-up each time)."""
        self.grid = by.grid if by is not None else None
        self.slot = memo_slot("key" + repr(key))
        self.cells: dict[Point, tuple[str, dict[str, Any]]] = {}
        """Grid cells by position (things that report mostly stand still)."""

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
        if self.kind == "global":
            return "*", None
        reads = self.reads
        if reads is not None:
            value = attribute_value(event.entity, event.names, reads)
            if value is None or isinstance(value, dict | list):
                return None
            return str(value), None
        point = event.point
        if point is None:
            return None
        grid = self.grid
        if grid is not None:
            cell = self.cells.get(point)
            if cell is None:
                if len(self.cells) > 100_000:
                    self.cells.clear()
                cell = self.cells[point] = grid_cell(self.env.plane, point, grid)
            return cell
        zone = self.env.zones.zone_of(point, self.zone_names)
        return (zone, self.env.zones.geojson[zone]) if zone is not None else None


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


def subject_of(event: Event, key: str, geometry: dict[str, Any] | None) -> Subject:
    return Subject(event.tenant, key, geometry=geometry, event=event)


def drop(state: dict[str, Any], name: str) -> None:
    """Remove a name from a key's state if it is there (`state.pop(name, None)`: compiled, a
    look-up costs far less than a method call, and the name is mostly not there)."""
    if name in state:
        del state[name]  # noqa: RUF051 (compiled, cheaper than pop: see above)


def remember_where(
    state: dict[str, Any], event: Event, key: str, geometry: dict[str, Any] | None
) -> None:
    """Keep where a key's entity is, for timers; again (its subject made) only when its
    location changed."""
    where: dict[str, Any] | None = state.get("where")
    if where is None or event.moved() or where.get("entity") != event.entity.id:
        state["where"] = where_of(subject_of(event, key, geometry))


def where_of(subject: Subject) -> dict[str, Any]:
    return {
        "entity": subject.entity.id if subject.entity is not None else None,
        "point": list(subject.point) if subject.point is not None else None,
        "geometry": subject.geometry,
    }


def restored_subject(env: Env, tenant: str, key: str, state: dict[str, Any]) -> Subject:
    """Return the subject of a key when a timer (not a change) fires it."""
    where = state.get("where") or {}
    entity = env.state.get(tenant, where.get("entity") or "")
    point = where.get("point")
    return Subject(
        tenant,
        key,
        entity,
        name_map(entity) if entity is not None else None,
        (point[0], point[1]) if point else None,
        where.get("geometry"),
    )
