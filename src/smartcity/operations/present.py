"""Incidents, timelines, shares and cameras as JSON for clients (API, stream, dashboard)."""

from __future__ import annotations

from typing import Any

from smartcity.operations.cameras import NearbyCamera
from smartcity.operations.incidents import allowed_actions
from smartcity.operations.sop import Procedures
from smartcity.operations.taxonomy import TYPES
from smartcity.storage.incidents import Incident, TimelineEvent, VideoShare


def incident_json(incident: Incident, procedures: Procedures) -> dict[str, Any]:
    """Return an incident with its type's names, SOP checklist and possible actions."""
    kind = TYPES.get(incident.type)
    steps = procedures.checklist(incident.type, incident.subtype)
    labels = {step.id: step for step in steps}
    checklist = []
    for step_id, state in incident.sop.items():
        label = labels.get(step_id)
        checklist.append(
            {
                "id": step_id,
                "name": {"ko": label.ko, "en": label.en}
                if label
                else {"ko": step_id, "en": step_id},
                "done": state.done,
                "by": state.by or None,
                "at": state.at or None,
                "note": state.note or None,
            }
        )
    subtype_name = kind.subtypes.get(incident.subtype) if kind else None
    return {
        "id": incident.id,
        "type": incident.type,
        "typeName": {"ko": kind.ko, "en": kind.en} if kind else None,
        "subtype": incident.subtype or None,
        "subtypeName": {"ko": subtype_name[0], "en": subtype_name[1]} if subtype_name else None,
        "severity": incident.severity,
        "status": incident.status,
        "actions": allowed_actions(incident.status),
        "title": incident.title,
        "description": incident.description,
        "location": incident.location,
        "zone": incident.zone or None,
        "source": incident.source,
        "sourceRef": incident.source_ref or None,
        "assignee": incident.assignee or None,
        "related": list(incident.related),
        "alerts": list(incident.alerts),
        "causes": list(incident.causes),
        "sop": checklist,
        "version": incident.version,
        "createdAt": incident.created_at,
        "updatedAt": incident.updated_at,
        "acknowledgedAt": incident.acknowledged_at,
        "resolvedAt": incident.resolved_at,
        "closedAt": incident.closed_at,
        "lastAlertAt": incident.last_alert_at,
        "escalationLevel": incident.escalation_level,
        "escalatedAt": incident.escalated_at,
    }


def event_json(event: TimelineEvent) -> dict[str, Any]:
    """Return one timeline event."""
    return {
        "seq": event.seq,
        "incidentId": event.incident_id,
        "at": event.at,
        "actor": event.actor,
        "event": event.kind,
        "details": event.details,
    }


def share_json(share: VideoShare, now: str) -> dict[str, Any]:
    """Return one video share, saying whether it is active now."""
    return {
        "id": share.id,
        "incidentId": share.incident_id,
        "agency": share.principal_name,
        "cameras": list(share.camera_ids),
        "grantedBy": share.granted_by,
        "grantedAt": share.granted_at,
        "expiresAt": share.expires_at,
        "endedAt": share.ended_at,
        "active": share.active_at(now),
    }


def camera_json(camera: NearbyCamera) -> dict[str, Any]:
    """Return one camera near an incident."""
    return {
        "id": camera.id,
        "name": camera.name,
        "location": camera.location,
        "distance": camera.distance,
        "viewDirection": camera.view_direction,
        "facesIncident": camera.faces_incident,
        "usage": camera.usage or None,
    }
