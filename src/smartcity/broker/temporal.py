"""The temporal service: the history of entities (NGSI-LD temporal API), independent of the web.

Every read first catches the history up with the change log, so a read right after a write
sees it. The entities a query selects by id, type and attrs are those with a history (deleted
ones too, when their history is kept); idPattern, q, scopeQ and geo-queries select among the
entities that exist now, by their current state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartcity.auth.policy import (
    RESTRICTED_MARK,
    AccessControl,
    Permission,
    require,
    require_write,
)
from smartcity.auth.principal import Caller
from smartcity.broker.codec import parse_attributes, parse_entity
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.temporal_params import TemporalOptions
from smartcity.broker.temporal_render import (
    render_aggregated,
    render_normalized,
    render_simplified,
)
from smartcity.core.clock import Clock, isoformat
from smartcity.core.entity import ENTITY_MEMBERS
from smartcity.core.errors import BadRequestData, ResourceNotFound, TooManyResults
from smartcity.storage.base import EntityQuery, EntityStore
from smartcity.storage.history import (
    EntitySelection,
    HistoryEntity,
    HistoryStore,
    InstanceRecord,
)
from smartcity.storage.history_rows import (
    EntityHeader,
    HistoryRow,
    instance_row,
    instant,
    micros,
)


@dataclass(slots=True)
class Cut:
    """The time range actually returned when an attribute held more instances than the limit."""

    first: str
    last: str


@dataclass(slots=True)
class TemporalPage:
    """Temporal representations of entities, their total if asked, and a cut if any."""

    bodies: list[dict[str, Any]]
    total: int | None = None
    cut: Cut | None = None


class TemporalService:
    """Write and read the history of entities in one store."""

    def __init__(
        self,
        history: HistoryStore,
        entities: EntityStore,
        clock: Clock,
        access: AccessControl,
        *,
        max_limit: int = 1000,
        instance_limit: int = 10_000,
    ) -> None:
        self.history = history
        self.entities = entities
        self.clock = clock
        self.access = access
        self.max_limit = max_limit
        self.instance_limit = instance_limit

    # -- rules ----------------------------------------------------------------------------------

    def _may_write(self, caller: Caller, entity_id: str) -> None:
        """Refuse (and never by whether the entity exists) unless the caller may write it."""
        require(caller, Permission.WRITE_HISTORY)
        require_write(caller, entity_id)
        # Recorded when access is granted: a write that then fails validation is still logged.
        self.access.record(caller, "temporal.write", [(entity_id, "allowed")])

    @staticmethod
    def _may_read(caller: Caller) -> None:
        require(caller, Permission.READ_HISTORY)

    def _audit_reads(self, caller: Caller, entities: list[HistoryEntity]) -> None:
        """Record the reading of the history of every entity of a restricted type."""
        restricted = self.access.marked_types(caller.tenant, RESTRICTED_MARK)
        read = [(e.id, "ok") for e in entities if not restricted.isdisjoint(e.types)]
        if read:
            self.access.record(caller, "temporal.read", read)

    # -- writes ---------------------------------------------------------------------------------

    def upsert(self, caller: Caller, body: Any, ctx: ActiveContext) -> tuple[str, bool]:
        """Create or add to an entity's temporal representation; return (id, created)."""
        if not isinstance(body, dict):
            raise BadRequestData(
                "the body must be a JSON object: an entity's temporal representation"
            )
        now = isoformat(self.clock.now())
        head = parse_entity(
            {key: body[key] for key in ("id", "type", "scope") if key in body}, ctx, now
        )
        self._may_write(caller, head.id)
        rows = self._rows(body, ctx, now)
        header = EntityHeader(head.id, head.types, head.scopes)
        return head.id, self.history.add(caller.tenant, header, rows)

    def add_attributes(self, caller: Caller, entity_id: str, body: Any, ctx: ActiveContext) -> None:
        """Add attribute instances to an existing temporal representation."""
        self._may_write(caller, entity_id)
        if not isinstance(body, dict):
            raise BadRequestData(
                "the body must be a JSON object of attributes, each an array of instances"
            )
        entity = self._existing(caller, entity_id)
        rows = self._rows(body, ctx, isoformat(self.clock.now()))
        header = EntityHeader(entity.id, entity.types, entity.scopes)
        self.history.add(caller.tenant, header, rows)

    def _rows(self, body: dict[str, Any], ctx: ActiveContext, now: str) -> list[HistoryRow]:
        received = micros(now)
        rows: list[HistoryRow] = []
        for key, raw in body.items():
            if key in ENTITY_MEMBERS:
                continue
            for item in raw if isinstance(raw, list) else [raw]:
                if isinstance(item, dict) and _SIMPLIFIED.intersection(item):
                    raise BadRequestData(
                        f"attribute {key!r} is in the simplified temporal representation; "
                        "send each instance as an object, e.g. "
                        '[{"type": "Property", "value": 1, "observedAt": "..."}]'
                    )
                for name, instances in parse_attributes({key: item}, ctx, now).items():
                    rows.extend(instance_row(name, instance, received) for instance in instances)
        return rows

    def delete_entity(self, caller: Caller, entity_id: str) -> None:
        """Delete an entity's whole temporal representation."""
        self._may_write(caller, entity_id)
        self._catch_up()  # changes logged before this request are part of what it deletes
        if not self.history.delete_entity(caller.tenant, entity_id):
            raise ResourceNotFound(
                f"entity {entity_id} has no temporal representation", instance=entity_id
            )

    def delete_attribute(
        self,
        caller: Caller,
        entity_id: str,
        attribute: str,
        ctx: ActiveContext,
        *,
        dataset_id: str | None = None,
        delete_all: bool = False,
    ) -> None:
        """Delete the instances of an attribute (one dataset, or with delete_all every one)."""
        self._may_write(caller, entity_id)
        self._catch_up()
        removed = self.history.delete_attribute(
            caller.tenant, entity_id, ctx.expand(attribute), dataset_id, every=delete_all
        )
        if not removed:
            raise ResourceNotFound(
                f"the history of {entity_id} has no attribute {attribute}"
                + (f" with datasetId {dataset_id}" if dataset_id else ""),
                instance=entity_id,
            )

    def update_instance(
        self,
        caller: Caller,
        entity_id: str,
        attribute: str,
        instance_id: str,
        body: Any,
        ctx: ActiveContext,
    ) -> None:
        """Replace one attribute instance (a correction), keeping its instanceId."""
        self._may_write(caller, entity_id)
        name = ctx.expand(attribute)
        if not isinstance(body, dict):
            raise BadRequestData(f"the body must be a JSON object with the attribute {attribute}")
        raw = next((v for k, v in body.items() if ctx.expand(k) == name), None)
        if raw is None or (isinstance(raw, list) and len(raw) != 1):
            raise BadRequestData(f"the body must hold exactly one instance of {attribute}")
        now = isoformat(self.clock.now())
        item = raw[0] if isinstance(raw, list) else raw
        instance = parse_attributes({name: item}, ctx, now)[name][0]
        row = instance_row(name, instance, micros(now), instance_id)
        self._catch_up()
        if not self.history.replace_instance(caller.tenant, entity_id, name, instance_id, row):
            raise ResourceNotFound(
                f"{entity_id} has no instance {instance_id} of {attribute}", instance=instance_id
            )

    def delete_instance(
        self, caller: Caller, entity_id: str, attribute: str, instance_id: str, ctx: ActiveContext
    ) -> None:
        """Delete one attribute instance."""
        self._may_write(caller, entity_id)
        self._catch_up()
        if not self.history.delete_instance(
            caller.tenant, entity_id, ctx.expand(attribute), instance_id
        ):
            raise ResourceNotFound(
                f"{entity_id} has no instance {instance_id} of {attribute}", instance=instance_id
            )

    # -- reads ----------------------------------------------------------------------------------

    def _catch_up(self) -> None:
        self.history.catch_up()

    def _existing(self, caller: Caller, entity_id: str) -> HistoryEntity:
        self._catch_up()
        entity = self.history.entity(caller.tenant, entity_id)
        if entity is None:
            raise ResourceNotFound(
                f"entity {entity_id} has no temporal representation", instance=entity_id
            )
        return entity

    def retrieve(
        self, caller: Caller, entity_id: str, options: TemporalOptions, ctx: ActiveContext
    ) -> TemporalPage:
        """Return the temporal representation of one entity."""
        self._may_read(caller)
        entity = self._existing(caller, entity_id)
        if not self.access.visibility(caller).admits(entity.id, entity.types):
            # The same answer as for an entity that has no history: nothing leaks.
            raise ResourceNotFound(
                f"entity {entity_id} has no temporal representation", instance=entity_id
            )
        self._audit_reads(caller, [entity])
        page = self._render([entity], options, ctx)
        if options.attrs is not None and not any(
            key not in ("id", "type", "scope", "deletedAt") for key in page.bodies[0]
        ):
            raise ResourceNotFound(
                f"the history of {entity_id} has none of the attributes asked for "
                "in the time range",
                instance=entity_id,
            )
        return page

    def query(
        self, caller: Caller, query: EntityQuery, options: TemporalOptions, ctx: ActiveContext
    ) -> TemporalPage:
        """Return the temporal representations of the entities a query selects, by id."""
        self._may_read(caller)
        if query.limit > self.max_limit:
            raise TooManyResults(
                f"limit {query.limit} is above this broker's maximum of {self.max_limit}; "
                "page through the results with offset"
            )
        if query.limit == 0 and not query.count:
            raise BadRequestData("limit=0 only makes sense with count=true")
        if query.ids is None and query.types is None and not query.attrs and not _current(query):
            raise BadRequestData(
                "a temporal query needs an entity selection: id, type, idPattern, attrs, q, "
                "scopeQ or a geo-query"
            )
        self._catch_up()
        query.tenant = caller.tenant
        visibility = self.access.visibility(caller)
        query.visibility = visibility
        if _current(query):
            found = self.entities.query(query)
            entities = self.history.entities_by_id(caller.tenant, [e.id for e in found.entities])
            total = found.total
        else:
            selection = EntitySelection(
                tenant=caller.tenant,
                ids=query.ids,
                types=query.types,
                attrs=list(query.attrs) if query.attrs else None,
                limit=query.limit,
                offset=query.offset,
                count=query.count,
                visibility=visibility,
            )
            entities, total = self.history.entities(selection)
        self._audit_reads(caller, entities)
        page = self._render(entities, options, ctx)
        page.total = total
        return page

    def _render(
        self, entities: list[HistoryEntity], options: TemporalOptions, ctx: ActiveContext
    ) -> TemporalPage:
        keys = [entity.key for entity in entities]
        window = options.window(self.instance_limit)
        if options.form == "aggregatedValues":
            start = window.lower
            if options.period > 0 and start is None:
                start = self.history.first_time(keys, window)
            aggregates = self.history.aggregate(
                keys,
                window,
                start or 0,
                options.period,
                options.methods,
            )
            by_key: dict[int, list[Any]] = {}
            for aggregate in aggregates:
                by_key.setdefault(aggregate.key, []).append(aggregate)
            bodies = [
                render_aggregated(e, by_key.get(e.key, []), ctx, options, start or 0)
                for e in entities
            ]
            return TemporalPage(bodies)
        found = self.history.instances(keys, window)
        cut_times: list[int] = []
        bodies = []
        for entity in entities:
            records = found.get(entity.key, [])
            newest = options.last_n is not None
            kept = list(_within_limit(records, self.instance_limit, newest, cut_times))
            render = render_simplified if options.form == "temporalValues" else render_normalized
            bodies.append(render(entity, kept, ctx, options))
        cut = None
        if cut_times:
            cut = Cut(instant(min(cut_times)), instant(max(cut_times)))
        return TemporalPage(bodies, cut=cut)


_SIMPLIFIED = frozenset(
    {"values", "objects", "languageMaps", "jsons", "vocabs", "valueLists", "objectLists"}
)


def _current(query: EntityQuery) -> bool:
    """Tell whether a query selects entities by their current state."""
    return any(x is not None for x in (query.id_pattern, query.q, query.scope_q, query.geo))


def _within_limit(
    records: list[InstanceRecord], limit: int, newest: bool, cut_times: list[int]
) -> Iterable[InstanceRecord]:
    """Keep at most `limit` instances per attribute; note the times returned when cut."""
    per_attr: dict[str, list[InstanceRecord]] = {}
    for record in records:
        per_attr.setdefault(record.attr, []).append(record)
    for items in per_attr.values():
        if len(items) > limit:
            # The oldest, unless lastN asked for the newest (the store then kept the newest).
            items = items[-limit:] if newest else items[:limit]
            cut_times.extend((items[0].at, items[-1].at))
        yield from items
