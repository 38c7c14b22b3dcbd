"""Incidents on the platform's SQL database (SQLite or PostgreSQL).

Tables: `incidents` (one row per incident, with a version), `incident_keys` (idempotency keys:
an alert id, a partner's report id; unique per tenant), `incident_events` (the append-only
timeline, numbered platform-wide) and `incident_video_shares`. Every write runs in one
transaction that also holds a database-wide advisory lock on PostgreSQL: incidents are written
at human pace, and with writers serialized the timeline's numbers are assigned in commit order,
so a reader that follows them (the live stream, the fact publisher) never skips one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from smartcity.core.errors import Conflict
from smartcity.storage.incident_rows import (
    COLUMN_NAMES,
    COLUMNS,
    DDL,
    DIALECT_TYPES,
    EVENT_COLUMNS,
    PACKAGE_COLUMNS,
    SHARE_COLUMNS,
    dump,
    event_from_row,
    incident_from_row,
    incident_row,
    package_from_row,
    package_row,
    share_from_row,
)
from smartcity.storage.incidents import (
    DispatchPackage,
    Incident,
    IncidentFilter,
    TimelineEvent,
    VideoShare,
)
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlbase import Cursor, SqlEntityStore

_LOCK: Final = 0x736D6F7073  # "smops"


class IncidentWrite:
    """The writes of one transaction on incidents (see `SqlIncidentStore.write`)."""

    def __init__(self, cursor: Cursor, placeholder: str) -> None:
        self.cursor = cursor
        self._p = placeholder

    def incident_for_key(self, tenant: str, key: str) -> Incident | None:
        """Return the incident an idempotency key names, if any."""
        p = self._p
        self.cursor.execute(
            f"SELECT i.{COLUMNS.replace(', ', ', i.')} FROM incident_keys k JOIN incidents i "
            f"ON i.tenant = k.tenant AND i.id = k.incident_id WHERE k.tenant = {p} AND k.key = {p}",
            [tenant, key],
        )
        row = self.cursor.fetchone()
        return None if row is None else incident_from_row(row)

    def get(self, tenant: str, incident_id: str) -> Incident | None:
        """Return an incident as this transaction sees it."""
        p = self._p
        self.cursor.execute(
            f"SELECT {COLUMNS} FROM incidents WHERE tenant = {p} AND id = {p}",
            [tenant, incident_id],
        )
        row = self.cursor.fetchone()
        return None if row is None else incident_from_row(row)

    def open_of_type(self, tenant: str, incident_type: str, since: str) -> list[Incident]:
        """Return the open incidents of a type that took an alert (or began) since a time."""
        p = self._p
        self.cursor.execute(
            f"SELECT {COLUMNS} FROM incidents WHERE tenant = {p} AND type = {p} "
            f"AND status IN ({p}, {p}, {p}) AND COALESCE(last_alert_at, created_at) >= {p} "
            "ORDER BY created_at, id",
            [tenant, incident_type, "new", "acknowledged", "in-progress", since],
        )
        return [incident_from_row(row) for row in self.cursor.fetchall()]

    def insert(self, incident: Incident, keys: Sequence[str] = ()) -> None:
        """Store a new incident and its idempotency keys."""
        marks = ", ".join([self._p] * len(COLUMN_NAMES))
        self.cursor.execute(
            f"INSERT INTO incidents ({COLUMNS}) VALUES ({marks})", incident_row(incident)
        )
        self.add_keys(incident.tenant, incident.id, keys)

    def add_keys(self, tenant: str, incident_id: str, keys: Sequence[str]) -> None:
        """Remember idempotency keys for an incident."""
        p = self._p
        self.cursor.executemany(
            f"INSERT INTO incident_keys (tenant, key, incident_id) VALUES ({p}, {p}, {p})",
            [(tenant, key, incident_id) for key in keys],
        )

    def update(self, incident: Incident, expected_version: int) -> None:
        """Replace an incident if it is still at `expected_version`; raise Conflict if not."""
        p = self._p
        names = COLUMN_NAMES[2:]
        values = incident_row(incident)[2:]
        assignments = ", ".join(f"{name} = {p}" for name in names)
        self.cursor.execute(
            f"UPDATE incidents SET {assignments} WHERE tenant = {p} AND id = {p} AND version = {p}",
            [*values, incident.tenant, incident.id, expected_version],
        )
        if self.cursor.rowcount == 0:
            raise Conflict(
                f"incident {incident.id} changed while this change was made (expected version "
                f"{expected_version}); reload it and try again",
                incident=incident.id,
            )

    def append(self, events: Sequence[TimelineEvent]) -> None:
        """Append events to timelines."""
        p = self._p
        self.cursor.executemany(
            "INSERT INTO incident_events (tenant, incident_id, at, actor, kind, details) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
            [(e.tenant, e.incident_id, e.at, e.actor, e.kind, dump(e.details)) for e in events],
        )

    def add_share(self, share: VideoShare) -> None:
        """Store a video share."""
        marks = ", ".join([self._p] * 11)
        self.cursor.execute(
            f"INSERT INTO incident_video_shares ({SHARE_COLUMNS}) VALUES ({marks})",
            [
                share.tenant,
                share.id,
                share.incident_id,
                share.principal_id,
                share.principal_name,
                dump(list(share.camera_ids)),
                dump(list(share.share_ids)),
                share.granted_by,
                share.granted_at,
                share.expires_at,
                share.ended_at,
            ],
        )

    def add_package(self, package: DispatchPackage) -> None:
        """Store a dispatch package."""
        marks = ", ".join([self._p] * 9)
        self.cursor.execute(
            f"INSERT INTO incident_packages ({PACKAGE_COLUMNS}) VALUES ({marks})",
            package_row(package),
        )

    def end_shares(self, tenant: str, incident_id: str, at: str, share_id: str = "") -> None:
        """Mark the incident's shares (or one of them) that are not ended as ended at `at`."""
        p = self._p
        one = f" AND id = {p}" if share_id else ""
        self.cursor.execute(
            f"UPDATE incident_video_shares SET ended_at = {p} "
            f"WHERE tenant = {p} AND incident_id = {p} AND ended_at IS NULL{one}",
            [at, tenant, incident_id, *([share_id] if share_id else [])],
        )


class SqlIncidentStore:
    """Incidents, timelines and video shares on the platform's SQL database."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self._commit_listeners: list[Callable[[], None]] = []
        self._postgres = store if isinstance(store, PostgresEntityStore) else None
        ddl = DDL.format(**DIALECT_TYPES[store.dialect.name])
        with store.writing() as cursor:
            if self._postgres is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            for statement in ddl.split(";"):
                cursor.execute(statement)

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed incident write: in the writing thread, or (on
        PostgreSQL) in the thread that hears other processes' writes (`pgnotify.py`)."""
        self._commit_listeners.append(listener)
        if self._postgres is not None:
            self._postgres.hear_commits("incidents", listener)

    @contextmanager
    def write(self) -> Iterator[IncidentWrite]:
        """Open one write transaction on incidents (serialized with every other one)."""
        with self._store.writing() as cursor:
            if self._postgres is not None:
                self._postgres.lock_and_notify(cursor, _LOCK, "incidents")
            yield IncidentWrite(cursor, self._p)
        for listener in self._commit_listeners:
            listener()

    def get(self, tenant: str, incident_id: str) -> Incident | None:
        """Return one incident of a tenant, or None."""
        with self._store.reading() as cursor:
            return IncidentWrite(cursor, self._p).get(tenant, incident_id)

    def _where(self, tenant: str, where: IncidentFilter) -> tuple[str, list[Any]]:
        p = self._p
        conditions: list[str] = [f"tenant = {p}"]
        params: list[Any] = [tenant]
        for column, values in (
            ("status", where.statuses),
            ("type", where.types),
            ("severity", where.severities),
            ("id", where.ids),
        ):
            if values is not None and (values or column == "id"):
                if not values:
                    conditions.append("1 = 0")
                    continue
                conditions.append(f"{column} IN ({', '.join([p] * len(values))})")
                params.extend(values)
        for column, value in (("zone", where.zone), ("assignee", where.assignee)):
            if value is not None:
                conditions.append(f"{column} = {p}")
                params.append(value)
        if where.bbox is not None:
            conditions.append(f"lon >= {p} AND lat >= {p} AND lon <= {p} AND lat <= {p}")
            params.extend(where.bbox)
        return " AND ".join(conditions), params

    def page(self, tenant: str, where: IncidentFilter, limit: int, offset: int) -> list[Incident]:
        """Return a tenant's incidents matching a filter, newest first."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {COLUMNS} FROM incidents WHERE {condition} "
                f"ORDER BY created_at DESC, id DESC LIMIT {self._p} OFFSET {self._p}",
                [*params, limit, offset],
            )
            return [incident_from_row(row) for row in cursor.fetchall()]

    def count(self, tenant: str, where: IncidentFilter) -> int:
        """Return how many incidents of a tenant match a filter."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM incidents WHERE {condition}", params)
            return int(cursor.fetchone()[0])

    def status_counts(self) -> list[tuple[str, str, str, int]]:
        """Return how many incidents there are by tenant, status and severity (for metrics)."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, status, severity, COUNT(*) FROM incidents "
                "GROUP BY tenant, status, severity ORDER BY tenant, status, severity"
            )
            return [(str(t), str(s), str(v), int(n)) for t, s, v, n in cursor.fetchall()]

    def reported_by(self, tenant: str, principal_id: str) -> list[str]:
        """Return the ids of the incidents an agency principal reported."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT id FROM incidents WHERE tenant = {p} AND reported_by = {p}",
                [tenant, principal_id],
            )
            return [str(row[0]) for row in cursor.fetchall()]

    def unacknowledged(self, created_before: str, limit: int = 500) -> list[Incident]:
        """Return incidents of every tenant still `new` and created before a time, oldest first."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {COLUMNS} FROM incidents WHERE status = {p} AND created_at < {p} "
                f"ORDER BY created_at, tenant, id LIMIT {p}",
                ["new", created_before, limit],
            )
            return [incident_from_row(row) for row in cursor.fetchall()]

    def timeline(self, tenant: str, incident_id: str) -> list[TimelineEvent]:
        """Return an incident's timeline, oldest first."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {EVENT_COLUMNS} FROM incident_events "
                f"WHERE tenant = {p} AND incident_id = {p} ORDER BY seq",
                [tenant, incident_id],
            )
            return [event_from_row(row) for row in cursor.fetchall()]

    def events_after(self, seq: int, limit: int, tenant: str | None = None) -> list[TimelineEvent]:
        """Return timeline events after a position (of one tenant when given), in order."""
        p = self._p
        condition = f"seq > {p}"
        params: list[Any] = [seq]
        if tenant is not None:
            condition += f" AND tenant = {p}"
            params.append(tenant)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {EVENT_COLUMNS} FROM incident_events WHERE {condition} "
                f"ORDER BY seq LIMIT {p}",
                [*params, limit],
            )
            return [event_from_row(row) for row in cursor.fetchall()]

    def last_seq(self) -> int:
        """Return the position of the newest timeline event (0 when there is none)."""
        with self._store.reading() as cursor:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM incident_events")
            return int(cursor.fetchone()[0])

    def shares(
        self, tenant: str, incident_id: str | None = None, principal_id: str | None = None
    ) -> list[VideoShare]:
        """Return the video shares of a tenant, of one incident and/or one agency, oldest first."""
        rows = self._of_incident(
            f"SELECT {SHARE_COLUMNS} FROM incident_video_shares",
            "granted_at, id",
            tenant,
            incident_id,
            principal_id,
        )
        return [share_from_row(row) for row in rows]

    def packages(
        self, tenant: str, incident_id: str | None = None, principal_id: str | None = None
    ) -> list[DispatchPackage]:
        """Return dispatch packages of a tenant, of one incident and/or one agency, oldest first."""
        rows = self._of_incident(
            f"SELECT {PACKAGE_COLUMNS} FROM incident_packages",
            "created_at, id",
            tenant,
            incident_id,
            principal_id,
        )
        return [package_from_row(row) for row in rows]

    def _of_incident(
        self,
        select: str,
        order: str,
        tenant: str,
        incident_id: str | None,
        principal_id: str | None,
    ) -> list[Any]:
        """Run `select` over a tenant's rows, of one incident and/or one agency, in `order`."""
        p = self._p
        condition, params = f"tenant = {p}", [tenant]
        if incident_id is not None:
            condition += f" AND incident_id = {p}"
            params.append(incident_id)
        if principal_id is not None:
            condition += f" AND principal_id = {p}"
            params.append(principal_id)
        with self._store.reading() as cursor:
            cursor.execute(f"{select} WHERE {condition} ORDER BY {order}", params)
            return list(cursor.fetchall())

    def position(self, name: str) -> int:
        """Return a reader's saved timeline position (0 when it has none)."""
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT seq FROM incident_positions WHERE name = {self._p}", [name])
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def save_position(self, name: str, seq: int) -> None:
        """Save a reader's timeline position."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"INSERT INTO incident_positions (name, seq) VALUES ({p}, {p}) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                [name, seq],
            )
