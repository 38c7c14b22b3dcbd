"""What the SQL backends share: the write path, the query planner and result paging.

A query becomes one SQL statement over `entities` whose WHERE clause uses the attribute index
(`entity_index`) and the geo index; when a filter can only be answered approximately by SQL
(a geo relation, a `!=`, a path into a compound value), SQL selects a superset and each candidate
is checked exactly in Python before paging.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson

from smartcity.core.entity import StoredEntity, geo_values
from smartcity.core.geo import geometry_bbox
from smartcity.core.patterns import compile_pattern, search
from smartcity.core.qeval import evaluate, evaluate_scope
from smartcity.storage.base import (
    EVERYTHING,
    AfterWrite,
    AttributeSummary,
    ChangeHead,
    ChangeHook,
    ChangeKind,
    ChangeRecord,
    Changes,
    EntityQuery,
    LoggedChanges,
    Plan,
    QueryPage,
    TypeSummary,
    Visibility,
)
from smartcity.storage.indexing import index_names, index_rows
from smartcity.storage.sqlfilter import (
    Dialect,
    IndexTest,
    compile_q,
    compile_scope,
    compile_types,
)

Cursor = Any
BBox = tuple[float, float, float, float]
IndexEntry = tuple[int, str, float | None, str | None]  # (pk, name, num, txt)
ENTITY_COLUMNS = "e.pk, e.id, e.types, e.scopes, e.created_at, e.modified_at, e.doc"
CHUNK = 500
PROBE_LIMIT = 1000


@dataclass(slots=True)
class _Candidate:
    """A query selecting candidate entity pks: an index test, or the geo index."""

    sql: str
    params: list[Any]
    test: IndexTest | None

    @classmethod
    def index(cls, test: IndexTest) -> _Candidate:
        return cls(f"SELECT pk FROM entity_index WHERE {test.where}", list(test.params), test)


@dataclass(slots=True)
class _Where:
    """The conditions of one query before planning."""

    conditions: list[str]
    params: list[Any]
    candidates: list[_Candidate]
    exact: bool

    def add(self, condition: str, params: Sequence[Any]) -> None:
        self.conditions.append(condition)
        self.params.extend(params)


def entity_from_row(row: Sequence[Any]) -> StoredEntity:
    """Build a StoredEntity from a row of ENTITY_COLUMNS."""
    _, entity_id, types, scopes, created_at, modified_at, doc = row
    return StoredEntity(
        id=entity_id,
        types=orjson.loads(types),
        scopes=orjson.loads(scopes),
        created_at=created_at,
        modified_at=modified_at,
        attrs=orjson.loads(doc),
    )


CHANGE_COLUMNS = (
    "seq, tenant, kind, at, entity_id, types, scopes, created_at, modified_at, doc, changed, "
    "previous, types_changed"
)


def _change_row(
    tenant: str,
    kind: ChangeKind,
    entity: StoredEntity,
    doc: str,
    changed: list[str],
    previous: dict[str, Any],
    types_changed: bool,
    at: str = "",
) -> tuple[Any, ...]:
    return (
        tenant,
        kind.value,
        at or entity.modified_at,
        entity.id,
        orjson.dumps(entity.types).decode(),
        orjson.dumps(entity.scopes).decode(),
        entity.created_at,
        entity.modified_at,
        doc,
        orjson.dumps(changed).decode(),
        orjson.dumps(previous).decode(),
        types_changed,
    )


def change_from_row(row: Sequence[Any]) -> ChangeRecord:
    """Build a ChangeRecord from a row of CHANGE_COLUMNS."""
    seq, tenant, kind, at, *entity_row, changed, previous, types_changed = row
    return ChangeRecord(
        seq=int(seq),
        tenant=tenant,
        kind=ChangeKind(kind),
        at=at,
        entity=entity_from_row((None, *entity_row)),
        changed=orjson.loads(changed),
        previous=orjson.loads(previous),
        types_changed=bool(types_changed),
    )


def geo_rows(entity: StoredEntity) -> list[tuple[str, BBox]]:
    """Return (geoproperty, bounding box) for every GeoProperty instance of an entity."""
    rows: list[tuple[str, BBox]] = []
    for name, instances in entity.attrs.items():
        for instance in instances:
            value = instance.get("value")
            if instance.get("type") == "GeoProperty" and isinstance(value, dict):
                try:
                    rows.append((name, geometry_bbox(value)))
                except (ValueError, TypeError, KeyError, IndexError):
                    continue
    return rows


def changed_names(old: StoredEntity, new: StoredEntity) -> list[str]:
    """Return the attributes whose instances differ between two versions of an entity."""
    names = dict.fromkeys([*old.attrs, *new.attrs])
    return [name for name in names if not _same(old.attrs.get(name), new.attrs.get(name))]


def _same(old: Any, new: Any) -> bool:
    """Tell whether two JSON values are the same; Python's == takes 0 for False and 1 for True."""
    if old != new:
        return False
    return bool(orjson.dumps(old, option=_SORTED) == orjson.dumps(new, option=_SORTED))


_SORTED = orjson.OPT_SORT_KEYS


def _has_geo(entity: StoredEntity, name: str) -> bool:
    return any(i.get("type") == "GeoProperty" for i in entity.attrs.get(name, ()))


@dataclass(slots=True)
class _Original:
    """An entity as loaded before a write: its row (pk first, doc last) and parsed form."""

    row: tuple[Any, ...]
    entity: StoredEntity
    changed: list[str] | None = None
    """The attributes the write changes (set once the plan has decided the write)."""

    @property
    def pk(self) -> int:
        return int(self.row[0])

    def changes_to(self, new: StoredEntity) -> list[str]:
        """Return (once computed, remembered) the attributes that differ in `new`."""
        if self.changed is None:
            self.changed = changed_names(self.entity, new)
        return self.changed


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlEntityStore(ABC):
    """EntityStore over a SQL database; subclasses give connections, DDL and the geo index."""

    dialect: Dialect
    _by_pk: str = ""
    """How a statement on `entity_index` by pk names the pk index, if the planner needs it."""
    _commit_listeners: list[Callable[[], None]]
    _change_hooks: dict[str, ChangeHook]

    # -- what a backend provides ------------------------------------------------------------

    @abstractmethod
    def reading(self) -> AbstractContextManager[Cursor]:
        """Open a cursor for reads."""

    @abstractmethod
    def writing(self) -> AbstractContextManager[Cursor]:
        """Open a cursor inside a write transaction (committed on normal exit)."""

    @abstractmethod
    def _lock_rows_sql(self) -> str:
        """Return the suffix that locks selected rows for the transaction ('' if none)."""

    @abstractmethod
    def _insert_geo(self, cursor: Cursor, rows: list[tuple[int, str, BBox]]) -> None:
        """Add geo-index rows (pk, geoproperty, bbox)."""

    @abstractmethod
    def _delete_geo(self, cursor: Cursor, pks: Sequence[int]) -> None:
        """Remove the geo-index rows of these entities."""

    @abstractmethod
    def _geo_candidates(self, geoproperty: str, bbox: BBox) -> tuple[str, list[Any]]:
        """Return a query selecting the pk of entities whose `geoproperty` box meets `bbox`."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- writes ---------------------------------------------------------------------------------

    @property
    def _p(self) -> str:
        return self.dialect.placeholder

    def _marks(self, count: int) -> str:
        return ", ".join([self._p] * count)

    def apply(
        self, tenant: str, ids: Collection[str], plan: Plan, after: AfterWrite | None = None
    ) -> Changes:
        """Load the named entities, ask `plan` for the writes, make them in one transaction.

        `after` (the audit log) writes its own rows in the same transaction.
        """
        with self.writing() as cursor:
            rows = self._load_rows(cursor, tenant, list(ids), lock=True)
            current = {row[1]: entity_from_row(row) for row in rows}
            # Plans change the loaded entities in place: keep them as they were, apart.
            originals = {row[1]: _Original(row, entity_from_row(row)) for row in rows}
            changes = plan(current)
            if changes:
                docs = self._write(cursor, tenant, changes, originals)
                self._log_changes(cursor, tenant, changes, originals, docs)
            if after is not None:
                after(cursor, changes)
        if changes:
            for listener in self._commit_listeners:
                listener()
        return changes

    def _load_rows(
        self, cursor: Cursor, tenant: str, ids: Sequence[str], *, lock: bool = False
    ) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        suffix = self._lock_rows_sql() if lock else ""
        for chunk in chunks(list(dict.fromkeys(ids))):
            cursor.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities e "
                f"WHERE e.tenant = {self._p} AND e.id IN ({self._marks(len(chunk))}){suffix}",
                [tenant, *chunk],
            )
            found.extend(cursor.fetchall())
        return found

    def _pks(self, cursor: Cursor, tenant: str, ids: Sequence[str]) -> dict[str, int]:
        pks: dict[str, int] = {}
        for chunk in chunks(ids):
            cursor.execute(
                f"SELECT id, pk FROM entities WHERE tenant = {self._p} "
                f"AND id IN ({self._marks(len(chunk))})",
                [tenant, *chunk],
            )
            pks.update({row[0]: row[1] for row in cursor.fetchall()})
        return pks

    def _upsert_entities(
        self, cursor: Cursor, tenant: str, entities: list[StoredEntity]
    ) -> dict[str, str]:
        """Insert entity rows, replacing those whose (tenant, id) exists; return the docs."""
        p = self._p
        docs = {entity.id: orjson.dumps(entity.attrs).decode() for entity in entities}
        cursor.executemany(
            "INSERT INTO entities (tenant, id, types, scopes, created_at, modified_at, doc) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (tenant, id) DO UPDATE SET "
            "types = excluded.types, scopes = excluded.scopes, created_at = excluded.created_at, "
            "modified_at = excluded.modified_at, doc = excluded.doc",
            [
                (
                    tenant,
                    entity.id,
                    orjson.dumps(entity.types).decode(),
                    orjson.dumps(entity.scopes).decode(),
                    entity.created_at,
                    entity.modified_at,
                    docs[entity.id],
                )
                for entity in entities
            ],
        )
        return docs

    def _delete_index(self, cursor: Cursor, pks: Sequence[int]) -> None:
        for chunk in chunks(pks):
            cursor.execute(
                f"DELETE FROM entity_index WHERE pk IN ({self._marks(len(chunk))})", list(chunk)
            )
        self._delete_geo(cursor, pks)

    def _write(
        self, cursor: Cursor, tenant: str, changes: Changes, originals: dict[str, _Original]
    ) -> dict[str, str]:
        """Make the writes; return the stored doc of every upserted entity, by id."""
        if changes.deletes:
            pks = list(self._pks(cursor, tenant, changes.deletes).values())
            self._delete_index(cursor, pks)
            for chunk in chunks(pks):
                cursor.execute(
                    f"DELETE FROM entities WHERE pk IN ({self._marks(len(chunk))})", list(chunk)
                )
        if not changes.upserts:
            return {}
        docs = self._upsert_entities(cursor, tenant, changes.upserts)
        created = [e.id for e in changes.upserts if e.id not in originals]
        pks_by_id = self._pks(cursor, tenant, created) if created else {}
        added: list[IndexEntry] = []
        cleared: list[tuple[int, str, str]] = []
        geo: list[tuple[int, str, BBox]] = []
        geo_redone: list[int] = []
        for entity in changes.upserts:
            original = originals.get(entity.id)
            if original is None:
                pk = pks_by_id[entity.id]
                added.extend((pk, *row) for row in index_rows(entity))
                geo.extend((pk, name, bbox) for name, bbox in geo_rows(entity))
                continue
            # Only the attributes that changed are re-indexed: most updates touch a few.
            pk, old = original.pk, original.entity
            names = original.changes_to(entity)
            header = old.types != entity.types or old.scopes != entity.scopes
            cleared.extend((pk, *pair) for pair in index_names(names, header=header))
            added.extend((pk, *row) for row in index_rows(entity, names, header=header))
            if any(_has_geo(old, name) or _has_geo(entity, name) for name in names):
                boxes = geo_rows(entity)
                if boxes != geo_rows(old):  # a new timestamp alone leaves the boxes as they are
                    geo_redone.append(pk)
                    geo.extend((pk, name, bbox) for name, bbox in boxes)
        if cleared:
            cursor.executemany(
                f"DELETE FROM entity_index{self._by_pk} WHERE pk = {self._p} "
                f"AND name IN ({self._p}, {self._p})",
                cleared,
            )
        if geo_redone:
            self._delete_geo(cursor, geo_redone)
        self._insert_index(cursor, added)
        if geo:
            self._insert_geo(cursor, geo)
        return docs

    # -- the change log -------------------------------------------------------------------------

    @abstractmethod
    def _lock_change_log(self, cursor: Cursor) -> None:
        """Hold the log until commit, so sequence numbers are in commit order."""

    def _log_changes(
        self,
        cursor: Cursor,
        tenant: str,
        changes: Changes,
        originals: dict[str, _Original],
        docs: dict[str, str],
    ) -> None:
        """Append one change record per written entity, in the writing transaction."""
        records: list[tuple[Any, ...]] = []
        changed_records: list[ChangeRecord] = []
        for entity in changes.upserts:
            original = originals.get(entity.id)
            doc = docs[entity.id]
            if original is None:
                kind, changed, previous = ChangeKind.CREATE, list(entity.attrs), {}
                types_changed = True
            else:
                old = original.entity
                changed = original.changes_to(entity)
                previous = {n: old.attrs[n] for n in changed if n in old.attrs}
                kind = ChangeKind.UPDATE
                types_changed = old.types != entity.types or old.scopes != entity.scopes
                if not changed and not types_changed:
                    continue  # nothing changed (an update of attributes it does not have)
            records.append(_change_row(tenant, kind, entity, doc, changed, previous, types_changed))
            changed_records.append(
                ChangeRecord(
                    0, tenant, kind, entity.modified_at, entity, changed, previous, types_changed
                )
            )
        for entity_id in changes.deletes:
            gone = originals.get(entity_id)
            if gone is None:
                continue
            old, old_doc = gone.entity, gone.row[6]
            at = changes.at or old.modified_at
            records.append(
                _change_row(tenant, ChangeKind.DELETE, old, old_doc, list(old.attrs), {}, True, at)
            )
            changed_records.append(
                ChangeRecord(0, tenant, ChangeKind.DELETE, at, old, list(old.attrs), {}, True)
            )
        if not records:
            return
        self._lock_change_log(cursor)
        hooks = list(self._change_hooks.values())
        before = self._max_change_seq(cursor) if hooks else 0
        cursor.executemany(
            "INSERT INTO entity_changes (tenant, kind, at, entity_id, types, scopes, created_at, "
            "modified_at, doc, changed, previous, types_changed) "
            f"VALUES ({self._marks(12)})",
            records,
        )
        if hooks:
            logged = LoggedChanges(before, self._max_change_seq(cursor), changed_records)
            for hook in hooks:
                hook(cursor, logged)

    def _max_change_seq(self, cursor: Cursor) -> int:
        cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM entity_changes")
        return int(cursor.fetchone()[0])

    def set_change_hook(self, name: str, hook: ChangeHook) -> None:
        """Call `hook` in every write transaction that logs changes, after the log rows.

        One hook per name (a second one replaces the first). The temporal history writes its
        rows this way, in the transaction of the change itself.
        """
        self._change_hooks[name] = hook

    def changes_since(self, after_seq: int, limit: int = 500) -> list[ChangeRecord]:
        """Return the logged changes with a sequence number above `after_seq`, oldest first."""
        p = self._p
        with self.reading() as cursor:
            cursor.execute(
                f"SELECT {CHANGE_COLUMNS} FROM entity_changes WHERE seq > {p} "
                f"ORDER BY seq LIMIT {p}",
                [after_seq, limit],
            )
            return [change_from_row(row) for row in cursor.fetchall()]

    def change_heads_since(self, after_seq: int, limit: int = 500) -> list[ChangeHead]:
        """Return what identifies the logged changes after `after_seq` (cheap: no documents)."""
        p = self._p
        with self.reading() as cursor:
            cursor.execute(
                f"SELECT seq, tenant, entity_id, types FROM entity_changes WHERE seq > {p} "
                f"ORDER BY seq LIMIT {p}",
                [after_seq, limit],
            )
            return [
                ChangeHead(int(seq), tenant, entity_id, orjson.loads(types))
                for seq, tenant, entity_id, types in cursor.fetchall()
            ]

    def changes_at(self, seqs: Sequence[int]) -> list[ChangeRecord]:
        """Return the logged changes with these sequence numbers, oldest first."""
        found: list[ChangeRecord] = []
        with self.reading() as cursor:
            for chunk in chunks(sorted(set(seqs))):
                cursor.execute(
                    f"SELECT {CHANGE_COLUMNS} FROM entity_changes "
                    f"WHERE seq IN ({self._marks(len(chunk))}) ORDER BY seq",
                    list(chunk),
                )
                found.extend(change_from_row(row) for row in cursor.fetchall())
        return found

    def last_change_seq(self) -> int:
        """Return the sequence number of the newest logged change (0 when none)."""
        with self.reading() as cursor:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM entity_changes")
            return int(cursor.fetchone()[0])

    def prune_changes(self, up_to_seq: int, *, older_than: str | None = None) -> int:
        """Delete the logged changes up to `up_to_seq` (and made before `older_than`)."""
        p = self._p
        with self.writing() as cursor:
            if older_than is None:
                cursor.execute(f"DELETE FROM entity_changes WHERE seq <= {p}", [up_to_seq])
            else:
                cursor.execute(
                    f"DELETE FROM entity_changes WHERE seq <= {p} AND at < {p}",
                    [up_to_seq, older_than],
                )
            return int(cursor.rowcount or 0)

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the writing thread) after every commit that logged changes."""
        self._commit_listeners.append(listener)

    def _insert_index(self, cursor: Cursor, rows: list[IndexEntry]) -> None:
        """Add attribute-index rows (pk, name, num, txt); a backend may load them faster."""
        p = self._p
        cursor.executemany(
            f"INSERT INTO entity_index (pk, name, num, txt) VALUES ({p}, {p}, {p}, {p})", rows
        )

    # -- reads ----------------------------------------------------------------------------------

    def get(self, tenant: str, entity_id: str) -> StoredEntity | None:
        """Return one entity or None."""
        with self.reading() as cursor:
            cursor.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities e "
                f"WHERE e.tenant = {self._p} AND e.id = {self._p}",
                [tenant, entity_id],
            )
            row = cursor.fetchone()
        return entity_from_row(row) if row is not None else None

    def visible_condition(self, visibility: Visibility) -> tuple[str, list[Any]]:
        """Return a condition on `entities e` keeping the visible entities ('' for all)."""
        if visibility.everything:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        if visibility.types:
            types = sorted(visibility.types)
            parts.append(
                "e.pk IN (SELECT pk FROM entity_index WHERE name = '@type' "
                f"AND txt IN ({self._marks(len(types))}))"
            )
            params.extend(types)
        if visibility.ids:
            ids = sorted(visibility.ids)
            parts.append(f"e.id IN ({self._marks(len(ids))})")
            params.extend(ids)
        return (f"({' OR '.join(parts)})" if parts else "1=0"), params

    def _where(self, query: EntityQuery) -> _Where:
        """Collect the conditions of a query: fixed ones, and index candidates to plan over."""
        p = self._p
        where = _Where(conditions=[], params=[], candidates=[], exact=True)
        visible, visible_params = self.visible_condition(query.visibility)
        if visible:
            where.add(visible, visible_params)
        if query.ids is not None:
            where.add(f"e.id IN ({self._marks(len(query.ids))})" if query.ids else "1=0", query.ids)
        if query.id_pattern is not None:
            if self.dialect.regex_exact:
                where.add(self.dialect.regex("e.id", p), [query.id_pattern])
            else:
                # The database reads some Python regexes differently (PostgreSQL's \b is a
                # backspace) or rejects them, so its answer is no superset: Python checks ids.
                where.exact = False
        for compiled in (
            compile_types(query.types, self.dialect) if query.types is not None else None,
            compile_q(query.q, self.dialect) if query.q is not None else None,
            compile_scope(query.scope_q, self.dialect) if query.scope_q is not None else None,
        ):
            if compiled is None:
                continue
            where.exact = where.exact and compiled.exact
            if compiled.tests is None:
                where.add(f"({compiled.sql})", compiled.params)
            else:
                where.candidates.extend(_Candidate.index(test) for test in compiled.tests)
        if query.attrs:
            attrs = list(query.attrs)
            test = IndexTest(f"name IN ({self._marks(len(attrs))})", tuple(attrs))
            where.candidates.append(_Candidate.index(test))
        if query.geo is not None:
            geoproperty = query.geoproperty or ""
            bbox = query.geo.bbox
            if bbox is None:
                test = IndexTest(f"name = {p}", (geoproperty,))
                where.candidates.append(_Candidate.index(test))
            else:
                sql, params = self._geo_candidates(geoproperty, bbox)
                where.candidates.append(_Candidate(sql, list(params), None))
            where.exact = False
        return where

    def _plan(self, cursor: Cursor, query: EntityQuery) -> tuple[str, list[Any], bool]:
        """Return the WHERE clause, its parameters, and whether SQL alone is exact.

        When one candidate test is selective (it matches fewer than PROBE_LIMIT index rows),
        it drives the query and the others are checked per entity through the (pk) index.
        Otherwise the entities are scanned in id order against the whole candidate sets.
        """
        p = self._p
        where = self._where(query)
        driver = self._selective(cursor, where.candidates)
        if driver is None:
            conditions = [f"e.tenant = {p}"] + [f"e.pk IN ({c.sql})" for c in where.candidates]
            params = [query.tenant] + [x for c in where.candidates for x in c.params]
        else:
            # The other index tests filter the driver's pks before any entity row is read.
            checks: list[str] = []
            params = list(driver.params)
            for candidate in where.candidates:
                if candidate is driver:
                    continue
                if candidate.test is None:
                    checks.append(f"c.pk IN ({candidate.sql})")
                else:
                    checks.append(self.dialect.row_test("c.pk", candidate.test.where))
                params.extend(candidate.params)
            filtered = f"SELECT c.pk FROM ({driver.sql}) c"
            if checks:
                filtered += " WHERE " + " AND ".join(checks)
            conditions = [f"e.pk IN ({filtered})", f"{self.dialect.unindexed}e.tenant = {p}"]
            params.append(query.tenant)
        return " AND ".join(conditions + where.conditions), params + where.params, where.exact

    def _selective(self, cursor: Cursor, candidates: list[_Candidate]) -> _Candidate | None:
        """Return the candidate that matches the fewest index rows, if it is selective."""
        best: tuple[int, _Candidate] | None = None
        # Geo boxes first: they are cheap to count and usually the most selective; then the
        # tests with the most parameters (a range with both bounds before each bound alone, a
        # type test last). Each probe counts no further than the best so far: beyond that it
        # cannot win, so a selective first probe makes the others cheap.
        for candidate in sorted(candidates, key=lambda c: (c.test is not None, -len(c.params))):
            limit = PROBE_LIMIT if best is None else best[0]
            cursor.execute(
                f"SELECT COUNT(*) FROM ({candidate.sql} LIMIT {limit}) probe", candidate.params
            )
            size = int(cursor.fetchone()[0])
            if size < limit:
                best = (size, candidate)
        return best[1] if best is not None else None

    def _matches(self, query: EntityQuery, entity: StoredEntity) -> bool:
        if query.id_pattern is not None and not search(
            compile_pattern(query.id_pattern), entity.id
        ):
            return False
        if query.q is not None and not evaluate(query.q, entity):
            return False
        if query.scope_q is not None and not evaluate_scope(query.scope_q, entity.scopes):
            return False
        if query.geo is not None:
            geometries = geo_values(entity, query.geoproperty or "")
            if not any(query.geo.matches(geometry) for geometry in geometries):
                return False
        return True

    def query(self, query: EntityQuery) -> QueryPage:
        """Return the entities that match, ordered by id, paginated."""
        p = self._p
        with self.reading() as cursor:
            where, params, exact = self._plan(cursor, query)
            if exact:
                total: int | None = None
                if query.count:
                    cursor.execute(f"SELECT COUNT(*) FROM entities e WHERE {where}", params)
                    total = int(cursor.fetchone()[0])
                if query.limit == 0:
                    return QueryPage([], total)
                cursor.execute(
                    f"SELECT {ENTITY_COLUMNS} FROM entities e WHERE {where} "
                    f"ORDER BY e.id LIMIT {p} OFFSET {p}",
                    [*params, query.limit, query.offset],
                )
                return QueryPage([entity_from_row(row) for row in cursor.fetchall()], total)
            cursor.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities e WHERE {where} ORDER BY e.id", params
            )
            page: list[StoredEntity] = []
            seen = 0
            end = query.offset + query.limit
            while True:
                rows = cursor.fetchmany(256)
                if not rows:
                    break
                for row in rows:
                    entity = entity_from_row(row)
                    if not self._matches(query, entity):
                        continue
                    if query.offset <= seen < end:
                        page.append(entity)
                    seen += 1
                if seen >= end and not query.count:
                    break
            return QueryPage(page, seen if query.count else None)

    def _tenant_visible(self, tenant: str, visibility: Visibility) -> tuple[str, list[Any]]:
        """Return the condition on `e` of a tenant's visible entities, and its parameters."""
        visible, params = self.visible_condition(visibility)
        condition = f"e.tenant = {self._p}" + (f" AND {visible}" if visible else "")
        return condition, [tenant, *params]

    def type_summaries(self, tenant: str, visibility: Visibility = EVERYTHING) -> list[TypeSummary]:
        """Return every entity type with its count and attribute names (of visible entities)."""
        condition, params = self._tenant_visible(tenant, visibility)
        with self.reading() as cursor:
            cursor.execute(
                "SELECT t.txt, COUNT(*) FROM entity_index t JOIN entities e ON e.pk = t.pk "
                f"WHERE {condition} AND t.name = '@type' GROUP BY t.txt ORDER BY t.txt",
                params,
            )
            counts = {row[0]: int(row[1]) for row in cursor.fetchall()}
            cursor.execute(
                "SELECT DISTINCT t.txt, a.name FROM entity_index t "
                "JOIN entities e ON e.pk = t.pk JOIN entity_index a ON a.pk = t.pk "
                f"WHERE {condition} AND t.name = '@type' AND substr(a.name, 1, 1) <> '@'",
                params,
            )
            attributes: dict[str, set[str]] = {}
            for type_iri, name in cursor.fetchall():
                attributes.setdefault(type_iri, set()).add(name)
        return [
            TypeSummary(type_iri, count, sorted(attributes.get(type_iri, ())))
            for type_iri, count in counts.items()
        ]

    def attribute_summaries(
        self, tenant: str, visibility: Visibility = EVERYTHING
    ) -> list[AttributeSummary]:
        """Return every attribute name with the types that use it (of visible entities)."""
        condition, params = self._tenant_visible(tenant, visibility)
        with self.reading() as cursor:
            cursor.execute(
                "SELECT a.name, t.txt, COUNT(DISTINCT a.pk) FROM entity_index a "
                "JOIN entities e ON e.pk = a.pk JOIN entity_index t ON t.pk = a.pk "
                f"WHERE {condition} AND t.name = '@type' "
                "AND substr(a.name, 1, 1) <> '@' GROUP BY a.name, t.txt",
                params,
            )
            types: dict[str, set[str]] = {}
            for name, type_iri, _ in cursor.fetchall():
                types.setdefault(name, set()).add(type_iri)
            cursor.execute(
                "SELECT a.name, COUNT(DISTINCT a.pk) FROM entity_index a "
                f"JOIN entities e ON e.pk = a.pk WHERE {condition} "
                "AND substr(a.name, 1, 1) <> '@' GROUP BY a.name ORDER BY a.name",
                params,
            )
            return [
                AttributeSummary(name, int(count), sorted(types.get(name, ())))
                for name, count in cursor.fetchall()
            ]

    def entities_of_type(
        self, tenant: str, type_iri: str, visibility: Visibility = EVERYTHING
    ) -> list[StoredEntity]:
        """Return every visible entity of one type (for type details; not for hot paths)."""
        p = self._p
        condition, params = self._tenant_visible(tenant, visibility)
        with self.reading() as cursor:
            cursor.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities e WHERE {condition} AND e.pk IN "
                f"(SELECT pk FROM entity_index WHERE name = '@type' AND txt = {p}) ORDER BY e.id",
                [*params, type_iri],
            )
            return [entity_from_row(row) for row in cursor.fetchall()]
