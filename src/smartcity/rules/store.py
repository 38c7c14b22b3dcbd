"""Rules kept in the database, per tenant, with every version ever written.

`rule_versions` keeps each version's document (never changed once written); `rules` says which
version is current and whether the rule is enabled or deleted. Every write moves one global
revision number, so engine workers (any process) see at a glance that the rules changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from smartcity.storage.sqlbase import Cursor, SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS rule_versions (
    tenant {text} NOT NULL,
    rule_id {text} NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant, rule_id, version)
);
CREATE TABLE IF NOT EXISTS rules (
    tenant {text} NOT NULL,
    rule_id {text} NOT NULL,
    version INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant, rule_id)
);
CREATE TABLE IF NOT EXISTS rule_revision (
    name {text} PRIMARY KEY,
    n BIGINT NOT NULL
)
"""
_TEXT: Final = {"sqlite": "TEXT", "postgresql": 'TEXT COLLATE "C"'}
_DDL_LOCK: Final = 0x736D72756C65  # "smrule"
_COLUMNS: Final = (
    "r.tenant, r.rule_id, r.version, r.enabled, r.deleted, r.updated_at, r.updated_by, "
    "v.doc, v.created_at"
)


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """One rule as stored: its current version's document and its state."""

    tenant: str
    id: str
    version: int
    enabled: bool
    doc: dict[str, Any]
    """The rule as written (the engine's rule language), without tenant or version."""
    updated_at: str
    updated_by: str
    created_at: str = ""
    """When this version was written."""
    deleted: bool = False


def _record(row: Sequence[Any]) -> RuleRecord:
    tenant, rule_id, version, enabled, deleted, updated_at, updated_by, doc, created_at = row
    return RuleRecord(
        tenant=tenant,
        id=rule_id,
        version=int(version),
        enabled=bool(enabled),
        doc=orjson.loads(doc),
        updated_at=updated_at,
        updated_by=updated_by,
        created_at=created_at,
        deleted=bool(deleted),
    )


class SqlRuleStore:
    """Rules and their versions on the platform's SQL database."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        with store.writing() as cursor:
            if store.dialect.name == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in _DDL.format(text=_TEXT[store.dialect.name]).split(";"):
                cursor.execute(statement)
            cursor.execute(
                f"INSERT INTO rule_revision (name, n) VALUES ({self._p}, 0) "
                "ON CONFLICT (name) DO NOTHING",
                ["rules"],
            )

    def revision(self) -> int:
        """Return the number of writes to rules so far (any process)."""
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT n FROM rule_revision WHERE name = {self._p}", ["rules"])
            return int(cursor.fetchone()[0])

    def _bump(self, cursor: Cursor) -> None:
        # The row lock also serializes writers of one rule's versions (PostgreSQL).
        cursor.execute(f"UPDATE rule_revision SET n = n + 1 WHERE name = {self._p}", ["rules"])

    def _select(self, where: str) -> str:
        return (
            f"SELECT {_COLUMNS} FROM rules r JOIN rule_versions v ON v.tenant = r.tenant "
            f"AND v.rule_id = r.rule_id AND v.version = r.version WHERE {where}"
        )

    def get(self, tenant: str, rule_id: str) -> RuleRecord | None:
        """Return a rule's current state (deleted ones too), or None."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(self._select(f"r.tenant = {p} AND r.rule_id = {p}"), [tenant, rule_id])
            row = cursor.fetchone()
        return None if row is None else _record(row)

    def version(self, tenant: str, rule_id: str, version: int) -> dict[str, Any] | None:
        """Return the document of one version of a rule, or None."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT doc FROM rule_versions WHERE tenant = {p} AND rule_id = {p} "
                f"AND version = {p}",
                [tenant, rule_id, version],
            )
            row = cursor.fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def of_tenant(self, tenant: str) -> list[RuleRecord]:
        """Return a tenant's rules (not deleted), by id."""
        with self._store.reading() as cursor:
            cursor.execute(
                self._select(f"r.tenant = {self._p} AND r.deleted = 0") + " ORDER BY r.rule_id",
                [tenant],
            )
            return [_record(row) for row in cursor.fetchall()]

    def enabled(self) -> list[RuleRecord]:
        """Return every enabled rule of every tenant (what the engine runs)."""
        with self._store.reading() as cursor:
            cursor.execute(
                self._select("r.enabled = 1 AND r.deleted = 0") + " ORDER BY r.tenant, r.rule_id"
            )
            return [_record(row) for row in cursor.fetchall()]

    def put(
        self, tenant: str, rule_id: str, doc: dict[str, Any], *, by: str, at: str, enabled: bool
    ) -> RuleRecord:
        """Write a new version of a rule (version 1 if new or deleted before); return it."""
        p = self._p
        text = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
        with self._store.writing() as cursor:
            self._bump(cursor)
            cursor.execute(
                f"SELECT COALESCE(MAX(version), 0) FROM rule_versions WHERE tenant = {p} "
                f"AND rule_id = {p}",
                [tenant, rule_id],
            )
            version = int(cursor.fetchone()[0]) + 1
            cursor.execute(
                "INSERT INTO rule_versions (tenant, rule_id, version, doc, created_at, "
                f"created_by) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                [tenant, rule_id, version, text, at, by],
            )
            cursor.execute(
                "INSERT INTO rules (tenant, rule_id, version, enabled, deleted, updated_at, "
                f"updated_by) VALUES ({p}, {p}, {p}, {p}, 0, {p}, {p}) "
                "ON CONFLICT (tenant, rule_id) DO UPDATE SET version = excluded.version, "
                "enabled = excluded.enabled, deleted = 0, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                [tenant, rule_id, version, int(enabled), at, by],
            )
        record = self.get(tenant, rule_id)
        assert record is not None
        return record

    def set_enabled(self, tenant: str, rule_id: str, enabled: bool, *, by: str, at: str) -> bool:
        """Enable or disable a rule (not deleted); return whether it exists."""
        return self._mark(tenant, rule_id, f"enabled = {int(enabled)}", by, at)

    def delete(self, tenant: str, rule_id: str, *, by: str, at: str) -> bool:
        """Mark a rule deleted (its versions and firings stay); return whether it existed."""
        return self._mark(tenant, rule_id, "deleted = 1, enabled = 0", by, at)

    def _mark(self, tenant: str, rule_id: str, assignment: str, by: str, at: str) -> bool:
        p = self._p
        with self._store.writing() as cursor:
            self._bump(cursor)
            cursor.execute(
                f"UPDATE rules SET {assignment}, updated_at = {p}, updated_by = {p} "
                f"WHERE tenant = {p} AND rule_id = {p} AND deleted = 0",
                [at, by, tenant, rule_id],
            )
            return int(cursor.rowcount or 0) > 0
