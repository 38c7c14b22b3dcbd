"""The temporal history of entities: every accepted attribute instance, kept in SQL.

The history is written in the transaction of the change itself: the entity store calls
`_write_logged` (its change hook) after it logged the change, so the history can neither miss a
change that committed nor hold one that did not, and a read sees every write before it. The
change log is the safety net: the history keeps its position in the log, moved by each inline
write, and `catch_up` writes whatever a store without the hook logged (a process of an older
version, a tool that opened the store alone), in log order, with the position row locked so that
several processes on one database neither lose nor repeat a change. The temporal API may also
add, correct and delete instances directly.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from smartcity.storage.base import ChangeKind, ChangeRecord, LoggedChanges
from smartcity.storage.history_query import (
    AGGREGATES,
    Aggregate,
    EntitySelection,
    HistoryEntity,
    InstanceRecord,
    InstanceWindow,
    SqlHistoryReader,
)
from smartcity.storage.history_rows import (
    EntityHeader,
    HistoryRow,
    header_of,
    micros,
    rows_of_change,
)
from smartcity.storage.history_schema import (
    INSTANCE_COLUMNS,
    POSITION,
    POSTGRES_DDL_LOCK,
    statements,
)
from smartcity.storage.sqlbase import Cursor, SqlEntityStore, chunks

__all__ = [
    "Aggregate",
    "EntitySelection",
    "HistoryEntity",
    "HistoryStore",
    "InstanceRecord",
    "InstanceWindow",
    "SqlHistoryStore",
]


@dataclass(slots=True)
class _Pending:
    """What one batch writes for one entity."""

    tenant: str
    header: EntityHeader
    deleted_at: int | None
    rows: list[HistoryRow] = field(default_factory=list)
    rewrite_header: bool = True
    """Write the entity row and its types (new, retyped, deleted or re-created entities)."""


class HistoryStore(Protocol):
    """Every accepted attribute instance of every entity, per tenant."""

    def position(self) -> int:
        """Return the sequence number of the last change written to the history."""
        ...

    def catch_up(self, batch: int = 500) -> int:
        """Write the history of every change logged after the position; return how many."""
        ...

    def add(self, tenant: str, header: EntityHeader, rows: Sequence[HistoryRow]) -> bool:
        """Add instances to an entity's history; return True if the history is new."""
        ...

    def add_many(
        self, tenant: str, entries: Sequence[tuple[EntityHeader, Sequence[HistoryRow]]]
    ) -> None:
        """Add instances to the histories of several entities in one transaction (bulk loads)."""
        ...

    def entity(self, tenant: str, entity_id: str) -> HistoryEntity | None:
        """Return the entity with this id if it has a temporal representation."""
        ...

    def entities(self, selection: EntitySelection) -> tuple[list[HistoryEntity], int | None]:
        """Return a page of the entities that match, by id, and their total if asked."""
        ...

    def entities_by_id(self, tenant: str, ids: Sequence[str]) -> list[HistoryEntity]:
        """Return the entities with these ids that have a temporal representation."""
        ...

    def instances(
        self, keys: Sequence[int], window: InstanceWindow
    ) -> dict[int, list[InstanceRecord]]:
        """Return the instances of these entities in the window, by entity key, oldest first."""
        ...

    def aggregate(
        self,
        keys: Sequence[int],
        window: InstanceWindow,
        start: int,
        period: int,
        methods: Collection[str] = AGGREGATES,
    ) -> list[Aggregate]:
        """Return per-period aggregates of these entities' instances, computed in SQL."""
        ...

    def first_time(self, keys: Sequence[int], window: InstanceWindow) -> int | None:
        """Return the earliest time of an instance in the window (None if there is none)."""
        ...

    def delete_entity(self, tenant: str, entity_id: str) -> bool:
        """Delete an entity's whole history; return False if it had none."""
        ...

    def delete_attribute(
        self, tenant: str, entity_id: str, attr: str, dataset_id: str | None, *, every: bool
    ) -> int:
        """Delete an attribute's instances (one dataset, or all); return how many."""
        ...

    def replace_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, row: HistoryRow
    ) -> bool:
        """Replace one instance, keeping its instanceId; return False if there is none."""
        ...

    def delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        """Delete one instance; return False if there is none."""
        ...

    def prune(self, before: int, batch: int = 100) -> int:
        """Delete the instances observed before `before` (microseconds); return how many."""
        ...


class SqlHistoryStore(SqlHistoryReader):
    """HistoryStore in the tables of a SqlEntityStore's database."""

    def __init__(self, store: SqlEntityStore, *, keep_on_delete: bool = True) -> None:
        super().__init__(store)
        self.keep_on_delete = keep_on_delete
        with store.writing() as cursor:
            if store.dialect.name == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [POSTGRES_DDL_LOCK])
            for statement in statements(store.dialect.name):
                cursor.execute(statement)
        store.set_change_hook("history", self._write_logged)
        self.catch_up()  # what was logged while no history was attached to this database

    # -- the change log -------------------------------------------------------------------------

    def position(self) -> int:
        """Return the sequence number of the last change written to the history."""
        with self.store.reading() as cursor:
            cursor.execute(f"SELECT seq FROM history_position WHERE name = {self._p}", [POSITION])
            return int(cursor.fetchone()[0])

    def catch_up(self, batch: int = 500) -> int:
        """Write the history of every change logged after the position; return how many."""
        done = 0
        while True:
            if self.position() >= self.store.last_change_seq():
                return done
            written = self._consume(batch)
            if written == 0:
                return done
            done += written

    def _position_for_update(self, cursor: Cursor) -> int:
        # The lock makes a second process wait here, then read the position this one left.
        lock = " FOR UPDATE" if self.store.dialect.name == "postgresql" else ""
        cursor.execute(f"SELECT seq FROM history_position WHERE name = {self._p}{lock}", [POSITION])
        return int(cursor.fetchone()[0])

    def _move_position(self, cursor: Cursor, seq: int) -> None:
        p = self._p
        cursor.execute(f"UPDATE history_position SET seq = {p} WHERE name = {p}", [seq, POSITION])

    def _consume(self, batch: int) -> int:
        with self.store.writing() as cursor:
            start = self._position_for_update(cursor)
            changes = self.store.changes_since(start, batch)
            if not changes:
                return 0
            self._write_changes(cursor, changes)
            self._move_position(cursor, changes[-1].seq)
            return len(changes)

    def _write_logged(self, cursor: Cursor, logged: LoggedChanges) -> None:
        """The store's change hook: write the history of the changes just logged, inline.

        Only when the history is up to date with the log: otherwise older changes wait for
        `catch_up`, and these must come after them, so they wait too.
        """
        if self._position_for_update(cursor) != logged.before:
            return
        self._write_changes(cursor, logged.records)
        self._move_position(cursor, logged.last)

    def _write_changes(self, cursor: Cursor, changes: Sequence[ChangeRecord]) -> None:
        pending: dict[tuple[str, str], _Pending] = {}
        for change in changes:
            key = (change.tenant, change.entity.id)
            deleted = change.kind is ChangeKind.DELETE
            if deleted and not self.keep_on_delete:
                self._write(cursor, list(pending.values()))
                pending.clear()
                self._purge(cursor, change.tenant, change.entity.id)
                continue
            entry = pending.get(key)
            if entry is None:
                entry = pending[key] = _Pending(change.tenant, header_of(change), None)
                entry.rewrite_header = False
            entry.header = header_of(change)
            entry.rows.extend(rows_of_change(change))
            entry.deleted_at = micros(change.at) if deleted else None
            entry.rewrite_header = entry.rewrite_header or change.types_changed or deleted
        self._write(cursor, list(pending.values()))

    # -- writes ---------------------------------------------------------------------------------

    def add(self, tenant: str, header: EntityHeader, rows: Sequence[HistoryRow]) -> bool:
        """Add instances to an entity's history; return True if the history is new."""
        with self.store.writing() as cursor:
            existed = self._keys(cursor, tenant, [header.id])
            self._write(cursor, [_Pending(tenant, header, None, list(rows))])
        return not existed

    def add_many(
        self, tenant: str, entries: Sequence[tuple[EntityHeader, Sequence[HistoryRow]]]
    ) -> None:
        """Add instances to the histories of several entities in one transaction (bulk loads)."""
        with self.store.writing() as cursor:
            self._write(cursor, [_Pending(tenant, h, None, list(rows)) for h, rows in entries])

    def _write(self, cursor: Cursor, entries: list[_Pending]) -> None:
        if not entries:
            return
        keys: dict[tuple[str, str], int] = {}
        for tenant in {e.tenant for e in entries}:
            ids = [e.header.id for e in entries if e.tenant == tenant]
            keys.update({(tenant, i): k for i, k in self._keys(cursor, tenant, ids).items()})
        # Most changes update the values of an entity the history knows already: its row and
        # types stay as they are.
        headers = [e for e in entries if e.rewrite_header or (e.tenant, e.header.id) not in keys]
        if headers:
            self._write_headers(cursor, headers, keys)
        rows = [(keys[(e.tenant, e.header.id)], row) for e in entries for row in e.rows]
        rows.sort(key=lambda item: item[1].observed_at)  # stable: in time order, as they came
        self._insert_rows(cursor, rows)

    def _write_headers(
        self, cursor: Cursor, entries: list[_Pending], keys: dict[tuple[str, str], int]
    ) -> None:
        """Upsert the entity rows and rewrite the types of these entries; fill in their keys."""
        p = self._p
        cursor.executemany(
            "INSERT INTO history_entities (tenant, entity_id, types, scopes, deleted_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (tenant, entity_id) DO UPDATE SET "
            "types = excluded.types, scopes = excluded.scopes, deleted_at = excluded.deleted_at",
            [
                (
                    e.tenant,
                    e.header.id,
                    orjson.dumps(e.header.types).decode(),
                    orjson.dumps(e.header.scopes).decode(),
                    e.deleted_at,
                )
                for e in entries
            ],
        )
        for tenant in {e.tenant for e in entries}:
            ids = [e.header.id for e in entries if e.tenant == tenant]
            keys.update({(tenant, i): k for i, k in self._keys(cursor, tenant, ids).items()})
        written = list({keys[(e.tenant, e.header.id)] for e in entries})
        for chunk in chunks(written):
            cursor.execute(
                f"DELETE FROM history_types WHERE hk IN ({self._marks(len(chunk))})", list(chunk)
            )
        cursor.executemany(
            f"INSERT INTO history_types (hk, type) VALUES ({p}, {p}) ON CONFLICT DO NOTHING",
            [(keys[(e.tenant, e.header.id)], t) for e in entries for t in e.header.types],
        )

    def _insert_rows(self, cursor: Cursor, rows: list[tuple[int, HistoryRow]]) -> None:
        values = [
            (
                key,
                r.attr,
                r.dataset_id,
                r.kind,
                r.instance_id,
                r.observed_at,
                r.created_at,
                r.modified_at,
                r.deleted_at,
                r.num,
                r.value,
                r.doc,
            )
            for key, r in rows
        ]
        if not values:
            return
        if self.store.dialect.name == "postgresql":
            with cursor.copy(f"COPY history_instances ({INSTANCE_COLUMNS}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            return
        cursor.executemany(
            f"INSERT INTO history_instances ({INSTANCE_COLUMNS}) VALUES ({self._marks(12)})",
            values,
        )

    def _purge(self, cursor: Cursor, tenant: str, entity_id: str) -> bool:
        keys = self._keys(cursor, tenant, [entity_id])
        if not keys:
            return False
        key = keys[entity_id]
        for table in ("history_instances", "history_types", "history_entities"):
            cursor.execute(f"DELETE FROM {table} WHERE hk = {self._p}", [key])
        return True

    def delete_entity(self, tenant: str, entity_id: str) -> bool:
        """Delete an entity's whole history; return False if it had none."""
        with self.store.writing() as cursor:
            return self._purge(cursor, tenant, entity_id)

    def delete_attribute(
        self, tenant: str, entity_id: str, attr: str, dataset_id: str | None, *, every: bool
    ) -> int:
        """Delete an attribute's instances (one dataset, or all); return how many."""
        p = self._p
        with self.store.writing() as cursor:
            keys = self._keys(cursor, tenant, [entity_id])
            if not keys:
                return 0
            sql = f"DELETE FROM history_instances WHERE hk = {p} AND attr = {p}"
            params: list[Any] = [keys[entity_id], attr]
            if not every:
                sql += f" AND dataset_id = {p}"
                params.append(dataset_id or "")
            cursor.execute(sql, params)
            return int(cursor.rowcount or 0)

    def replace_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, row: HistoryRow
    ) -> bool:
        """Replace one instance, keeping its instanceId; return False if there is none."""
        p = self._p
        with self.store.writing() as cursor:
            keys = self._keys(cursor, tenant, [entity_id])
            if not keys:
                return False
            cursor.execute(
                f"UPDATE history_instances SET dataset_id = {p}, kind = {p}, observed_at = {p}, "
                f"modified_at = {p}, deleted_at = NULL, num = {p}, value = {p}, doc = {p} "
                f"WHERE hk = {p} AND attr = {p} AND instance_id = {p}",
                [
                    row.dataset_id,
                    row.kind,
                    row.observed_at,
                    row.modified_at,
                    row.num,
                    row.value,
                    row.doc,
                    keys[entity_id],
                    attr,
                    instance_id,
                ],
            )
            return bool(cursor.rowcount)

    def delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        """Delete one instance; return False if there is none."""
        p = self._p
        with self.store.writing() as cursor:
            keys = self._keys(cursor, tenant, [entity_id])
            if not keys:
                return False
            cursor.execute(
                f"DELETE FROM history_instances WHERE hk = {p} AND attr = {p} "
                f"AND instance_id = {p}",
                [keys[entity_id], attr, instance_id],
            )
            return bool(cursor.rowcount)

    def prune(self, before: int, batch: int = 100) -> int:
        """Delete the instances observed before `before` (microseconds); return how many.

        Entity by entity (`batch` per transaction), through the (entity, attribute, time) key:
        a separate index on time alone would tempt the planner away from that key in reads.
        """
        p = self._p
        with self.store.reading() as cursor:
            cursor.execute("SELECT hk FROM history_entities ORDER BY hk")
            keys = [int(row[0]) for row in cursor.fetchall()]
        total = 0
        for chunk in chunks(keys, batch):
            with self.store.writing() as cursor:
                cursor.execute(
                    f"DELETE FROM history_instances WHERE hk IN ({self._marks(len(chunk))}) "
                    f"AND observed_at < {p}",
                    [*chunk, before],
                )
                total += int(cursor.rowcount or 0)
        with self.store.writing() as cursor:
            # Deleted entities whose history is now empty leave nothing behind.
            cursor.execute(
                "DELETE FROM history_types WHERE hk IN (SELECT hk FROM history_entities h "
                "WHERE h.deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                "history_instances i WHERE i.hk = h.hk))"
            )
            cursor.execute(
                "DELETE FROM history_entities WHERE deleted_at IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM history_instances i WHERE i.hk = history_entities.hk)"
            )
        return total

    def _keys(self, cursor: Cursor, tenant: str, ids: Sequence[str]) -> dict[str, int]:
        keys: dict[str, int] = {}
        for chunk in chunks(list(dict.fromkeys(ids))):
            cursor.execute(
                f"SELECT entity_id, hk FROM history_entities WHERE tenant = {self._p} "
                f"AND entity_id IN ({self._marks(len(chunk))})",
                [tenant, *chunk],
            )
            keys.update({row[0]: int(row[1]) for row in cursor.fetchall()})
        return keys
