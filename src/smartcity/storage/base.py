"""The EntityStore Protocol every storage backend implements, and its query and change types."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from smartcity.core.entity import Instance, StoredEntity

if TYPE_CHECKING:
    from smartcity.core.geo import GeoPredicate
    from smartcity.core.qlang import QExpr, ScopeExpr, TypeExpr


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which entities a reader may see: every one, or those of some types or with some ids."""

    everything: bool = True
    types: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()

    @classmethod
    def only(cls, types: Collection[str] = (), ids: Collection[str] = ()) -> Visibility:
        """Return the visibility of the entities with one of these types or ids (maybe none)."""
        return cls(False, frozenset(types), frozenset(ids))

    def allows(self, entity: StoredEntity) -> bool:
        """Tell whether the reader may see this entity."""
        return self.admits(entity.id, entity.types)

    def admits(self, entity_id: str, types: Collection[str]) -> bool:
        """Tell whether the reader may see the entity with this id and these types."""
        return self.everything or entity_id in self.ids or not self.types.isdisjoint(types)

    def allows_type(self, type_iri: str) -> bool:
        """Tell whether the reader may see every entity of this type."""
        return self.everything or type_iri in self.types


EVERYTHING = Visibility()


@dataclass(slots=True)
class EntityQuery:
    """What a query asks of the store; names are expanded IRIs."""

    tenant: str = ""
    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    types: TypeExpr | None = None
    q: QExpr | None = None
    scope_q: ScopeExpr | None = None
    geo: GeoPredicate | None = None
    geoproperty: str | None = None
    attrs: Collection[str] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    visibility: Visibility = EVERYTHING
    """What the caller may see; the store filters by it, so counts and pages leak nothing."""


@dataclass(slots=True)
class QueryPage:
    """One page of query results, in a stable order (by entity id), and the total if asked."""

    entities: list[StoredEntity]
    total: int | None = None


@dataclass(slots=True)
class Changes:
    """The writes one transaction makes: whole entities to put, ids to delete."""

    upserts: list[StoredEntity] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    at: str = ""
    """When the deletes happen (upserts carry their own modifiedAt)."""

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


class ChangeKind(StrEnum):
    """What happened to an entity."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(slots=True)
class ChangeRecord:
    """One committed change of one entity, as kept in the change log.

    The log is written in the same transaction as the change itself (a transactional outbox):
    temporal history, subscriptions and the event bus all read it, so none of them can miss a
    change that committed or see one that did not.
    """

    seq: int
    tenant: str
    kind: ChangeKind
    at: str
    entity: StoredEntity
    """The entity after the change; for a delete, as it was before."""
    changed: list[str]
    """The attributes whose instances changed (every attribute on create and delete)."""
    previous: dict[str, list[Instance]]
    """The changed attributes as they were before (empty on create)."""
    types_changed: bool = False


@dataclass(frozen=True, slots=True)
class ChangeHead:
    """Which entity a logged change is about, without the change itself."""

    seq: int
    tenant: str
    entity_id: str
    types: list[str]


@dataclass(frozen=True, slots=True)
class LoggedChanges:
    """The changes one write transaction just logged, handed to the store's change hooks."""

    before: int
    """The newest sequence number in the log before this transaction's records."""
    last: int
    """The newest sequence number after them (the log holds these records in (before, last])."""
    records: list[ChangeRecord]
    """The records in log order (their `seq` is 0: readers of the log see the real ones)."""


ChangeHook = Callable[[Any, LoggedChanges], None]
"""Called with the write transaction's cursor after the change log rows are written."""


Plan = Callable[[dict[str, StoredEntity]], Changes]
"""Given the current state of the named entities (absent ones missing), decide the writes."""
AfterWrite = Callable[[Any, Changes], None]
"""Called with the write transaction's cursor after the writes, to add rows atomically."""


@dataclass(slots=True)
class TypeSummary:
    """An entity type present in the store, with its attribute names and entity count."""

    type: str
    count: int
    attributes: list[str]


@dataclass(slots=True)
class AttributeSummary:
    """An attribute name present in the store, the types that use it and how many entities."""

    name: str
    count: int
    types: list[str]


class EntityStore(Protocol):
    """Current state of every entity, per tenant."""

    def apply(
        self, tenant: str, ids: Collection[str], plan: Plan, after: AfterWrite | None = None
    ) -> Changes:
        """Load the named entities, ask `plan` for the writes, make them in one transaction.

        `after` (the audit log) writes its own rows in the same transaction.
        """
        ...

    def get(self, tenant: str, entity_id: str) -> StoredEntity | None:
        """Return one entity or None."""
        ...

    def query(self, query: EntityQuery) -> QueryPage:
        """Return the entities that match, paginated."""
        ...

    def type_summaries(self, tenant: str, visibility: Visibility = EVERYTHING) -> list[TypeSummary]:
        """Return every entity type with its count and attribute names (of visible entities)."""
        ...

    def attribute_summaries(
        self, tenant: str, visibility: Visibility = EVERYTHING
    ) -> list[AttributeSummary]:
        """Return every attribute name with the types that use it (of visible entities)."""
        ...

    def entities_of_type(
        self, tenant: str, type_iri: str, visibility: Visibility = EVERYTHING
    ) -> list[StoredEntity]:
        """Return every entity of one type (for type details; not for hot paths)."""
        ...

    def changes_since(self, after_seq: int, limit: int = 500) -> list[ChangeRecord]:
        """Return the logged changes with a sequence number above `after_seq`, oldest first."""
        ...

    def change_heads_since(self, after_seq: int, limit: int = 500) -> list[ChangeHead]:
        """Return what identifies the logged changes after `after_seq` (cheap: no documents)."""
        ...

    def changes_at(self, seqs: Sequence[int]) -> list[ChangeRecord]:
        """Return the logged changes with these sequence numbers, oldest first."""
        ...

    def last_change_seq(self) -> int:
        """Return the sequence number of the newest logged change (0 when none)."""
        ...

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the writing thread) after every commit that logged changes."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
