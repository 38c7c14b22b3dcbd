"""Dead letters: input ingestion could not accept, kept with the reason until fixed or dropped.

One table, `dead_letters`, on the platform's database (SQLite or PostgreSQL). Each row keeps
the input exactly as it arrived (the payload as bytes), why and where it was refused, and what
became of it: `new` until it is replayed successfully (`replayed`) or an operator drops it
(`discarded`). Every query names its tenant: no operation reads across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from smartcity.storage.sqlbase import Cursor, SqlEntityStore

NEW: Final = "new"
REPLAYED: Final = "replayed"
DISCARDED: Final = "discarded"
STATUSES: Final = (NEW, REPLAYED, DISCARDED)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused input, as stored."""

    id: str
    tenant: str
    received_at: str
    """When the platform received the input (UTC, NGSI-LD timestamp format)."""
    source: str
    payload: bytes
    reason: str
    stage: str
    message: str
    device_id: str | None = None
    topic: str | None = None
    content_type: str | None = None
    path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = NEW
    attempts: int = 0
    """How many times it was replayed."""
    last_replay_at: str | None = None
    last_replay_result: str | None = None
    resolved_at: str | None = None
    """When it was replayed successfully or discarded (the retention counts from there)."""


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters of a tenant an operation is about (every field optional)."""

    device_id: str | None = None
    source: str | None = None
    reason: str | None = None
    status: str | None = None
    since: str | None = None
    """Received at or after (UTC, NGSI-LD timestamp format)."""
    until: str | None = None
    """Received before."""


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """How one replay went, to be stored on its dead letter."""

    id: str
    at: str
    result: str
    replayed: bool
    """True: the input was accepted now; False: it failed again (the new reason below)."""
    reason: str | None = None
    stage: str | None = None
    path: str | None = None
    message: str | None = None


class DeadLetterStore(Protocol):
    """Dead letters per tenant."""

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters in one transaction (all or none)."""
        ...

    def get(self, tenant: str, letter_id: str) -> DeadLetter | None:
        """Return one dead letter of a tenant, or None."""
        ...

    def page(
        self, tenant: str, where: DeadLetterFilter, limit: int, offset: int
    ) -> list[DeadLetter]:
        """Return dead letters of a tenant matching a filter, newest first."""
        ...

    def count(self, tenant: str, where: DeadLetterFilter) -> int:
        """Return how many dead letters of a tenant match a filter."""
        ...

    def status_counts(self) -> list[tuple[str, str, str, int]]:
        """Return how many dead letters there are by tenant, source and status."""
        ...

    def counts_by_reason(self, tenant: str, where: DeadLetterFilter) -> dict[str, int]:
        """Return how many of a tenant's matching dead letters there are per reason."""
        ...

    def record_replays(self, tenant: str, records: Sequence[ReplayRecord]) -> int:
        """Store replay outcomes on dead letters still `new`; return how many were changed."""
        ...

    def discard(self, tenant: str, letter_ids: Sequence[str], at: str) -> int:
        """Mark `new` dead letters discarded; return how many were."""
        ...

    def purge(self, before: str) -> int:
        """Delete replayed and discarded dead letters resolved before a time; return how many."""
        ...


_DDL: Final = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id {text} PRIMARY KEY,
    tenant {text} NOT NULL,
    received_at {text} NOT NULL,
    source {text} NOT NULL,
    device_id {text},
    topic TEXT,
    content_type TEXT,
    payload {blob} NOT NULL,
    reason {text} NOT NULL,
    stage TEXT NOT NULL,
    path TEXT,
    message TEXT NOT NULL,
    meta TEXT NOT NULL,
    status {text} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_replay_at TEXT,
    last_replay_result TEXT,
    resolved_at {text}
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (tenant, received_at, id);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (tenant, status, reason);
CREATE INDEX IF NOT EXISTS dead_letters_device ON dead_letters (tenant, device_id, received_at);
CREATE INDEX IF NOT EXISTS dead_letters_resolved ON dead_letters (status, resolved_at)
"""
_TYPES: Final = {
    "sqlite": {"text": "TEXT", "blob": "BLOB"},
    "postgresql": {"text": 'TEXT COLLATE "C"', "blob": "BYTEA"},
}
_COLUMNS: Final = (
    "id, tenant, received_at, source, device_id, topic, content_type, payload, reason, stage, "
    "path, message, meta, status, attempts, last_replay_at, last_replay_result, resolved_at"
)
_DDL_LOCK: Final = 0x736D646C6574  # "smdlet"


def _row(letter: DeadLetter) -> tuple[Any, ...]:
    return (
        letter.id,
        letter.tenant,
        letter.received_at,
        letter.source,
        letter.device_id,
        letter.topic,
        letter.content_type,
        letter.payload,
        letter.reason,
        letter.stage,
        letter.path,
        letter.message,
        orjson.dumps(letter.meta).decode(),
        letter.status,
        letter.attempts,
        letter.last_replay_at,
        letter.last_replay_result,
        letter.resolved_at,
    )


def _letter(row: Sequence[Any]) -> DeadLetter:
    (
        letter_id,
        tenant,
        received_at,
        source,
        device_id,
        topic,
        content_type,
        payload,
        reason,
        stage,
        path,
        message,
        meta,
        status,
        attempts,
        last_at,
        last_result,
        resolved_at,
    ) = row
    return DeadLetter(
        id=letter_id,
        tenant=tenant,
        received_at=received_at,
        source=source,
        payload=bytes(payload),
        reason=reason,
        stage=stage,
        message=message,
        device_id=device_id,
        topic=topic,
        content_type=content_type,
        path=path,
        meta=orjson.loads(meta),
        status=status,
        attempts=int(attempts),
        last_replay_at=last_at,
        last_replay_result=last_result,
        resolved_at=resolved_at,
    )


class SqlDeadLetterStore:
    """DeadLetterStore on the platform's SQL database (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        postgres = store.dialect.name == "postgresql"
        ddl = _DDL.format(**_TYPES[store.dialect.name])
        with store.writing() as cursor:
            if postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in ddl.split(";"):
                cursor.execute(statement)

    def _where(self, tenant: str, where: DeadLetterFilter) -> tuple[str, list[Any]]:
        p = self._p
        conditions = [f"tenant = {p}"]
        params: list[Any] = [tenant]
        for column, value in (
            ("device_id", where.device_id),
            ("source", where.source),
            ("reason", where.reason),
            ("status", where.status),
        ):
            if value is not None:
                conditions.append(f"{column} = {p}")
                params.append(value)
        if where.since is not None:
            conditions.append(f"received_at >= {p}")
            params.append(where.since)
        if where.until is not None:
            conditions.append(f"received_at < {p}")
            params.append(where.until)
        return " AND ".join(conditions), params

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters in one transaction (all or none)."""
        if not letters:
            return
        marks = ", ".join([self._p] * 18)
        with self._store.writing() as cursor:
            cursor.executemany(
                f"INSERT INTO dead_letters ({_COLUMNS}) VALUES ({marks})",
                [_row(letter) for letter in letters],
            )

    def get(self, tenant: str, letter_id: str) -> DeadLetter | None:
        """Return one dead letter of a tenant, or None."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM dead_letters WHERE tenant = {p} AND id = {p}",
                [tenant, letter_id],
            )
            row = cursor.fetchone()
        return None if row is None else _letter(row)

    def page(
        self, tenant: str, where: DeadLetterFilter, limit: int, offset: int
    ) -> list[DeadLetter]:
        """Return dead letters of a tenant matching a filter, newest first."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM dead_letters WHERE {condition} "
                f"ORDER BY received_at DESC, id DESC LIMIT {self._p} OFFSET {self._p}",
                [*params, limit, offset],
            )
            rows = cursor.fetchall()
        return [_letter(row) for row in rows]

    def count(self, tenant: str, where: DeadLetterFilter) -> int:
        """Return how many dead letters of a tenant match a filter."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM dead_letters WHERE {condition}", params)
            return int(cursor.fetchone()[0])

    def status_counts(self) -> list[tuple[str, str, str, int]]:
        """Return how many dead letters there are by tenant, source and status (for metrics)."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, source, status, COUNT(*) FROM dead_letters "
                "GROUP BY tenant, source, status ORDER BY tenant, source, status"
            )
            return [(str(t), str(s), str(st), int(n)) for t, s, st, n in cursor.fetchall()]

    def counts_by_reason(self, tenant: str, where: DeadLetterFilter) -> dict[str, int]:
        """Return how many of a tenant's matching dead letters there are per reason."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT reason, COUNT(*) FROM dead_letters WHERE {condition} "
                "GROUP BY reason ORDER BY reason",
                params,
            )
            rows = cursor.fetchall()
        return {reason: int(count) for reason, count in rows}

    def record_replays(self, tenant: str, records: Sequence[ReplayRecord]) -> int:
        """Store replay outcomes on dead letters still `new`; return how many were changed."""
        changed = 0
        with self._store.writing() as cursor:
            for record in records:
                changed += self._record_replay(cursor, tenant, record)
        return changed

    def _record_replay(self, cursor: Cursor, tenant: str, record: ReplayRecord) -> int:
        p = self._p
        if record.replayed:
            cursor.execute(
                f"UPDATE dead_letters SET status = {p}, attempts = attempts + 1, "
                f"last_replay_at = {p}, last_replay_result = {p}, resolved_at = {p} "
                f"WHERE tenant = {p} AND id = {p} AND status = {p}",
                [REPLAYED, record.at, record.result, record.at, tenant, record.id, NEW],
            )
        else:
            # Still failing: the reason says what is wrong now.
            cursor.execute(
                f"UPDATE dead_letters SET attempts = attempts + 1, last_replay_at = {p}, "
                f"last_replay_result = {p}, reason = COALESCE({p}, reason), "
                f"stage = COALESCE({p}, stage), path = {p}, "
                f"message = COALESCE({p}, message) "
                f"WHERE tenant = {p} AND id = {p} AND status = {p}",
                [
                    record.at,
                    record.result,
                    record.reason,
                    record.stage,
                    record.path,
                    record.message,
                    tenant,
                    record.id,
                    NEW,
                ],
            )
        return int(cursor.rowcount)

    def discard(self, tenant: str, letter_ids: Sequence[str], at: str) -> int:
        """Mark `new` dead letters discarded; return how many were."""
        p = self._p
        changed = 0
        with self._store.writing() as cursor:
            for letter_id in letter_ids:
                cursor.execute(
                    f"UPDATE dead_letters SET status = {p}, resolved_at = {p} "
                    f"WHERE tenant = {p} AND id = {p} AND status = {p}",
                    [DISCARDED, at, tenant, letter_id, NEW],
                )
                changed += int(cursor.rowcount)
        return changed

    def purge(self, before: str) -> int:
        """Delete replayed and discarded dead letters resolved before a time; return how many."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM dead_letters WHERE status IN ({p}, {p}) AND resolved_at < {p}",
                [REPLAYED, DISCARDED, before],
            )
            return int(cursor.rowcount)
