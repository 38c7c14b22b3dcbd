"""Incidents as stored: the incident row, its timeline events, its video shares, what they list.

The operations service (`smartcity.operations`) owns the rules; this module only says what is
kept. An incident is one row with a `version` that every change increments (optimistic
concurrency); its timeline is append-only; its video shares say which agency may see which
cameras until when. Every query names its tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

NEW: Final = "new"
ACKNOWLEDGED: Final = "acknowledged"
IN_PROGRESS: Final = "in-progress"
RESOLVED: Final = "resolved"
CLOSED: Final = "closed"
STATUSES: Final = (NEW, ACKNOWLEDGED, IN_PROGRESS, RESOLVED, CLOSED)
OPEN_STATUSES: Final = (NEW, ACKNOWLEDGED, IN_PROGRESS)
"""Statuses in which an incident takes new alerts (merging) and can escalate."""


@dataclass(frozen=True, slots=True)
class SopStep:
    """The state of one checklist step on one incident."""

    done: bool = False
    by: str = ""
    at: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident, as stored."""

    id: str
    tenant: str
    type: str
    """The incident type of the taxonomy (`crime`, `fire`, ...; see operations/taxonomy.py)."""
    subtype: str
    """A finer kind within the type (`assault`, `missing-child`, ...) or ''."""
    severity: str
    """Smart Data Models Alert severity: informational, low, medium, high, critical."""
    status: str
    title: str
    description: str
    location: dict[str, Any] | None
    """A GeoJSON geometry (a Point for almost every incident)."""
    lon: float | None
    lat: float | None
    """The location's representative point (for distances and boxes)."""
    zone: str
    source: str
    """How it came: 'alert', 'operator', '112', '119'."""
    source_ref: str
    """The first alert's id, the partner's report id, or ''."""
    reported_by: str
    """The principal id of the agency that reported it ('' otherwise)."""
    assignee: str
    related: tuple[str, ...]
    """Entity ids the incident is about (sensors, cameras, Alert entities)."""
    alerts: tuple[str, ...]
    """The ids of the alerts merged into it, oldest first."""
    sop: dict[str, SopStep]
    """The checklist's steps by step id."""
    version: int
    created_at: str
    updated_at: str
    acknowledged_at: str | None = None
    resolved_at: str | None = None
    closed_at: str | None = None
    last_alert_at: str | None = None
    escalation_level: int = 0
    escalated_at: str | None = None
    causes: tuple[dict[str, Any], ...] = ()
    """The causal chain of its alerts (rule, evidence), for following back to the readings."""


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One step on an incident's timeline: what happened, who did it, when."""

    tenant: str
    incident_id: str
    at: str
    actor: str
    kind: str
    """created, alert-merged, acknowledged, started, resolved, closed, reopened, assigned,
    commented, sop-checked, sop-unchecked, share-granted, share-ended, link-issued,
    camera-viewed, escalated, changed, package-sent, green-wave-requested, sos-received,
    guardian-notified, message-queued."""
    details: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    """Its position in the platform-wide timeline (set when stored)."""


@dataclass(frozen=True, slots=True)
class VideoShare:
    """Cameras of one incident shared with one agency principal until a time."""

    id: str
    tenant: str
    incident_id: str
    principal_id: str
    principal_name: str
    camera_ids: tuple[str, ...]
    share_ids: tuple[str, ...]
    """The access-control grants (storage/accounts.py ShareRecord) made for the cameras."""
    granted_by: str
    granted_at: str
    expires_at: str
    ended_at: str | None = None

    def active_at(self, now: str) -> bool:
        """Tell whether the share lets its agency see its cameras at `now`."""
        return self.ended_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class DispatchPackage:
    """What the operations center sent an agency about an incident (escape routes, a fire
    site package, a disaster package, a vulnerable person's trail), as it was sent."""

    id: str
    tenant: str
    incident_id: str
    kind: str
    """escape-routes, fire-site, disaster, vulnerable-person."""
    principal_id: str
    """The agency principal it was sent to ('' when kept for the operators only)."""
    principal_name: str
    created_by: str
    created_at: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Which incidents of a tenant a list asks for (every field optional)."""

    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    zone: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    """min lon, min lat, max lon, max lat."""
    assignee: str | None = None
    ids: tuple[str, ...] | None = None
    """Only these ids (an agency's visibility); an empty tuple matches nothing."""
