"""The temporal history of entities: every accepted attribute instance, kept in SQL.

The history is written from the change log (`SqlEntityStore.changes_since`): `catch_up` turns
the changes after its position into rows and moves the position in the same transaction, with
the position row locked, so that several processes on one database neither lose nor repeat a
change. The temporal API may also add, correct and delete instances directly.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from smartcity.storage.base import ChangeKind
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

    def _consume(self, batch: int) -> int:
        lock = " FOR UPDATE" if self.store.dialect.name == "postgresql" else ""
        p = self._p
        with self.store.writing() as cursor:
            # The lock makes a second process wait here, then read the position this one left.
            cursor.execute(f"SELECT seq FROM history_position WHERE name = {p}{lock}", [POSITION])
            start = int(cursor.fetchone()[0])
            changes = self.store.changes_since(start, batch)
            if not changes:
                return 0
            pending: dict[tuple[str, str], _Pending] = {}
            for change in changes:
                key = (change.tenant, change.entity.id)
                deleted = change.kind is ChangeKind.DELETE
                if deleted and not self.keep_on_delete:
                    self._write(cursor, list(pending.values()))
                    pending.clear()
                    self._purge(cursor, change.tenant, change.entity.id)
                    continue
                entry = pending.setdefault(key, _Pending(change.tenant, header_of(change), None))
                entry.header = header_of(change)
                entry.rows.extend(rows_of_change(change))
                entry.deleted_at = micros(change.at) if deleted else None
            self._write(cursor, list(pending.values()))
            cursor.execute(
                f"UPDATE history_position SET seq = {p} WHERE name = {p}",
                [changes[-1].seq, POSITION],
            )
            return len(changes)

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
        keys: dict[tuple[str, str], int] = {}
        for tenant in {e.tenant for e in entries}:
            ids = [e.header.id for e in entries if e.tenant == tenant]
            keys.update({(tenant, i): k for i, k in self._keys(cursor, tenant, ids).items()})
        for chunk in chunks(list(keys.values())):
            cursor.execute(
                f"DELETE FROM history_types WHERE hk IN ({self._marks(len(chunk))})", list(chunk)
            )
        cursor.executemany(
            f"INSERT INTO history_types (hk, type) VALUES ({p}, {p}) ON CONFLICT DO NOTHING",
            [(keys[(e.tenant, e.header.id)], t) for e in entries for t in e.header.types],
        )
        rows = [(keys[(e.tenant, e.header.id)], row) for e in entries for row in e.rows]
        rows.sort(key=lambda item: item[1].observed_at)  # stable: in time order, as they came
        self._insert_rows(cursor, rows)

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
