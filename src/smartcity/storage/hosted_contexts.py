"""Hosted JSON-LD @contexts: the documents users add to the broker, kept per tenant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from smartcity.storage.sqlbase import SqlEntityStore

_TABLES: Final = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS hosted_contexts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    context TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hosted_contexts_tenant ON hosted_contexts (tenant, created_at);
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS hosted_contexts (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    context TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hosted_contexts_tenant ON hosted_contexts (tenant, created_at);
""",
}
_COLUMNS: Final = "id, tenant, context, created_at, created_by"
# Serializes this table's creation, and the per-tenant count check of an add, on PostgreSQL.
_DDL_LOCK: Final = 0x6374785F646466  # "ctx_ddf"


@dataclass(frozen=True, slots=True)
class HostedContext:
    """One @context a user gave the broker to serve."""

    id: str
    tenant: str
    context: Any
    """The value of the document's @context member."""
    created_at: str
    created_by: str


class HostedContextStore(Protocol):
    """Where hosted @contexts live; every process on one database sees the same ones."""

    def add(self, context: HostedContext, *, max_per_tenant: int) -> bool:
        """Keep a context unless its tenant holds max_per_tenant already; tell if kept."""
        ...

    def get(self, context_id: str) -> HostedContext | None:
        """Return a context by id, whatever its tenant (serving a document is public)."""
        ...

    def tenant_contexts(self, tenant: str) -> list[HostedContext]:
        """Return a tenant's contexts, oldest first."""
        ...

    def delete(self, tenant: str, context_id: str) -> bool:
        """Remove a tenant's context; tell if it existed."""
        ...


class SqlHostedContextStore:
    """HostedContextStore in the platform's SQL database (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self._postgres = store.dialect.name == "postgresql"
        with store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in _TABLES[store.dialect.name].split(";"):
                if statement.strip():
                    cursor.execute(statement)

    def add(self, context: HostedContext, *, max_per_tenant: int) -> bool:
        p = self._p
        with self._store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_tenant_key(context.tenant)])
            cursor.execute(
                f"SELECT COUNT(*) FROM hosted_contexts WHERE tenant = {p}", [context.tenant]
            )
            if int(cursor.fetchone()[0]) >= max_per_tenant:
                return False
            cursor.execute(
                f"INSERT INTO hosted_contexts ({_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p})",
                [
                    context.id,
                    context.tenant,
                    orjson.dumps(context.context).decode(),
                    context.created_at,
                    context.created_by,
                ],
            )
        return True

    def get(self, context_id: str) -> HostedContext | None:
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM hosted_contexts WHERE id = {self._p}", [context_id]
            )
            row = cursor.fetchone()
        return None if row is None else _from_row(row)

    def tenant_contexts(self, tenant: str) -> list[HostedContext]:
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM hosted_contexts WHERE tenant = {self._p} "
                "ORDER BY created_at, id",
                [tenant],
            )
            rows = cursor.fetchall()
        return [_from_row(row) for row in rows]

    def delete(self, tenant: str, context_id: str) -> bool:
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM hosted_contexts WHERE tenant = {p} AND id = {p}", [tenant, context_id]
            )
            deleted: int = cursor.rowcount
        return deleted > 0


def _from_row(row: Sequence[Any]) -> HostedContext:
    context_id, tenant, context, created_at, created_by = row
    return HostedContext(context_id, tenant, orjson.loads(context), created_at, created_by)


def _tenant_key(tenant: str) -> int:
    digest = hashlib.blake2b(f"hosted_contexts\x00{tenant}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
