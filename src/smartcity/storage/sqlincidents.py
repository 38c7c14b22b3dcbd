"""Incidents on the platform's SQL database (SQLite or PostgreSQL).

Tables: `incidents` (one row per incident, with a version), `incident_keys` (idempotency keys:
an alert id, a partner's report id; unique per tenant), `incident_events` (the append-only
timeline, numbered platform-wide) and `incident_video_shares`. Every write runs in one
transaction that also holds a database-wide advisory lock on PostgreSQL: incidents are written
at human pace, and with writers serialized the timeline's numbers are assigned in commit order,
so a reader that follows them (the live stream, the fact publisher) never skips one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import orjson

from smartcity.core.errors import Conflict
from smartcity.storage.incidents import (
    Incident,
    IncidentFilter,
    SopStep,
    TimelineEvent,
    VideoShare,
)
from smartcity.storage.sqlbase import Cursor, SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS incidents (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    type {text} NOT NULL,
    subtype TEXT NOT NULL,
    severity {text} NOT NULL,
    status {text} NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    location TEXT,
    lon {real},
    lat {real},
    zone {text} NOT NULL,
    source TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    reported_by {text} NOT NULL,
    assignee TEXT NOT NULL,
    related TEXT NOT NULL,
    alerts TEXT NOT NULL,
    sop TEXT NOT NULL,
    causes TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at {text} NOT NULL,
    updated_at TEXT NOT NULL,
    acknowledged_at TEXT,
    resolved_at TEXT,
    closed_at TEXT,
    last_alert_at TEXT,
    escalation_level INTEGER NOT NULL,
    escalated_at TEXT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (tenant, status, created_at);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (status, created_at);
CREATE TABLE IF NOT EXISTS incident_keys (
    tenant {text} NOT NULL,
    key {text} NOT NULL,
    incident_id {text} NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS incident_events (
    {seq},
    tenant {text} NOT NULL,
    incident_id {text} NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (tenant, incident_id, seq);
CREATE TABLE IF NOT EXISTS incident_video_shares (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    incident_id {text} NOT NULL,
    principal_id {text} NOT NULL,
    principal_name TEXT NOT NULL,
    camera_ids TEXT NOT NULL,
    share_ids TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS incident_video_shares_incident
    ON incident_video_shares (tenant, incident_id);
CREATE INDEX IF NOT EXISTS incident_video_shares_principal
    ON incident_video_shares (tenant, principal_id);
CREATE TABLE IF NOT EXISTS incident_positions (
    name {text} PRIMARY KEY,
    seq BIGINT NOT NULL
)
"""
_TYPES: Final = {
    "sqlite": {"text": "TEXT", "real": "REAL", "seq": "seq INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {
        "text": 'TEXT COLLATE "C"',
        "real": "DOUBLE PRECISION",
        "seq": "seq BIGSERIAL PRIMARY KEY",
    },
}
_COLUMNS: Final = (
    "tenant, id, type, subtype, severity, status, title, description, location, lon, lat, "
    "zone, source, source_ref, reported_by, assignee, related, alerts, sop, causes, version, "
    "created_at, updated_at, acknowledged_at, resolved_at, closed_at, last_alert_at, "
    "escalation_level, escalated_at"
)
_COLUMN_NAMES: Final = [name.strip() for name in _COLUMNS.split(",")]
_SHARE_COLUMNS: Final = (
    "tenant, id, incident_id, principal_id, principal_name, camera_ids, share_ids, granted_by, "
    "granted_at, expires_at, ended_at"
)
_EVENT_COLUMNS: Final = "seq, tenant, incident_id, at, actor, kind, details"
_LOCK: Final = 0x736D6F7073  # "smops"


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _row(incident: Incident) -> list[Any]:
    sop = {
        step_id: {"done": s.done, "by": s.by, "at": s.at, "note": s.note}
        for step_id, s in incident.sop.items()
    }
    return [
        incident.tenant,
        incident.id,
        incident.type,
        incident.subtype,
        incident.severity,
        incident.status,
        incident.title,
        incident.description,
        None if incident.location is None else _dump(incident.location),
        incident.lon,
        incident.lat,
        incident.zone,
        incident.source,
        incident.source_ref,
        incident.reported_by,
        incident.assignee,
        _dump(list(incident.related)),
        _dump(list(incident.alerts)),
        _dump(sop),
        _dump(list(incident.causes)),
        incident.version,
        incident.created_at,
        incident.updated_at,
        incident.acknowledged_at,
        incident.resolved_at,
        incident.closed_at,
        incident.last_alert_at,
        incident.escalation_level,
        incident.escalated_at,
    ]


def _incident(row: Sequence[Any]) -> Incident:
    values = dict(zip(_COLUMN_NAMES, row, strict=True))
    location = values.pop("location")
    return Incident(
        **{
            **values,
            "location": None if location is None else orjson.loads(location),
            "lon": None if values["lon"] is None else float(values["lon"]),
            "lat": None if values["lat"] is None else float(values["lat"]),
            "related": tuple(orjson.loads(values["related"])),
            "alerts": tuple(orjson.loads(values["alerts"])),
            "sop": {k: SopStep(**v) for k, v in orjson.loads(values["sop"]).items()},
            "causes": tuple(orjson.loads(values["causes"])),
            "version": int(values["version"]),
            "escalation_level": int(values["escalation_level"]),
        }
    )


def _event(row: Sequence[Any]) -> TimelineEvent:
    seq, tenant, incident_id, at, actor, kind, details = row
    return TimelineEvent(tenant, incident_id, at, actor, kind, orjson.loads(details), int(seq))


def _share(row: Sequence[Any]) -> VideoShare:
    tenant, share_id, incident_id, principal_id, name, cameras, grants, *rest = row
    by, granted_at, expires_at, ended_at = rest
    return VideoShare(
        id=share_id,
        tenant=tenant,
        incident_id=incident_id,
        principal_id=principal_id,
        principal_name=name,
        camera_ids=tuple(orjson.loads(cameras)),
        share_ids=tuple(orjson.loads(grants)),
        granted_by=by,
        granted_at=granted_at,
        expires_at=expires_at,
        ended_at=ended_at,
    )


class IncidentWrite:
    """The writes of one transaction on incidents (see `SqlIncidentStore.write`)."""

    def __init__(self, cursor: Cursor, placeholder: str) -> None:
        self.cursor = cursor
        self._p = placeholder

    def incident_for_key(self, tenant: str, key: str) -> Incident | None:
        """Return the incident an idempotency key names, if any."""
        p = self._p
        self.cursor.execute(
            f"SELECT i.{_COLUMNS.replace(', ', ', i.')} FROM incident_keys k JOIN incidents i "
            f"ON i.tenant = k.tenant AND i.id = k.incident_id WHERE k.tenant = {p} AND k.key = {p}",
            [tenant, key],
        )
        row = self.cursor.fetchone()
        return None if row is None else _incident(row)

    def get(self, tenant: str, incident_id: str) -> Incident | None:
        """Return an incident as this transaction sees it."""
        p = self._p
        self.cursor.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE tenant = {p} AND id = {p}",
            [tenant, incident_id],
        )
        row = self.cursor.fetchone()
        return None if row is None else _incident(row)

    def open_of_type(self, tenant: str, incident_type: str, since: str) -> list[Incident]:
        """Return the open incidents of a type that took an alert (or began) since a time."""
        p = self._p
        self.cursor.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE tenant = {p} AND type = {p} "
            f"AND status IN ({p}, {p}, {p}) AND COALESCE(last_alert_at, created_at) >= {p} "
            "ORDER BY created_at, id",
            [tenant, incident_type, "new", "acknowledged", "in-progress", since],
        )
        return [_incident(row) for row in self.cursor.fetchall()]

    def insert(self, incident: Incident, keys: Sequence[str] = ()) -> None:
        """Store a new incident and its idempotency keys."""
        marks = ", ".join([self._p] * len(_COLUMN_NAMES))
        self.cursor.execute(f"INSERT INTO incidents ({_COLUMNS}) VALUES ({marks})", _row(incident))
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
        names = _COLUMN_NAMES[2:]
        values = _row(incident)[2:]
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
            [(e.tenant, e.incident_id, e.at, e.actor, e.kind, _dump(e.details)) for e in events],
        )

    def add_share(self, share: VideoShare) -> None:
        """Store a video share."""
        marks = ", ".join([self._p] * 11)
        self.cursor.execute(
            f"INSERT INTO incident_video_shares ({_SHARE_COLUMNS}) VALUES ({marks})",
            [
                share.tenant,
                share.id,
                share.incident_id,
                share.principal_id,
                share.principal_name,
                _dump(list(share.camera_ids)),
                _dump(list(share.share_ids)),
                share.granted_by,
                share.granted_at,
                share.expires_at,
                share.ended_at,
            ],
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
        self._postgres = store.dialect.name == "postgresql"
        ddl = _DDL.format(**_TYPES[store.dialect.name])
        with store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            for statement in ddl.split(";"):
                cursor.execute(statement)

    @contextmanager
    def write(self) -> Iterator[IncidentWrite]:
        """Open one write transaction on incidents (serialized with every other one)."""
        with self._store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            yield IncidentWrite(cursor, self._p)

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
                f"SELECT {_COLUMNS} FROM incidents WHERE {condition} "
                f"ORDER BY created_at DESC, id DESC LIMIT {self._p} OFFSET {self._p}",
                [*params, limit, offset],
            )
            return [_incident(row) for row in cursor.fetchall()]

    def count(self, tenant: str, where: IncidentFilter) -> int:
        """Return how many incidents of a tenant match a filter."""
        condition, params = self._where(tenant, where)
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM incidents WHERE {condition}", params)
            return int(cursor.fetchone()[0])

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
                f"SELECT {_COLUMNS} FROM incidents WHERE status = {p} AND created_at < {p} "
                f"ORDER BY created_at, tenant, id LIMIT {p}",
                ["new", created_before, limit],
            )
            return [_incident(row) for row in cursor.fetchall()]

    def timeline(self, tenant: str, incident_id: str) -> list[TimelineEvent]:
        """Return an incident's timeline, oldest first."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_EVENT_COLUMNS} FROM incident_events "
                f"WHERE tenant = {p} AND incident_id = {p} ORDER BY seq",
                [tenant, incident_id],
            )
            return [_event(row) for row in cursor.fetchall()]

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
                f"SELECT {_EVENT_COLUMNS} FROM incident_events WHERE {condition} "
                f"ORDER BY seq LIMIT {p}",
                [*params, limit],
            )
            return [_event(row) for row in cursor.fetchall()]

    def last_seq(self) -> int:
        """Return the position of the newest timeline event (0 when there is none)."""
        with self._store.reading() as cursor:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM incident_events")
            return int(cursor.fetchone()[0])

    def shares(
        self, tenant: str, incident_id: str | None = None, principal_id: str | None = None
    ) -> list[VideoShare]:
        """Return the video shares of a tenant, of one incident and/or one agency, oldest first."""
        p = self._p
        condition, params = f"tenant = {p}", [tenant]
        if incident_id is not None:
            condition += f" AND incident_id = {p}"
            params.append(incident_id)
        if principal_id is not None:
            condition += f" AND principal_id = {p}"
            params.append(principal_id)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_SHARE_COLUMNS} FROM incident_video_shares WHERE {condition} "
                "ORDER BY granted_at, id",
                params,
            )
            return [_share(row) for row in cursor.fetchall()]

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
