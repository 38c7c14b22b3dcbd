"""Match entity changes against subscriptions: compiled selectors, triggers, an index by id/type."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal

from smartcity.broker.contexts import ActiveContext
from smartcity.core.entity import LOCATION, StoredEntity, geo_values
from smartcity.core.geo import GeoPredicate, geo_query_from_json
from smartcity.core.patterns import Pattern, compile_pattern, search
from smartcity.core.qeval import evaluate, evaluate_scope, evaluate_types
from smartcity.core.qlang import (
    And,
    Node,
    Or,
    TypeName,
    map_names,
    map_type_names,
    parse_q,
    parse_scope_q,
    parse_types,
)
from smartcity.storage.base import ChangeKind, ChangeRecord
from smartcity.storage.subscriptions import SubscriptionRecord

ENTITY_CREATED: Final = "entityCreated"
ENTITY_UPDATED: Final = "entityUpdated"
ENTITY_DELETED: Final = "entityDeleted"
ATTRIBUTE_CREATED: Final = "attributeCreated"
ATTRIBUTE_UPDATED: Final = "attributeUpdated"
ATTRIBUTE_DELETED: Final = "attributeDeleted"
TRIGGERS: Final = (
    ENTITY_CREATED,
    ENTITY_UPDATED,
    ENTITY_DELETED,
    ATTRIBUTE_CREATED,
    ATTRIBUTE_UPDATED,
    ATTRIBUTE_DELETED,
)
# NGSI-LD clause 5.2.12: without notificationTrigger, attributes created or updated notify.
DEFAULT_TRIGGERS: Final = frozenset({ATTRIBUTE_CREATED, ATTRIBUTE_UPDATED})


@dataclass(frozen=True, slots=True)
class Selector:
    """One entry of `entities`: an id or id pattern and a type selection, names expanded."""

    types: Node
    entity_id: str | None = None
    id_pattern: Pattern | None = None

    def matches(self, entity: StoredEntity) -> bool:
        """Tell whether an entity is one this selector names."""
        if self.entity_id is not None and entity.id != self.entity_id:
            return False
        if self.id_pattern is not None and not search(self.id_pattern, entity.id):
            return False
        return evaluate_types(self.types, entity.types)


@dataclass(slots=True)
class CompiledSubscription:
    """A subscription ready to test changes: every name expanded, every query parsed."""

    record: SubscriptionRecord
    render_context: ActiveContext
    """The @context notifications are compacted with."""
    context_source: Any
    """What notifications name as their @context (Link header or body member)."""
    selectors: list[Selector]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    q: Node | None = None
    scope_q: Node | None = None
    geo: GeoPredicate | None = None
    attributes: frozenset[str] | None = None
    form: Literal["normalized", "concise", "keyValues"] = "normalized"
    sys_attrs: bool = False
    show_changes: bool = False
    lang: str | None = None
    active: bool = True
    expires_at: float | None = None
    throttling: float = 0.0
    time_interval: float = 0.0
    endpoint: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """(tenant, id)."""
        return self.record.tenant, self.record.id

    def live(self, now: float) -> bool:
        """Tell whether it notifies at this moment (active and not expired)."""
        return self.active and (self.expires_at is None or now < self.expires_at)

    def selects(self, entity: StoredEntity) -> bool:
        """Tell whether an entity is selected (entities, q, scopeQ, geoQ)."""
        if self.selectors and not any(s.matches(entity) for s in self.selectors):
            return False
        if self.q is not None and not evaluate(self.q, entity):
            return False
        if self.scope_q is not None and not evaluate_scope(self.scope_q, entity.scopes):
            return False
        if self.geo is not None:
            geometries = geo_values(entity, self.geo.query.geoproperty)
            if not any(self.geo.matches(geometry) for geometry in geometries):
                return False
        return True

    def triggered_by(self, change: ChangeRecord) -> bool:
        """Tell whether a change fires one of the subscription's triggers."""
        if self.time_interval:
            return False
        if change.kind is ChangeKind.DELETE:
            return ENTITY_DELETED in self.triggers
        if change.kind is ChangeKind.CREATE and ENTITY_CREATED in self.triggers:
            return True
        watched = [name for name in change.changed if self.watched is None or name in self.watched]
        if (
            change.kind is ChangeKind.UPDATE
            and ENTITY_UPDATED in self.triggers
            and (watched or (self.watched is None and change.types_changed))
        ):
            return True
        for name in watched:
            if name not in change.previous:
                fired = ATTRIBUTE_CREATED
            elif name not in change.entity.attrs:
                fired = ATTRIBUTE_DELETED
            else:
                fired = ATTRIBUTE_UPDATED
            if fired in self.triggers:
                return True
        return False


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def compile_subscription(
    record: SubscriptionRecord, ctx: ActiveContext, render_ctx: ActiveContext | None = None
) -> CompiledSubscription:
    """Compile a validated subscription document; `ctx` is the @context its terms use."""
    doc = record.doc
    notification: dict[str, Any] = doc.get("notification") or {}
    selectors = [
        Selector(
            types=map_type_names(parse_types(item["type"]), ctx.expand),
            entity_id=item.get("id"),
            id_pattern=compile_pattern(item["idPattern"]) if "idPattern" in item else None,
        )
        for item in doc.get("entities") or []
    ]
    geo = None
    if "geoQ" in doc:
        query = geo_query_from_json(dict(doc["geoQ"]), "location")
        geoproperty = ctx.expand(query.geoproperty) if query.geoproperty else LOCATION
        geo = GeoPredicate(replace(query, geoproperty=geoproperty))
    watched = doc.get("watchedAttributes")
    attributes = notification.get("attributes")
    expires = doc.get("expiresAt")
    return CompiledSubscription(
        record=record,
        render_context=render_ctx or ctx,
        context_source=doc.get("jsonldContext", record.context),
        selectors=selectors,
        watched=frozenset(ctx.expand(n) for n in watched) if watched else None,
        triggers=frozenset(doc.get("notificationTrigger") or DEFAULT_TRIGGERS),
        q=map_names(parse_q(doc["q"]), ctx.expand) if doc.get("q") else None,
        scope_q=parse_scope_q(doc["scopeQ"]) if doc.get("scopeQ") else None,
        geo=geo,
        attributes=frozenset(ctx.expand(n) for n in attributes) if attributes else None,
        form=notification.get("format", "normalized"),
        sys_attrs=bool(notification.get("sysAttrs", False)),
        show_changes=bool(notification.get("showChanges", False)),
        lang=doc.get("lang"),
        active=bool(doc.get("isActive", True)),
        expires_at=_epoch(expires) if expires else None,
        throttling=float(doc.get("throttling", 0)),
        time_interval=float(doc.get("timeInterval", 0)),
        endpoint=dict(notification.get("endpoint") or {}),
    )


def _index_types(expr: Node) -> set[str]:
    """Return type names of which every entity the selection takes has at least one."""
    if isinstance(expr, TypeName):
        return {expr.name}
    if isinstance(expr, Or):
        return set().union(*(_index_types(item) for item in expr.items))
    if isinstance(expr, And):
        return _index_types(expr.items[0])
    raise TypeError(f"not a type selection: {expr!r}")


@dataclass(slots=True)
class _TenantIndex:
    by_id: dict[str, list[CompiledSubscription]] = field(default_factory=dict)
    by_type: dict[str, list[CompiledSubscription]] = field(default_factory=dict)
    everything: list[CompiledSubscription] = field(default_factory=list)


class SubscriptionIndex:
    """The subscriptions of every tenant, found by entity id and type."""

    def __init__(self, subscriptions: Iterable[CompiledSubscription] = ()) -> None:
        self._tenants: dict[str, _TenantIndex] = {}
        self._all: dict[tuple[str, str], CompiledSubscription] = {}
        for subscription in subscriptions:
            self._add(subscription)

    def _add(self, subscription: CompiledSubscription) -> None:
        self._all[subscription.key] = subscription
        index = self._tenants.setdefault(subscription.record.tenant, _TenantIndex())
        if not subscription.selectors:
            index.everything.append(subscription)
            return
        keys: set[tuple[str, str]] = set()
        for selector in subscription.selectors:
            if selector.entity_id is not None:
                keys.add(("id", selector.entity_id))
            else:
                keys.update(("type", name) for name in _index_types(selector.types))
        for kind, name in sorted(keys):
            table = index.by_id if kind == "id" else index.by_type
            table.setdefault(name, []).append(subscription)

    def get(self, tenant: str, subscription_id: str) -> CompiledSubscription | None:
        """Return one subscription or None."""
        return self._all.get((tenant, subscription_id))

    def __iter__(self) -> Iterator[CompiledSubscription]:
        return iter(self._all.values())

    def __len__(self) -> int:
        return len(self._all)

    def candidates(self, tenant: str, entity: StoredEntity) -> list[CompiledSubscription]:
        """Return the subscriptions of a tenant that may select this entity (a superset)."""
        return self.candidates_of(tenant, entity.id, entity.types)

    def candidates_of(
        self, tenant: str, entity_id: str, types: Iterable[str]
    ) -> list[CompiledSubscription]:
        """Return the subscriptions of a tenant that may select an entity of this id and types."""
        index = self._tenants.get(tenant)
        if index is None:
            return []
        found: dict[int, CompiledSubscription] = {}
        for subscription in index.by_id.get(entity_id, ()):
            found[id(subscription)] = subscription
        for name in types:
            for subscription in index.by_type.get(name, ()):
                found[id(subscription)] = subscription
        for subscription in index.everything:
            found[id(subscription)] = subscription
        return list(found.values())

    def matches(self, change: ChangeRecord, now: float) -> list[CompiledSubscription]:
        """Return the live subscriptions that a change notifies."""
        return [
            subscription
            for subscription in self.candidates(change.tenant, change.entity)
            if change.seq > subscription.record.since_seq
            and subscription.live(now)
            and subscription.triggered_by(change)
            and subscription.selects(change.entity)
        ]
