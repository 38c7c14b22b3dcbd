"""SubscriptionStore on the entity store's SQL database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from smartcity.storage.sqlbase import Cursor, SqlEntityStore
from smartcity.storage.subscriptions import (
    ClaimedNotification,
    DeliveryOutcome,
    DeliveryStatus,
    NewNotification,
    SubscriptionRecord,
)

POSITION = "position"
VERSION = "version"

_DDL = """
CREATE TABLE IF NOT EXISTS subscriptions (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    doc TEXT NOT NULL,
    context TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    since_seq BIGINT NOT NULL,
    times_sent BIGINT NOT NULL DEFAULT 0,
    times_failed BIGINT NOT NULL DEFAULT 0,
    last_notification TEXT,
    last_success TEXT,
    last_failure TEXT,
    last_status TEXT,
    last_notified_at {float} NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS subscription_state (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    nid {serial},
    tenant {text} NOT NULL,
    subscription_id {text} NOT NULL,
    cause TEXT NOT NULL,
    data TEXT NOT NULL,
    created {float} NOT NULL,
    due {float} NOT NULL,
    lease_until {float} NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (tenant, subscription_id, cause)
);
CREATE INDEX IF NOT EXISTS notifications_queue
    ON notifications (tenant, subscription_id, failed, nid);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (failed, due)
"""

_TYPES = {
    "sqlite": {"text": "TEXT", "float": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {
        "text": 'TEXT COLLATE "C"',
        "float": "DOUBLE PRECISION",
        "serial": "BIGSERIAL PRIMARY KEY",
    },
}
_DDL_LOCK = 0x736D73756273  # "smsubs"
_SUBSCRIPTION_COLUMNS = (
    "tenant, id, doc, context, created_at, modified_at, since_seq, times_sent, times_failed, "
    "last_notification, last_success, last_failure, last_status, last_notified_at, owner"
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class SqlSubscriptionStore:
    """SubscriptionStore in the entity store's database (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self._postgres = store.dialect.name == "postgresql"
        self._lock_suffix = " FOR UPDATE" if self._postgres else ""
        self._create_tables()

    def _create_tables(self) -> None:
        ddl = _DDL.format(**_TYPES[self._store.dialect.name])
        with self._store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in ddl.split(";"):
                cursor.execute(statement)
            self._add_owner_column(cursor)
            p = self._p
            cursor.execute(
                "INSERT INTO subscription_state (name, value) "
                f"SELECT {p}, COALESCE(MAX(seq), 0) FROM entity_changes WHERE true "
                "ON CONFLICT (name) DO NOTHING",
                [POSITION],
            )
            cursor.execute(
                f"INSERT INTO subscription_state (name, value) VALUES ({p}, 0) "
                "ON CONFLICT (name) DO NOTHING",
                [VERSION],
            )

    def _add_owner_column(self, cursor: Cursor) -> None:
        """Give a table made by an earlier version its `owner` column (the platform owns those)."""
        if self._postgres:
            cursor.execute(
                "ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS owner TEXT NOT NULL DEFAULT ''"
            )
            return
        cursor.execute("PRAGMA table_info(subscriptions)")
        if "owner" not in {row[1] for row in cursor.fetchall()}:
            cursor.execute("ALTER TABLE subscriptions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")

    def _bump_version(self, cursor: Cursor) -> None:
        cursor.execute(
            f"UPDATE subscription_state SET value = value + 1 WHERE name = {self._p}", [VERSION]
        )

    # -- subscriptions ---------------------------------------------------------------------

    def create(self, record: SubscriptionRecord) -> bool:
        """Add a subscription; False if its id is taken in its tenant."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                "INSERT INTO subscriptions (tenant, id, doc, context, created_at, modified_at, "
                f"owner, since_seq) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, "
                "(SELECT COALESCE(MAX(seq), 0) FROM entity_changes)) "
                "ON CONFLICT (tenant, id) DO NOTHING",
                [
                    record.tenant,
                    record.id,
                    _dumps(record.doc),
                    _dumps(record.context),
                    record.created_at,
                    record.modified_at,
                    record.owner,
                ],
            )
            created = bool(cursor.rowcount)
            if created:
                self._bump_version(cursor)
        return created

    def get(self, tenant: str, subscription_id: str) -> SubscriptionRecord | None:
        """Return one subscription or None."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions "
                f"WHERE tenant = {p} AND id = {p}",
                [tenant, subscription_id],
            )
            row = cursor.fetchone()
        return _record(row) if row is not None else None

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[SubscriptionRecord], int]:
        """Return one page of a tenant's subscriptions (by id) and how many there are."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM subscriptions WHERE tenant = {p}", [tenant])
            total = int(cursor.fetchone()[0])
            cursor.execute(
                f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = {p} "
                f"ORDER BY id LIMIT {p} OFFSET {p}",
                [tenant, limit, offset],
            )
            rows = cursor.fetchall()
        return [_record(row) for row in rows], total

    def replace(self, record: SubscriptionRecord) -> bool:
        """Store a changed subscription (document, context, modifiedAt); False if absent."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE subscriptions SET doc = {p}, context = {p}, modified_at = {p} "
                f"WHERE tenant = {p} AND id = {p}",
                [
                    _dumps(record.doc),
                    _dumps(record.context),
                    record.modified_at,
                    record.tenant,
                    record.id,
                ],
            )
            changed = bool(cursor.rowcount)
            if changed:
                self._bump_version(cursor)
        return changed

    def delete(self, tenant: str, subscription_id: str) -> bool:
        """Remove a subscription and its undelivered notifications; False if absent."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM subscriptions WHERE tenant = {p} AND id = {p}",
                [tenant, subscription_id],
            )
            deleted = bool(cursor.rowcount)
            cursor.execute(
                f"DELETE FROM notifications WHERE tenant = {p} AND subscription_id = {p}",
                [tenant, subscription_id],
            )
            if deleted:
                self._bump_version(cursor)
        return deleted

    def load_all(self) -> list[SubscriptionRecord]:
        """Return every subscription of every tenant."""
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions")
            rows = cursor.fetchall()
        return [_record(row) for row in rows]

    def _state(self, name: str) -> int:
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT value FROM subscription_state WHERE name = {self._p}", [name])
            row = cursor.fetchone()
        return int(row[0]) if row is not None else 0

    def version(self) -> int:
        """Return a number that changes whenever any subscription is created, changed or gone."""
        return self._state(VERSION)

    def position(self) -> int:
        """Return the change-log sequence number the notifier has handled up to."""
        return self._state(POSITION)

    # -- the outbox ------------------------------------------------------------------------

    def _insert(self, cursor: Cursor, notifications: Sequence[NewNotification], now: float) -> int:
        p = self._p
        if not notifications:
            return 0
        cursor.executemany(
            "INSERT INTO notifications (tenant, subscription_id, cause, data, created, due) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (tenant, subscription_id, cause) DO NOTHING",
            [
                (item.tenant, item.subscription_id, item.cause, _dumps(item.data), now, now)
                for item in notifications
            ],
        )
        inserted = int(cursor.rowcount or 0)
        remembered = {(i.tenant, i.subscription_id) for i in notifications if i.remember}
        if remembered:
            cursor.executemany(
                f"UPDATE subscriptions SET last_notified_at = {p} WHERE tenant = {p} AND id = {p}",
                [(now, tenant, subscription_id) for tenant, subscription_id in sorted(remembered)],
            )
        return inserted

    def write_notifications(
        self,
        expected_position: int,
        new_position: int,
        notifications: Sequence[NewNotification],
        now: float,
    ) -> bool:
        """Queue notifications and move the position, atomically; False if it moved meanwhile."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"SELECT value FROM subscription_state WHERE name = {p}{self._lock_suffix}",
                [POSITION],
            )
            if int(cursor.fetchone()[0]) != expected_position:
                return False
            self._insert(cursor, notifications, now)
            cursor.execute(
                f"UPDATE subscription_state SET value = {p} WHERE name = {p}",
                [new_position, POSITION],
            )
        return True

    def write_periodic(self, notifications: Sequence[NewNotification], now: float) -> int:
        """Queue periodic notifications (a cause already queued is skipped); return how many."""
        if not notifications:
            return 0
        p = self._p
        with self._store.writing() as cursor:
            due: list[NewNotification] = []
            for item in notifications:
                # Another process may have sent this period already (its row is gone by now).
                cursor.execute(
                    f"SELECT last_notified_at FROM subscriptions WHERE tenant = {p} AND id = {p}"
                    f"{self._lock_suffix}",
                    [item.tenant, item.subscription_id],
                )
                row = cursor.fetchone()
                if row is not None and float(row[0]) < item.not_before:
                    due.append(item)
            return self._insert(cursor, due, now)

    def claim(
        self, now: float, limit: int, lease: float, done: Sequence[DeliveryOutcome] = ()
    ) -> list[ClaimedNotification]:
        """Record `done` (as `complete`), then lease the oldest due notification of up to
        `limit` subscriptions that have none leased; one transaction."""
        p = self._p
        # Only the head of each subscription's queue is claimable: later notifications of a
        # subscription wait for it (per-subscription order), those of others do not.
        locking = " FOR UPDATE OF n SKIP LOCKED" if self._postgres else ""
        with self._store.writing() as cursor:
            self._record_outcomes(cursor, done)
            if limit <= 0:
                return []
            cursor.execute(
                "SELECT n.nid, n.tenant, n.subscription_id, n.data, n.attempts, n.created "
                "FROM notifications n "
                f"WHERE n.failed = 0 AND n.due <= {p} AND n.lease_until <= {p} "
                "AND NOT EXISTS (SELECT 1 FROM notifications o WHERE o.tenant = n.tenant "
                "AND o.subscription_id = n.subscription_id AND o.failed = 0 AND o.nid < n.nid) "
                f"ORDER BY n.nid LIMIT {p}{locking}",
                [now, now, limit],
            )
            rows = cursor.fetchall()
            if rows:
                cursor.executemany(
                    f"UPDATE notifications SET lease_until = {p} WHERE nid = {p}",
                    [(now + lease, row[0]) for row in rows],
                )
        return [
            ClaimedNotification(
                nid=int(nid),
                tenant=tenant,
                subscription_id=subscription_id,
                data=orjson.loads(data),
                attempts=int(attempts),
                created=float(created),
            )
            for nid, tenant, subscription_id, data, attempts, created in rows
        ]

    def complete(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record delivery attempts: drop delivered rows, reschedule or fail the others."""
        if outcomes:
            with self._store.writing() as cursor:
                self._record_outcomes(cursor, outcomes)

    def _record_outcomes(self, cursor: Cursor, outcomes: Sequence[DeliveryOutcome]) -> None:
        p = self._p
        delivered = [o for o in outcomes if o.error is None]
        failed = [o for o in outcomes if o.error is not None]
        if delivered:
            cursor.executemany(
                f"DELETE FROM notifications WHERE nid = {p}", [(o.nid,) for o in delivered]
            )
            cursor.executemany(
                "UPDATE subscriptions SET times_sent = times_sent + 1, "
                f"last_notification = {p}, last_success = {p}, last_status = 'ok' "
                f"WHERE tenant = {p} AND id = {p}",
                [(o.at, o.at, o.tenant, o.subscription_id) for o in delivered],
            )
        if failed:
            cursor.executemany(
                f"UPDATE notifications SET attempts = {p}, due = {p}, lease_until = 0, "
                f"failed = {p}, last_error = {p} WHERE nid = {p}",
                [
                    (
                        o.attempts,
                        o.retry_at if o.retry_at is not None else 0.0,
                        0 if o.retry_at is not None else 1,
                        (o.error or "")[:500],
                        o.nid,
                    )
                    for o in failed
                ],
            )
            cursor.executemany(
                "UPDATE subscriptions SET times_sent = times_sent + 1, "
                f"times_failed = times_failed + 1, last_notification = {p}, "
                f"last_failure = {p}, last_status = 'failed' WHERE tenant = {p} AND id = {p}",
                [(o.at, o.at, o.tenant, o.subscription_id) for o in failed],
            )

    def next_due(self) -> float | None:
        """Return when the earliest undelivered, unfailed notification falls due."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT MIN(CASE WHEN lease_until > due THEN lease_until ELSE due END) "
                "FROM notifications WHERE failed = 0"
            )
            row = cursor.fetchone()
        return float(row[0]) if row is not None and row[0] is not None else None

    def queued(self, tenant: str, subscription_id: str) -> tuple[int, int]:
        """Return how many notifications of a subscription wait, and how many failed."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT failed, COUNT(*) FROM notifications "
                f"WHERE tenant = {p} AND subscription_id = {p} GROUP BY failed",
                [tenant, subscription_id],
            )
            counts = {int(failed): int(count) for failed, count in cursor.fetchall()}
        return counts.get(0, 0), counts.get(1, 0)


def _record(row: Sequence[Any]) -> SubscriptionRecord:
    (
        tenant,
        subscription_id,
        doc,
        context,
        created_at,
        modified_at,
        since_seq,
        times_sent,
        times_failed,
        last_notification,
        last_success,
        last_failure,
        last_status,
        last_notified_at,
        owner,
    ) = row
    return SubscriptionRecord(
        tenant=tenant,
        id=subscription_id,
        doc=orjson.loads(doc),
        context=orjson.loads(context),
        created_at=created_at,
        modified_at=modified_at,
        since_seq=int(since_seq),
        status=DeliveryStatus(
            times_sent=int(times_sent),
            times_failed=int(times_failed),
            last_notification=last_notification,
            last_success=last_success,
            last_failure=last_failure,
            last_status=last_status,
        ),
        last_notified_at=float(last_notified_at),
        owner=str(owner),
    )
