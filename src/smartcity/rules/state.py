"""The current state of the entities rules join with, and the joins and targets over it.

The engine keeps, per tenant, the entities of every type its rules join with or act on (is a
concert on, which streetlights stand near the camera), fed by `prime` and by the same change
stream the rules see, with a grid index so "near" looks only at the cells around a point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartcity.core.entity import StoredEntity, instance_value
from smartcity.rules.match import Bound, Condition, compile_q
from smartcity.rules.model import Join, Target, parse_threshold
from smartcity.rules.names import NameMap, local_name, name_map, parse_moment
from smartcity.rules.spatial import GridIndex, Plane, Point, Zones, entity_point


class WorldState:
    """Entities of the kept types, per tenant and type, with their positions indexed."""

    def __init__(self, plane: Plane, kept_types: Iterable[str]) -> None:
        self.plane = plane
        self.kept = frozenset(kept_types)
        self.entities: dict[tuple[str, str], dict[str, StoredEntity]] = {}
        self.grids: dict[tuple[str, str], GridIndex] = {}

    def types_of(self, entity: StoredEntity) -> list[str]:
        """Return the kept types of an entity (local names)."""
        return [name for iri in entity.types if (name := local_name(iri)) in self.kept]

    def put(self, tenant: str, entity: StoredEntity) -> None:
        """Keep (or replace) an entity of a kept type."""
        self.put_at(tenant, entity, entity_point(entity, name_map(entity)))

    def put_at(self, tenant: str, entity: StoredEntity, point: Point | None) -> None:
        """Keep (or replace) an entity of a kept type, whose position is known already."""
        for type_name in self.types_of(entity):
            slot = (tenant, type_name)
            kept = self.entities.get(slot)
            if kept is None:
                kept = self.entities[slot] = {}
            kept[entity.id] = entity
            grid = self.grids.get(slot)
            if grid is None:
                grid = self.grids[slot] = GridIndex(self.plane)
            grid.put(entity.id, point)

    def remove(self, tenant: str, entity: StoredEntity) -> None:
        """Forget an entity (it was deleted)."""
        for type_name in self.types_of(entity):
            self.entities.get((tenant, type_name), {}).pop(entity.id, None)
            grid = self.grids.get((tenant, type_name))
            if grid is not None:
                grid.put(entity.id, None)

    def get(self, tenant: str, entity_id: str) -> StoredEntity | None:
        """Return a kept entity by id, whatever its type."""
        for (owner, _), entities in self.entities.items():
            if owner == tenant and entity_id in entities:
                return entities[entity_id]
        return None

    def candidates(
        self, tenant: str, types: Iterable[str], near: tuple[Point, float] | None
    ) -> list[StoredEntity]:
        """Return the kept entities of some types (near a point: nearest first, else by id)."""
        found: list[tuple[float, str, StoredEntity]] = []
        for type_name in types:
            entities = self.entities.get((tenant, type_name))
            if not entities:
                continue
            if near is not None:
                for metres, entity_id in self.grids[(tenant, type_name)].near(*near):
                    found.append((metres, entity_id, entities[entity_id]))
            else:
                found.extend((0.0, entity_id, e) for entity_id, e in entities.items())
        found.sort(key=lambda item: (item[0], item[1]))
        unique: dict[str, StoredEntity] = {}
        for _, entity_id, entity in found:
            unique.setdefault(entity_id, entity)
        return list(unique.values())

    def snapshot(self) -> list[dict[str, Any]]:
        """Return the kept entities as JSON-ready data."""
        out = []
        for (tenant, _), entities in sorted(self.entities.items()):
            for entity in entities.values():
                out.append({"tenant": tenant, **entity_data(entity)})
        return out

    def restore(self, items: Iterable[dict[str, Any]]) -> None:
        """Take back what `snapshot` returned."""
        self.entities.clear()
        self.grids.clear()
        for item in items:
            self.put(item["tenant"], entity_from_data(item))


def entity_data(entity: StoredEntity) -> dict[str, Any]:
    """Return an entity as JSON-ready data."""
    return {
        "id": entity.id,
        "types": list(entity.types),
        "attrs": entity.attrs,
        "scopes": list(entity.scopes),
        "createdAt": entity.created_at,
        "modifiedAt": entity.modified_at,
    }


def entity_from_data(data: dict[str, Any]) -> StoredEntity:
    """Return an entity from `entity_data`."""
    return StoredEntity(
        id=data["id"],
        types=list(data["types"]),
        attrs=data["attrs"],
        scopes=list(data.get("scopes", [])),
        created_at=data.get("createdAt", ""),
        modified_at=data.get("modifiedAt", ""),
    )


def attribute_value(entity: StoredEntity, names: NameMap, name: str) -> Any:
    """Return the value (or a relationship's object) of an entity's attribute, None if absent."""
    if name == "id":
        return entity.id
    iri = names.iris.get(name)
    if iri is None:
        return None
    instances = entity.attrs.get(iri)
    if not instances:
        return None
    return instance_value(instances[0])


@dataclass(slots=True)
class Selection:
    """Entities of the state that pass a filter: types, id, q, zone, nearness, activity."""

    types: tuple[str, ...]
    id: re.Pattern[str] | None
    q: Condition | None
    near: float | None
    inside: str | None

    def select(
        self,
        state: WorldState,
        zones: Zones,
        tenant: str,
        point: Point | None,
        limit: int | None = None,
    ) -> list[StoredEntity]:
        """Return the kept entities that pass, nearest (or by id) first."""
        if self.near is not None and point is None:
            return []
        near = (point, self.near) if self.near is not None and point is not None else None
        found = []
        for entity in state.candidates(tenant, self.types, near):
            if self.id is not None and self.id.fullmatch(entity.id) is None:
                continue
            names = name_map(entity)
            if self.q is not None and not self.q(entity, names):
                continue
            if self.inside is not None:
                where = entity_point(entity, names)
                if where is None or not zones.contains(self.inside, where):
                    continue
            found.append(entity)
            if limit is not None and len(found) >= limit:
                break
        return found


def selection(
    types: Iterable[str],
    id_pattern: str | None,
    q: str | None,
    near: float | None,
    inside: str | None,
) -> Selection:
    """Return a compiled selection."""
    return Selection(
        tuple(types),
        re.compile(id_pattern) if id_pattern else None,
        compile_q(q)[0] if q else None,
        near,
        inside,
    )


class CompiledJoin:
    """A join ready to test: how many kept entities meet it, compared with its count."""

    def __init__(self, join: Join) -> None:
        self.selection = selection(join.type, join.id, join.q, join.near, join.inside)
        self.via = join.via
        self.active = join.active
        self.count = Bound(*parse_threshold(join.count))

    def holds(
        self,
        state: WorldState,
        zones: Zones,
        tenant: str,
        entity: StoredEntity | None,
        names: NameMap | None,
        point: Point | None,
        moment: float,
    ) -> bool:
        """Tell whether the join holds for a changed entity at a moment."""
        if self.via is not None:
            if entity is None or names is None:
                return False
            target = attribute_value(entity, names, self.via)
            wanted = target if isinstance(target, list) else [target]
            joined = [state.get(tenant, t) for t in wanted if isinstance(t, str)]
            found = self._filter([e for e in joined if e is not None])
        else:
            found = self.selection.select(state, zones, tenant, point)
        if self.active is not None:
            found = [e for e in found if self._active(e, moment)]
        return self.count.holds(len(found))

    def _filter(self, among: list[StoredEntity]) -> list[StoredEntity]:
        keep = []
        for entity in among:
            if not any(local_name(t) in self.selection.types for t in entity.types):
                continue
            if self.selection.id is not None and self.selection.id.fullmatch(entity.id) is None:
                continue
            if self.selection.q is not None and not self.selection.q(entity, name_map(entity)):
                continue
            keep.append(entity)
        return keep

    def _active(self, entity: StoredEntity, moment: float) -> bool:
        assert self.active is not None
        names = name_map(entity)
        start = _moment(attribute_value(entity, names, self.active.start))
        end = _moment(attribute_value(entity, names, self.active.end))
        if start is None:
            return False
        until = end if end is not None else start
        return start - self.active.before <= moment <= until + self.active.after


def _moment(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("@value")
    return parse_moment(value) if isinstance(value, str) else None


def compile_target(target: Target) -> Selection:
    """Return the selection of an action's target entities."""
    return selection(target.type or [], None, target.q, target.near, target.inside)
