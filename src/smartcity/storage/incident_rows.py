"""Incident tables: their DDL per dialect and how rows map to the stored dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from smartcity.storage.incidents import (
    DispatchPackage,
    Incident,
    SopStep,
    TimelineEvent,
    VideoShare,
)

DDL: Final = """
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
CREATE TABLE IF NOT EXISTS incident_packages (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    incident_id {text} NOT NULL,
    kind TEXT NOT NULL,
    principal_id {text} NOT NULL,
    principal_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS incident_packages_incident ON incident_packages (tenant, incident_id);
CREATE INDEX IF NOT EXISTS incident_packages_principal ON incident_packages (tenant, principal_id);
CREATE TABLE IF NOT EXISTS incident_positions (
    name {text} PRIMARY KEY,
    seq BIGINT NOT NULL
)
"""
DIALECT_TYPES: Final = {
    "sqlite": {"text": "TEXT", "real": "REAL", "seq": "seq INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {
        "text": 'TEXT COLLATE "C"',
        "real": "DOUBLE PRECISION",
        "seq": "seq BIGSERIAL PRIMARY KEY",
    },
}
COLUMNS: Final = (
    "tenant, id, type, subtype, severity, status, title, description, location, lon, lat, "
    "zone, source, source_ref, reported_by, assignee, related, alerts, sop, causes, version, "
    "created_at, updated_at, acknowledged_at, resolved_at, closed_at, last_alert_at, "
    "escalation_level, escalated_at"
)
COLUMN_NAMES: Final = [name.strip() for name in COLUMNS.split(",")]
SHARE_COLUMNS: Final = (
    "tenant, id, incident_id, principal_id, principal_name, camera_ids, share_ids, granted_by, "
    "granted_at, expires_at, ended_at"
)
EVENT_COLUMNS: Final = "seq, tenant, incident_id, at, actor, kind, details"
PACKAGE_COLUMNS: Final = (
    "tenant, id, incident_id, kind, principal_id, principal_name, created_by, created_at, body"
)


def dump(value: Any) -> str:
    """Return JSON text."""
    return orjson.dumps(value).decode()


def incident_row(incident: Incident) -> list[Any]:
    """Return the column values of an incident, in COLUMNS order."""
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
        None if incident.location is None else dump(incident.location),
        incident.lon,
        incident.lat,
        incident.zone,
        incident.source,
        incident.source_ref,
        incident.reported_by,
        incident.assignee,
        dump(list(incident.related)),
        dump(list(incident.alerts)),
        dump(sop),
        dump(list(incident.causes)),
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


def incident_from_row(row: Sequence[Any]) -> Incident:
    """Return the incident of a row of COLUMNS."""
    values = dict(zip(COLUMN_NAMES, row, strict=True))
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


def event_from_row(row: Sequence[Any]) -> TimelineEvent:
    """Return the timeline event of a row of EVENT_COLUMNS."""
    seq, tenant, incident_id, at, actor, kind, details = row
    return TimelineEvent(tenant, incident_id, at, actor, kind, orjson.loads(details), int(seq))


def share_from_row(row: Sequence[Any]) -> VideoShare:
    """Return the video share of a row of SHARE_COLUMNS."""
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


def package_row(package: DispatchPackage) -> list[Any]:
    """Return the column values of a dispatch package, in PACKAGE_COLUMNS order."""
    return [
        package.tenant,
        package.id,
        package.incident_id,
        package.kind,
        package.principal_id,
        package.principal_name,
        package.created_by,
        package.created_at,
        dump(package.body),
    ]


def package_from_row(row: Sequence[Any]) -> DispatchPackage:
    """Return the dispatch package of a row of PACKAGE_COLUMNS."""
    tenant, package_id, incident_id, kind, principal_id, name, by, at, body = row
    return DispatchPackage(
        id=package_id,
        tenant=tenant,
        incident_id=incident_id,
        kind=kind,
        principal_id=principal_id,
        principal_name=name,
        created_by=by,
        created_at=at,
        body=orjson.loads(body),
    )
