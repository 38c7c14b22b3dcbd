"""Incident intake: alerts from the rule engine (merged when related) and partner reports.

`open_or_merge` takes an `AlertFact`. An alert joins an open incident of the same type whose
location is within `merge_distance` metres and whose last alert came within `merge_minutes`
(the nearest such incident); otherwise it opens a new incident. Either way the alert's id is
kept as an idempotency key in the same transaction, so the same alert delivered twice (the bus
delivers at least once) never opens two incidents. A partner agency's 112 or 119 report is
idempotent by (agency principal, report id) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Final, Literal

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData
from smartcity.core.qlang import parse_datetime
from smartcity.operations.incidents import IncidentDraft, IncidentService, related_union, text
from smartcity.operations.places import distance_m, representative_point
from smartcity.operations.taxonomy import check_severity, check_type, higher, type_of_alert
from smartcity.storage.incidents import Incident, TimelineEvent

Outcome = Literal["created", "merged", "duplicate", "cleared", "unknown"]
CHANNELS: Final = {"112": "crime", "119": "fire"}
"""Partner channels and the incident type a report defaults to."""


@dataclass(frozen=True, slots=True)
class AlertFact:
    """What the rule engine says when it raises an alert (the Smart Data Models Alert's fields)."""

    alert_id: str
    rule_id: str
    category: str
    sub_category: str
    severity: str
    observed_at: str
    location: dict[str, Any] | None = None
    related: tuple[str, ...] = ()
    causes: tuple[dict[str, Any], ...] = ()
    """The causal chain: evidence entries (entity, change seq, observed time) of the firing."""
    description: str = ""
    zone: str = ""
    incident_type: str = ""
    """Set by a rule's `incident` action to choose the type instead of the category mapping."""
    incident_subtype: str = ""
    title: str = ""
    """The incident's title if the rule gave one (else the subcategory names it)."""

    @classmethod
    def from_json(cls, data: Any) -> AlertFact:
        """Read an alert fact from its JSON form (camelCase keys); BadRequestData if invalid."""
        if not isinstance(data, dict):
            raise BadRequestData("an alert fact is a JSON object")

        def string(name: str, required: bool = True) -> str:
            value = data.get(name, "")
            if not isinstance(value, str) or (required and not value):
                raise BadRequestData(f"an alert fact needs a text {name!r}")
            return value

        def strings(name: str) -> tuple[str, ...]:
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadRequestData(f"{name!r} must be a list of texts")
            return tuple(value)

        location = data.get("location")
        if location is not None and not isinstance(location, dict):
            raise BadRequestData("'location' must be a GeoJSON geometry")
        causes = data.get("causes", [])
        if not isinstance(causes, list) or not all(isinstance(c, dict) for c in causes):
            raise BadRequestData("'causes' must be a list of objects")
        return cls(
            alert_id=string("alertId"),
            rule_id=string("ruleId", required=False),
            category=string("category", required=False),
            sub_category=string("subCategory", required=False),
            severity=string("severity"),
            observed_at=string("observedAt"),
            location=location,
            related=strings("related"),
            causes=tuple(causes),
            description=string("description", required=False),
            zone=string("zone", required=False),
            incident_type=string("incidentType", required=False),
            incident_subtype=string("incidentSubtype", required=False),
            title=string("title", required=False),
        )


@dataclass(frozen=True, slots=True)
class AgencyReport:
    """A 112 (police) or 119 (fire) report sent by a partner agency's system."""

    channel: str
    report_id: str
    type: str = ""
    subtype: str = ""
    severity: str = "high"
    location: dict[str, Any] | None = None
    description: str = ""
    zone: str = ""
    reported_at: str = ""
    related: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Intake:
    """What intake did: the incident, and whether it was created, merged or a duplicate."""

    incident: Incident
    outcome: Outcome


class IncidentIntake:
    """Open or merge incidents from alerts; take partner agencies' reports."""

    def __init__(
        self, incidents: IncidentService, *, merge_distance: float, merge_minutes: float
    ) -> None:
        self.incidents = incidents
        self.store = incidents.store
        self.merge_distance = merge_distance
        self.merge_window = timedelta(minutes=merge_minutes)

    def open_or_merge(self, caller: Caller, alert: AlertFact) -> Intake:
        """Merge an alert into a related open incident or open one; idempotent by alert id."""
        require(caller, Permission.MANAGE_INCIDENTS)
        check_severity(alert.severity)
        observed = parse_datetime(alert.observed_at)
        if observed is None or observed.tzinfo is None:
            raise BadRequestData(f"observedAt {alert.observed_at!r} is not a UTC date-time")
        observed_at = isoformat(observed)
        if alert.incident_type:
            kind = (alert.incident_type, alert.incident_subtype)
        else:
            kind = type_of_alert(alert.category, alert.sub_category)
        check_type(*kind)
        point = representative_point(alert.location) if alert.location is not None else None
        key = f"alert:{alert.alert_id}"
        with self.store.write() as tx:
            existing = tx.incident_for_key(caller.tenant, key)
            if existing is not None:
                return Intake(existing, "duplicate")
            since = isoformat(observed - self.merge_window)
            target = self._nearest(tx.open_of_type(caller.tenant, kind[0], since), point)
            now = self.incidents.now()
            details = {
                "alertId": alert.alert_id,
                "ruleId": alert.rule_id,
                "severity": alert.severity,
                "observedAt": observed_at,
            }
            if target is None:
                draft = IncidentDraft(
                    type=kind[0],
                    subtype=kind[1],
                    severity=alert.severity,
                    title=_title(alert, kind),
                    description=text(alert.description, "description"),
                    location=alert.location,
                    zone=alert.zone,
                    related=alert.related,
                )
                incident = self.incidents.new_incident(
                    caller, draft, source="alert", source_ref=alert.alert_id
                )
                incident = replace(
                    incident,
                    alerts=(alert.alert_id,),
                    last_alert_at=observed_at,
                    causes=alert.causes,
                )
                tx.insert(incident, [key])
                tx.append(
                    [self._event(caller, incident, "created", now, source="alert", **details)]
                )
                return Intake(incident, "created")
            merged = replace(
                target,
                severity=higher(target.severity, alert.severity),
                related=related_union(target.related, alert.related),
                alerts=(*target.alerts, alert.alert_id),
                causes=(*target.causes, *alert.causes),
                last_alert_at=max(target.last_alert_at or "", observed_at),
                version=target.version + 1,
                updated_at=now,
            )
            tx.update(merged, target.version)
            tx.add_keys(caller.tenant, target.id, [key])
            tx.append([self._event(caller, merged, "alert-merged", now, **details)])
            return Intake(merged, "merged")

    def _nearest(
        self, candidates: list[Incident], point: tuple[float, float] | None
    ) -> Incident | None:
        """Return the open incident an alert at `point` joins: the nearest within the distance.

        An alert without a location joins only an incident without one (same type, in time).
        """
        best: tuple[float, Incident] | None = None
        for incident in candidates:
            if point is None or incident.lon is None or incident.lat is None:
                if point is None and incident.lon is None:
                    return incident
                continue
            distance = distance_m(point, (incident.lon, incident.lat))
            if distance <= self.merge_distance and (best is None or distance < best[0]):
                best = (distance, incident)
        return None if best is None else best[1]

    def _event(
        self, caller: Caller, incident: Incident, kind: str, at: str, **details: Any
    ) -> TimelineEvent:
        return TimelineEvent(caller.tenant, incident.id, at, caller.subject, kind, details)

    def clear(self, caller: Caller, alert_id: str, observed_at: str) -> Intake | None:
        """Note on its incident that an alert's condition cleared (the incident stays as it is:
        an operator decides when it is resolved); None when no incident took that alert."""
        require(caller, Permission.MANAGE_INCIDENTS)
        with self.store.write() as tx:
            incident = tx.incident_for_key(caller.tenant, f"alert:{alert_id}")
            if incident is None:
                return None
            details = {"alertId": alert_id, "observedAt": observed_at}
            tx.append(
                [self._event(caller, incident, "alert-cleared", self.incidents.now(), **details)]
            )
        return Intake(incident, "cleared")

    def report(self, caller: Caller, report: AgencyReport) -> Intake:
        """Take a partner agency's 112/119 report; the same report twice is one incident."""
        require(caller, Permission.REPORT_INCIDENTS)
        if report.channel not in CHANNELS:
            raise BadRequestData(
                f"unknown channel {report.channel!r}; use one of " + ", ".join(CHANNELS)
            )
        report_id = text(report.report_id.strip(), "reportId", 100)
        if not report_id:
            raise BadRequestData("a report needs its reportId (the agency's own number)")
        if report.location is None:
            raise BadRequestData("a report needs a location (a GeoJSON geometry)")
        reporter = caller.principal_id or caller.subject
        key = f"report:{reporter}:{report_id}"
        incident_type = report.type or CHANNELS[report.channel]
        draft = IncidentDraft(
            type=incident_type,
            subtype=report.subtype,
            severity=report.severity,
            title=_report_title(report, incident_type),
            description=report.description,
            location=report.location,
            zone=report.zone,
            related=report.related,
        )
        with self.store.write() as tx:
            existing = tx.incident_for_key(caller.tenant, key)
            if existing is not None:
                return Intake(existing, "duplicate")
            incident = self.incidents.new_incident(
                caller,
                draft,
                source=report.channel,
                source_ref=report_id,
                reported_by=caller.principal_id,
            )
            tx.insert(incident, [key])
            event = self._event(
                caller,
                incident,
                "created",
                self.incidents.now(),
                source=report.channel,
                reportId=report_id,
                reportedAt=report.reported_at,
            )
            tx.append([event])
        return Intake(incident, "created")


def _title(alert: AlertFact, kind: tuple[str, str]) -> str:
    what = alert.title or alert.sub_category or alert.category or kind[0]
    where = f" ({alert.zone})" if alert.zone else ""
    return f"{what}{where}"[:200]


def _report_title(report: AgencyReport, incident_type: str) -> str:
    what = report.subtype or incident_type
    return f"{report.channel} {what} #{report.report_id}"[:200]
