"""The entity service: every NGSI-LD entity operation, independent of the web framework."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartcity.auth.policy import AccessControl, Permission, may_write, require, require_write
from smartcity.auth.principal import Caller
from smartcity.broker.codec import parse_attributes, parse_entity, parse_entity_fragment
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.merge import (
    UpdateResult,
    find_instance,
    is_null,
    merge_instance,
    put_instances,
)
from smartcity.core.clock import Clock, isoformat
from smartcity.core.entity import ENTITY_MEMBERS, StoredEntity
from smartcity.core.errors import (
    AlreadyExists,
    BadRequestData,
    Forbidden,
    ResourceNotFound,
    SmartCityError,
    TooManyResults,
)
from smartcity.storage.base import (
    AfterWrite,
    AttributeSummary,
    Changes,
    EntityQuery,
    EntityStore,
    Plan,
    QueryPage,
    TypeSummary,
)


@dataclass(slots=True)
class BatchError:
    """Why one entity of a batch failed."""

    entity_id: str
    error: SmartCityError


@dataclass(slots=True)
class BatchResult:
    """Per-entity outcome of a batch operation."""

    success: list[str] = field(default_factory=list)
    errors: list[BatchError] = field(default_factory=list)


Targets = list[tuple[str, str]]
ContextOf = Callable[[Any], ActiveContext]
"""The @context in force for one raw entity of a batch (each may carry its own)."""


def _entity_id(raw: Any) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return str(raw["id"])
    return ""


def outcome_of(error: SmartCityError) -> str:
    """Return how a failed operation is recorded in the audit log."""
    return f"failed: {type(error).__name__}"


class EntityService:
    """Create, read, update, delete and query entities in one store, as the policy allows.

    Every write is checked against the caller's roles (a device writes only its own entities)
    and recorded in the audit log; every read sees only what the caller may see (the store
    filters queries, so counts and pages leak nothing) and reads of restricted types are audited.
    """

    def __init__(
        self, store: EntityStore, clock: Clock, access: AccessControl, *, max_limit: int = 1000
    ) -> None:
        self.store = store
        self.clock = clock
        self.access = access
        self.max_limit = max_limit

    def _now(self) -> str:
        return isoformat(self.clock.now())

    def _check_write(self, caller: Caller, entity_id: str, action: str) -> None:
        """Refuse (and audit) a write the caller may not make, before anything is read."""
        try:
            require_write(caller, entity_id)
        except SmartCityError as error:
            if caller.authenticated:
                self.access.record(caller, action, [(entity_id, outcome_of(error))])
            raise

    def _audit_in(self, caller: Caller, action: str, targets: Callable[[], Targets]) -> AfterWrite:
        """Return the hook that writes the audit records in the entity write's transaction."""

        def write(cursor: Any, _: Changes) -> None:
            self.access.record_in(cursor, caller, action, targets())

        return write

    def _apply_one(self, caller: Caller, action: str, entity_id: str, plan: Plan) -> None:
        """Write one entity the caller may write; audit it with the write, or audit the failure."""
        self._check_write(caller, entity_id, action)
        try:
            self.store.apply(
                caller.tenant,
                [entity_id],
                plan,
                after=self._audit_in(caller, action, lambda: [(entity_id, "ok")]),
            )
        except SmartCityError as error:
            self.access.record(caller, action, [(entity_id, outcome_of(error))])
            raise

    def _apply_batch(
        self, caller: Caller, action: str, ids: Sequence[str], plan: Plan, result: BatchResult
    ) -> None:
        """Write a batch; its audit records (per entity, errors too) go in the same transaction."""

        def targets() -> Targets:
            return [(entity_id, "ok") for entity_id in dict.fromkeys(result.success)] + [
                (item.entity_id, outcome_of(item.error)) for item in result.errors
            ]

        if ids:
            self.store.apply(
                caller.tenant, ids, plan, after=self._audit_in(caller, action, targets)
            )
        else:
            self.access.record(caller, action, targets())

    def _writable(
        self, caller: Caller, entities: list[StoredEntity], result: BatchResult
    ) -> list[StoredEntity]:
        """Keep the entities the caller may write; the others become per-entity 403 errors."""
        kept: list[StoredEntity] = []
        for entity in entities:
            if may_write(caller, entity.id):
                kept.append(entity)
            else:
                result.errors.append(BatchError(entity.id, _forbidden(caller, entity.id)))
        return kept

    # -- single entities ------------------------------------------------------------------------

    def create(self, caller: Caller, body: Any, ctx: ActiveContext) -> str:
        """Create one entity; AlreadyExists if its id is taken."""
        require(caller, Permission.WRITE_ENTITIES)
        entity = parse_entity(body, ctx, self._now())

        def plan(current: dict[str, StoredEntity]) -> Changes:
            if entity.id in current:
                raise AlreadyExists(f"entity {entity.id} already exists", instance=entity.id)
            return Changes(upserts=[entity])

        self._apply_one(caller, "entity.create", entity.id, plan)
        return entity.id

    def retrieve(self, caller: Caller, entity_id: str) -> StoredEntity:
        """Return one entity; ResourceNotFound if there is none the caller may see."""
        require(caller, Permission.READ_ENTITIES)
        visibility = self.access.visibility(caller)
        entity = self.store.get(caller.tenant, entity_id)
        if entity is None or not visibility.allows(entity):
            raise ResourceNotFound(f"no entity with id {entity_id}", instance=entity_id)
        self.access.record_reads(caller, "entity.read", [entity])
        return entity

    def delete(self, caller: Caller, entity_id: str) -> None:
        """Delete one entity; ResourceNotFound if there is none with that id."""
        self._check_write(caller, entity_id, "entity.delete")
        now = self._now()

        def plan(current: dict[str, StoredEntity]) -> Changes:
            if entity_id not in current:
                raise ResourceNotFound(f"no entity with id {entity_id}", instance=entity_id)
            return Changes(deletes=[entity_id], at=now)

        self._apply_one(caller, "entity.delete", entity_id, plan)

    def _modify(
        self,
        caller: Caller,
        entity_id: str,
        change: Callable[[StoredEntity, str], None],
        action: str = "entity.update",
    ) -> StoredEntity:
        """Apply an in-place change to one existing entity in one transaction."""
        now = self._now()
        result: list[StoredEntity] = []

        def plan(current: dict[str, StoredEntity]) -> Changes:
            entity = current.get(entity_id)
            if entity is None:
                raise ResourceNotFound(f"no entity with id {entity_id}", instance=entity_id)
            change(entity, now)
            entity.modified_at = now
            result.append(entity)
            return Changes(upserts=[entity])

        self._apply_one(caller, action, entity_id, plan)
        return result[0]

    def append_attributes(
        self,
        caller: Caller,
        entity_id: str,
        body: Any,
        ctx: ActiveContext,
        *,
        overwrite: bool = True,
    ) -> UpdateResult:
        """Add attributes (POST .../attrs); existing ones are overwritten unless told not to."""
        return self._put_attributes(
            caller, entity_id, body, ctx, overwrite=overwrite, only_existing=False
        )

    def update_attributes(
        self, caller: Caller, entity_id: str, body: Any, ctx: ActiveContext
    ) -> UpdateResult:
        """Replace existing attributes (PATCH .../attrs); others are reported as not updated."""
        return self._put_attributes(
            caller, entity_id, body, ctx, overwrite=True, only_existing=True
        )

    def _put_attributes(
        self,
        caller: Caller,
        entity_id: str,
        body: Any,
        ctx: ActiveContext,
        *,
        overwrite: bool,
        only_existing: bool,
    ) -> UpdateResult:
        self._check_write(caller, entity_id, "entity.update")
        incoming = parse_attributes(_attributes_only(body), ctx, self._now())
        result = UpdateResult()

        def change(entity: StoredEntity, at: str) -> None:
            put_instances(
                entity.attrs,
                incoming,
                at,
                overwrite=overwrite,
                only_existing=only_existing,
                result=result,
                display=_display_names(body, ctx),
            )

        self._modify(caller, entity_id, change, "entity.update")
        return result

    def partial_update_attribute(
        self, caller: Caller, entity_id: str, attribute: str, body: Any, ctx: ActiveContext
    ) -> None:
        """Merge members into one attribute (PATCH .../attrs/{attrId})."""
        self._check_write(caller, entity_id, "attribute.update")
        if not isinstance(body, dict):
            raise BadRequestData("the body must be a JSON object with the members to change")
        name = ctx.expand(attribute)
        dataset_id = body.get("datasetId")

        def change(entity: StoredEntity, now: str) -> None:
            instances = entity.attrs.get(name, [])
            position = find_instance(instances, dataset_id)
            if position is None:
                raise ResourceNotFound(
                    f"entity {entity_id} has no attribute {attribute}"
                    + (f" with datasetId {dataset_id}" if dataset_id else ""),
                    instance=entity_id,
                )
            merged = merge_instance(instances[position], body)
            parsed = parse_attributes({name: merged}, ctx, now)[name][0]
            parsed["createdAt"] = instances[position].get("createdAt", now)
            instances[position] = parsed

        self._modify(caller, entity_id, change, "attribute.update")

    def replace_attribute(
        self, caller: Caller, entity_id: str, attribute: str, body: Any, ctx: ActiveContext
    ) -> None:
        """Replace one attribute whole (PUT .../attrs/{attrId})."""
        self._check_write(caller, entity_id, "attribute.replace")
        name = ctx.expand(attribute)
        now = self._now()
        incoming = parse_attributes({name: body}, ctx, now)

        def change(entity: StoredEntity, at: str) -> None:
            for instance in incoming[name]:
                dataset_id = instance.get("datasetId")
                if find_instance(entity.attrs.get(name, []), dataset_id) is None:
                    raise ResourceNotFound(
                        f"entity {entity_id} has no attribute {attribute}"
                        + (f" with datasetId {dataset_id}" if dataset_id else ""),
                        instance=entity_id,
                    )
            put_instances(
                entity.attrs,
                incoming,
                at,
                overwrite=True,
                only_existing=False,
                result=UpdateResult(),
            )

        self._modify(caller, entity_id, change, "attribute.replace")

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
        """Delete an attribute, one of its instances, or all its instances."""
        self._check_write(caller, entity_id, "attribute.delete")
        name = ctx.expand(attribute)

        def change(entity: StoredEntity, now: str) -> None:
            instances = entity.attrs.get(name)
            if not instances:
                raise ResourceNotFound(
                    f"entity {entity_id} has no attribute {attribute}", instance=entity_id
                )
            if delete_all:
                del entity.attrs[name]
                return
            position = find_instance(instances, dataset_id)
            if position is None:
                raise ResourceNotFound(
                    f"attribute {attribute} of {entity_id} has no instance "
                    + (f"with datasetId {dataset_id}" if dataset_id else "without a datasetId"),
                    instance=entity_id,
                )
            del instances[position]
            if not instances:
                del entity.attrs[name]

        self._modify(caller, entity_id, change, "attribute.delete")

    def merge(self, caller: Caller, entity_id: str, body: Any, ctx: ActiveContext) -> None:
        """Merge-patch an entity (PATCH /entities/{id}); urn:ngsi-ld:null deletes an attribute."""
        self._check_write(caller, entity_id, "entity.merge")
        if not isinstance(body, dict):
            raise BadRequestData("the body must be a JSON object of attributes")
        _check_same_id(body, entity_id)
        raw = _attributes_only(body)
        deletions = {ctx.expand(key) for key, value in raw.items() if is_null(value)}
        kept = {key: value for key, value in raw.items() if not is_null(value)}

        def change(entity: StoredEntity, now: str) -> None:
            for name in deletions:
                entity.attrs.pop(name, None)
            merged_raw: dict[str, Any] = {}
            for key, value in kept.items():
                name = ctx.expand(key)
                old = entity.attrs.get(name)
                if old and isinstance(value, dict):
                    position = find_instance(old, value.get("datasetId"))
                    if position is not None:
                        merged_raw[name] = merge_instance(old[position], value)
                        continue
                merged_raw[name] = value
            incoming = parse_attributes(merged_raw, ctx, now)
            put_instances(
                entity.attrs,
                incoming,
                now,
                overwrite=True,
                only_existing=False,
                result=UpdateResult(),
            )
            members = {key: body[key] for key in ("type", "scope") if key in body}
            if members:
                fragment = parse_entity_fragment(members, ctx, now)
                entity.types = fragment.types or entity.types
                entity.scopes = entity.scopes if fragment.scopes is None else fragment.scopes

        self._modify(caller, entity_id, change, "entity.merge")

    def replace(self, caller: Caller, entity_id: str, body: Any, ctx: ActiveContext) -> None:
        """Replace an entity whole (PUT /entities/{id}), keeping its creation time."""
        self._check_write(caller, entity_id, "entity.replace")
        if not isinstance(body, dict):
            raise BadRequestData("the body must be a JSON object: the whole new entity")
        _check_same_id(body, entity_id)
        replacement = parse_entity({**body, "id": entity_id}, ctx, self._now())

        def plan(current: dict[str, StoredEntity]) -> Changes:
            old = current.get(entity_id)
            if old is None:
                raise ResourceNotFound(f"no entity with id {entity_id}", instance=entity_id)
            replacement.created_at = old.created_at
            return Changes(upserts=[replacement])

        self._apply_one(caller, "entity.replace", entity_id, plan)

    # -- queries --------------------------------------------------------------------------------

    def query(self, caller: Caller, query: EntityQuery) -> QueryPage:
        """Run a query over what the caller may see in its tenant, within the paging limits."""
        require(caller, Permission.READ_ENTITIES)
        query.tenant = caller.tenant
        if query.limit > self.max_limit:
            raise TooManyResults(
                f"limit {query.limit} is above this broker's maximum of {self.max_limit}; "
                "page through the results with offset",
            )
        if query.limit < 0 or query.offset < 0:
            raise BadRequestData("limit and offset must not be negative")
        if query.limit == 0 and not query.count:
            raise BadRequestData("limit=0 only makes sense with count=true")
        query.visibility = self.access.visibility(caller)
        page = self.store.query(query)
        self.access.record_reads(caller, "entity.query", page.entities)
        return page

    def type_summaries(self, caller: Caller) -> list[TypeSummary]:
        """Return the entity types the caller can see, with counts and attributes."""
        require(caller, Permission.READ_ENTITIES)
        return self.store.type_summaries(caller.tenant, self.access.visibility(caller))

    def attribute_summaries(self, caller: Caller) -> list[AttributeSummary]:
        """Return the attribute names of the entities the caller can see, with their types."""
        require(caller, Permission.READ_ENTITIES)
        return self.store.attribute_summaries(caller.tenant, self.access.visibility(caller))

    def entities_of_type(self, caller: Caller, type_iri: str) -> list[StoredEntity]:
        """Return every entity of one type the caller can see (for type details)."""
        require(caller, Permission.READ_ENTITIES)
        entities = self.store.entities_of_type(
            caller.tenant, type_iri, self.access.visibility(caller)
        )
        self.access.record_reads(caller, "type.read", entities)
        return entities

    # -- batches --------------------------------------------------------------------------------

    def _parse_batch(
        self, body: Any, ctx: ContextOf, now: str, result: BatchResult
    ) -> list[StoredEntity]:
        if not isinstance(body, list):
            raise BadRequestData("a batch operation takes a JSON array of entities")
        entities: list[StoredEntity] = []
        for raw in body:
            try:
                entities.append(parse_entity(raw, ctx(raw), now))
            except SmartCityError as error:
                result.errors.append(BatchError(_entity_id(raw), error))
        return entities

    def batch_create(self, caller: Caller, body: Any, ctx: ContextOf) -> BatchResult:
        """Create many entities; each one that exists already is an error of its own."""
        require(caller, Permission.WRITE_ENTITIES)
        result = BatchResult()
        entities = self._writable(caller, self._parse_batch(body, ctx, self._now(), result), result)

        def plan(current: dict[str, StoredEntity]) -> Changes:
            taken = set(current)
            writes: list[StoredEntity] = []
            for entity in entities:
                if entity.id in taken:
                    result.errors.append(
                        BatchError(entity.id, AlreadyExists(f"entity {entity.id} already exists"))
                    )
                    continue
                taken.add(entity.id)
                writes.append(entity)
                result.success.append(entity.id)
            return Changes(upserts=writes)

        ids = [entity.id for entity in entities]
        self._apply_batch(caller, "entity.create", ids, plan, result)
        return result

    def batch_upsert(
        self, caller: Caller, body: Any, ctx: ContextOf, *, mode: str = "replace"
    ) -> tuple[BatchResult, list[str]]:
        """Create or change many entities; return the result and the ids that were created."""
        require(caller, Permission.WRITE_ENTITIES)
        if mode not in ("replace", "update"):
            raise BadRequestData(f"options must be 'replace' or 'update', not {mode!r}")
        now = self._now()
        result = BatchResult()
        entities = self._writable(caller, self._parse_batch(body, ctx, now, result), result)
        created: list[str] = []

        def plan(current: dict[str, StoredEntity]) -> Changes:
            working = dict(current)
            for entity in entities:
                old = working.get(entity.id)
                if old is None:
                    working[entity.id] = entity
                    created.append(entity.id)
                elif mode == "replace":
                    entity.created_at = old.created_at
                    working[entity.id] = entity
                else:
                    _update_entity(old, entity, now, overwrite=True)
                result.success.append(entity.id)
            touched = {entity.id for entity in entities}
            return Changes(upserts=[working[i] for i in dict.fromkeys(touched)])

        ids = [entity.id for entity in entities]
        self._apply_batch(caller, "entity.upsert", ids, plan, result)
        result.success = list(dict.fromkeys(result.success))
        return result, created

    def batch_update(
        self, caller: Caller, body: Any, ctx: ContextOf, *, overwrite: bool = True
    ) -> BatchResult:
        """Append or update attributes of many existing entities."""
        require(caller, Permission.WRITE_ENTITIES)
        now = self._now()
        result = BatchResult()
        entities = self._writable(caller, self._parse_batch(body, ctx, now, result), result)

        def plan(current: dict[str, StoredEntity]) -> Changes:
            writes: dict[str, StoredEntity] = {}
            for entity in entities:
                old = writes.get(entity.id) or current.get(entity.id)
                if old is None:
                    result.errors.append(
                        BatchError(entity.id, ResourceNotFound(f"no entity with id {entity.id}"))
                    )
                    continue
                _update_entity(old, entity, now, overwrite=overwrite)
                writes[entity.id] = old
                result.success.append(entity.id)
            return Changes(upserts=list(writes.values()))

        ids = [entity.id for entity in entities]
        self._apply_batch(caller, "entity.update", ids, plan, result)
        result.success = list(dict.fromkeys(result.success))
        return result

    def batch_delete(self, caller: Caller, body: Any) -> BatchResult:
        """Delete many entities by id; an unknown id is an error of its own."""
        require(caller, Permission.WRITE_ENTITIES)
        if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
            raise BadRequestData("batch delete takes a JSON array of entity ids (strings)")
        result = BatchResult()
        ids: list[str] = []
        for entity_id in dict.fromkeys(body):
            if may_write(caller, entity_id):
                ids.append(entity_id)
            else:
                result.errors.append(BatchError(entity_id, _forbidden(caller, entity_id)))
        now = self._now()

        def plan(current: dict[str, StoredEntity]) -> Changes:
            deletes = []
            for entity_id in ids:
                if entity_id in current:
                    deletes.append(entity_id)
                    result.success.append(entity_id)
                else:
                    result.errors.append(
                        BatchError(entity_id, ResourceNotFound(f"no entity with id {entity_id}"))
                    )
            return Changes(deletes=deletes, at=now)

        self._apply_batch(caller, "entity.delete", ids, plan, result)
        return result


def _forbidden(caller: Caller, entity_id: str) -> Forbidden:
    return Forbidden(f"{caller.subject} may not write entity {entity_id}", instance=entity_id)


def _update_entity(old: StoredEntity, new: StoredEntity, now: str, *, overwrite: bool) -> None:
    """Put the attributes of `new` into `old` in place (batch update and upsert-update)."""
    put_instances(
        old.attrs, new.attrs, now, overwrite=overwrite, only_existing=False, result=UpdateResult()
    )
    for type_iri in new.types:
        if type_iri not in old.types:
            old.types.append(type_iri)
    if new.scopes:
        old.scopes = new.scopes
    old.modified_at = now


def _attributes_only(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object of attributes")
    return {key: value for key, value in body.items() if key not in ENTITY_MEMBERS}


def _display_names(body: Any, ctx: ActiveContext) -> dict[str, str]:
    return {ctx.expand(key): key for key in _attributes_only(body)}


def _check_same_id(body: dict[str, Any], entity_id: str) -> None:
    if "id" in body and body["id"] != entity_id:
        raise BadRequestData(
            f"the body's id {body['id']!r} differs from the id in the URL {entity_id!r}"
        )
