"""Incidents: who may see which, opening one by hand, the lifecycle, assignment, comments, SOPs.

Roles and tenants are enforced here, whatever calls (HTTP, CLI, workers). Operators and admins
manage incidents; analysts read them; an agency principal (police, fire) sees only the
incidents it reported, that have an active video share with it or that it was sent a dispatch
package of, and any other id reads as missing. Every change runs in one transaction that checks
the incident's version, so two operators acting at once never overwrite each other: the second
gets a 409 that says why.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from smartcity.auth.policy import AccessControl, Permission, allowed, denied, require
from smartcity.auth.principal import Caller, Role
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound, TooManyResults
from smartcity.operations.places import representative_point
from smartcity.operations.sop import Procedures
from smartcity.operations.taxonomy import check_severity, check_type
from smartcity.storage.incidents import (
    ACKNOWLEDGED,
    CLOSED,
    IN_PROGRESS,
    NEW,
    RESOLVED,
    Incident,
    IncidentFilter,
    SopStep,
    TimelineEvent,
)
from smartcity.storage.sqlincidents import IncidentWrite, SqlIncidentStore

TRANSITIONS: Final = {
    "acknowledge": ((NEW,), ACKNOWLEDGED),
    "start": ((NEW, ACKNOWLEDGED), IN_PROGRESS),
    "resolve": ((ACKNOWLEDGED, IN_PROGRESS), RESOLVED),
    "close": ((NEW, ACKNOWLEDGED, IN_PROGRESS, RESOLVED), CLOSED),
    "reopen": ((RESOLVED, CLOSED), IN_PROGRESS),
}
"""Lifecycle actions: the statuses each may start from, and where it leads."""
EVENT_OF: Final = {
    "acknowledge": "acknowledged",
    "start": "started",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
}
MAX_TEXT: Final = 4000

Mutation = Callable[[Incident, IncidentWrite], tuple[Incident, list[TimelineEvent]]]


VIDEO_EVENTS: Final = frozenset(
    {"share-granted", "share-ended", "link-issued", "camera-viewed", "package-sent"}
)
"""Events an agency sees only when they are its own (video and dispatch packages)."""


def shows(caller: Caller, event: TimelineEvent) -> bool:
    """Tell whether a timeline event is for the caller's eyes.

    Staff see every event. An agency sees the lifecycle and comments, but of the video and
    package events only its own: not which cameras or packages another agency was given.
    """
    if caller.has(Role.ADMIN, Role.OPERATOR, Role.ANALYST) or event.kind not in VIDEO_EVENTS:
        return True
    return caller.subject in (event.actor, event.details.get("agency"))


def allowed_actions(status: str) -> list[str]:
    """Return the lifecycle actions possible from a status."""
    return [action for action, (sources, _) in TRANSITIONS.items() if status in sources]


@dataclass(frozen=True, slots=True)
class IncidentDraft:
    """What opening an incident needs (by an operator, from an alert or a partner's report)."""

    type: str
    severity: str
    title: str
    subtype: str = ""
    description: str = ""
    location: dict[str, Any] | None = None
    zone: str = ""
    related: tuple[str, ...] = ()
    assignee: str = ""


def actor_of(caller: Caller) -> str:
    """Name who acts on the timeline: the principal's name (or 'system')."""
    return caller.subject


def text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    """Return a text field once checked for length."""
    if len(value) > limit:
        raise BadRequestData(f"{what} is longer than {limit} characters")
    return value


class IncidentService:
    """Read and change incidents on behalf of a caller."""

    def __init__(
        self,
        store: SqlIncidentStore,
        access: AccessControl,
        clock: Clock,
        procedures: Procedures,
        *,
        max_limit: int = 1000,
    ) -> None:
        self.store = store
        self.access = access
        self.clock = clock
        self.procedures = procedures
        self.max_limit = max_limit

    def now(self) -> str:
        """Return the current time as stored."""
        return isoformat(self.clock.now())

    # -- visibility -------------------------------------------------------------------------

    def visible_ids(self, caller: Caller) -> frozenset[str] | None:
        """Return the incident ids an agency may see, or None when the caller sees them all."""
        require(caller, Permission.READ_INCIDENTS)
        if caller.has(Role.ADMIN, Role.OPERATOR, Role.ANALYST):
            return None
        if not caller.principal_id:
            return frozenset()
        now = self.now()
        shared = {
            s.incident_id
            for s in self.store.shares(caller.tenant, principal_id=caller.principal_id)
            if s.active_at(now)
        }
        sent = {
            p.incident_id for p in self.store.packages(caller.tenant, None, caller.principal_id)
        }
        reported = self.store.reported_by(caller.tenant, caller.principal_id)
        return frozenset(shared | sent | set(reported))

    def get(self, caller: Caller, incident_id: str) -> Incident:
        """Return an incident the caller may see; ResourceNotFound for any other id."""
        visible = self.visible_ids(caller)
        incident = self.store.get(caller.tenant, incident_id)
        if incident is None or (visible is not None and incident_id not in visible):
            raise ResourceNotFound(f"no incident {incident_id}", instance=incident_id)
        return incident

    def page(
        self, caller: Caller, where: IncidentFilter, limit: int, offset: int, count: bool = False
    ) -> tuple[list[Incident], int | None]:
        """Return a page of the incidents the caller may see (and how many match, if asked)."""
        visible = self.visible_ids(caller)
        if limit > self.max_limit:
            raise TooManyResults(f"limit {limit} is above the maximum of {self.max_limit}")
        if limit < 0 or offset < 0:
            raise BadRequestData("limit and offset must not be negative")
        if visible is not None:
            wanted = set(visible) if where.ids is None else set(where.ids) & visible
            where = replace(where, ids=tuple(sorted(wanted)))
        total = self.store.count(caller.tenant, where) if count else None
        page = self.store.page(caller.tenant, where, limit, offset) if limit else []
        return page, total

    def timeline(self, caller: Caller, incident_id: str) -> list[TimelineEvent]:
        """Return the timeline of an incident the caller may see (see `shows`)."""
        self.get(caller, incident_id)
        events = self.store.timeline(caller.tenant, incident_id)
        return [event for event in events if shows(caller, event)]

    # -- changes ----------------------------------------------------------------------------

    def change(
        self,
        caller: Caller,
        incident_id: str,
        mutate: Mutation,
        expected_version: int | None = None,
    ) -> Incident:
        """Apply one change to an incident in one transaction, checking its version."""
        with self.store.write() as tx:
            current = tx.get(caller.tenant, incident_id)
            if current is None:
                raise ResourceNotFound(f"no incident {incident_id}", instance=incident_id)
            if expected_version is not None and expected_version != current.version:
                raise Conflict(
                    f"incident {incident_id} is at version {current.version}, not "
                    f"{expected_version}: someone changed it; reload it and try again",
                    incident=incident_id,
                    version=current.version,
                )
            changed, events = mutate(current, tx)
            changed = replace(changed, version=current.version + 1, updated_at=self.now())
            tx.update(changed, current.version)
            tx.append(events)
        return changed

    def event(self, caller: Caller, incident: Incident, kind: str, **details: Any) -> TimelineEvent:
        """Return a timeline event by the caller on an incident, now."""
        return TimelineEvent(
            caller.tenant, incident.id, self.now(), actor_of(caller), kind, details
        )

    def create(self, caller: Caller, draft: IncidentDraft, *, source: str = "operator") -> Incident:
        """Open an incident by hand (operators and admins)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        with self.store.write() as tx:
            incident = self.new_incident(caller, draft, source=source)
            tx.insert(incident)
            tx.append([self.event(caller, incident, "created", source=source)])
        return incident

    def new_incident(
        self,
        caller: Caller,
        draft: IncidentDraft,
        *,
        source: str,
        source_ref: str = "",
        reported_by: str = "",
        at: str | None = None,
    ) -> Incident:
        """Build a new incident from a draft once its fields are checked."""
        check_type(draft.type, draft.subtype)
        check_severity(draft.severity)
        if not draft.title.strip():
            raise BadRequestData("an incident needs a title")
        point = representative_point(draft.location) if draft.location is not None else None
        now = self.now()
        steps = self.procedures.checklist(draft.type, draft.subtype)
        return Incident(
            id=f"INC-{now[:10].replace('-', '')}-{secrets.token_hex(4)}",
            tenant=caller.tenant,
            type=draft.type,
            subtype=draft.subtype,
            severity=draft.severity,
            status=NEW,
            title=text(draft.title.strip(), "title", 200),
            description=text(draft.description, "description"),
            location=draft.location,
            lon=None if point is None else point[0],
            lat=None if point is None else point[1],
            zone=text(draft.zone, "zone", 100),
            source=source,
            source_ref=source_ref,
            reported_by=reported_by,
            assignee=text(draft.assignee, "assignee", 200),
            related=tuple(dict.fromkeys(draft.related)),
            alerts=(),
            sop={step.id: SopStep() for step in steps},
            version=1,
            created_at=at or now,
            updated_at=now,
        )

    def transition(
        self,
        caller: Caller,
        incident_id: str,
        action: str,
        *,
        expected_version: int | None = None,
        note: str = "",
        on_close: Callable[[Incident, IncidentWrite], list[TimelineEvent]] | None = None,
    ) -> Incident:
        """Move an incident through its lifecycle; Conflict (409) names the allowed actions."""
        require(caller, Permission.MANAGE_INCIDENTS)
        if action not in TRANSITIONS:
            raise BadRequestData(f"unknown action {action!r}; use one of " + ", ".join(TRANSITIONS))
        sources, target = TRANSITIONS[action]
        note = text(note, "note")

        def mutate(incident: Incident, tx: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            if incident.status not in sources:
                allowed_now = allowed_actions(incident.status)
                raise Conflict(
                    f"cannot {action} incident {incident.id}: it is {incident.status}; from "
                    f"{incident.status} it can: " + (", ".join(allowed_now) or "nothing"),
                    status_now=incident.status,
                    allowed=allowed_now,
                )
            if action == "close" and incident.status != RESOLVED and not note.strip():
                raise BadRequestData(
                    "closing an incident that is not resolved needs a note saying why "
                    "(a false alarm, a duplicate, ...)"
                )
            now = self.now()
            changes: dict[str, Any] = {"status": target}
            if action == "acknowledge" or (action == "start" and incident.status == NEW):
                changes["acknowledged_at"] = now
            if action == "resolve":
                changes["resolved_at"] = now
            if action == "close":
                changes["closed_at"] = now
            if action == "reopen":
                changes.update(resolved_at=None, closed_at=None)
            details: dict[str, Any] = {"from": incident.status, "to": target}
            if note:
                details["note"] = note
            events = [self.event(caller, incident, EVENT_OF[action], **details)]
            if action == "close" and on_close is not None:
                events.extend(on_close(incident, tx))
            return replace(incident, **changes), events

        return self.change(caller, incident_id, mutate, expected_version)

    def assign(
        self,
        caller: Caller,
        incident_id: str,
        assignee: str,
        *,
        expected_version: int | None = None,
    ) -> Incident:
        """Assign an incident to someone (a name or a team; '' unassigns)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        assignee = text(assignee.strip(), "assignee", 200)

        def mutate(incident: Incident, _: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            self._open(incident, "assign")
            event = self.event(
                caller, incident, "assigned", to=assignee, previous=incident.assignee
            )
            return replace(incident, assignee=assignee), [event]

        return self.change(caller, incident_id, mutate, expected_version)

    def comment(self, caller: Caller, incident_id: str, body: str) -> TimelineEvent:
        """Add a comment to an incident's timeline (operators; an agency on what it sees)."""
        if not allowed(caller, Permission.MANAGE_INCIDENTS):
            if not caller.has(Role.AGENCY):
                raise denied(caller, "comment on incidents")
            self.get(caller, incident_id)  # an agency: only on incidents it may see
        body = text(body.strip(), "comment")
        if not body:
            raise BadRequestData("a comment needs text")
        made: list[TimelineEvent] = []

        def mutate(incident: Incident, _: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            made.append(self.event(caller, incident, "commented", text=body))
            return incident, made

        self.change(caller, incident_id, mutate)
        return made[0]

    def check_step(
        self,
        caller: Caller,
        incident_id: str,
        step_id: str,
        done: bool = True,
        *,
        note: str = "",
        expected_version: int | None = None,
    ) -> Incident:
        """Tick (or untick) one step of an incident's SOP checklist."""
        require(caller, Permission.MANAGE_INCIDENTS)
        note = text(note, "note")

        def mutate(incident: Incident, _: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            if step_id not in incident.sop:
                raise ResourceNotFound(
                    f"incident {incident.id} has no SOP step {step_id!r}; its steps: "
                    + ", ".join(incident.sop)
                )
            self._open(incident, "change the checklist of")
            step = SopStep(done, actor_of(caller), self.now(), note) if done else SopStep()
            kind = "sop-checked" if done else "sop-unchecked"
            details: dict[str, Any] = {"step": step_id}
            if note:
                details["note"] = note
            event = self.event(caller, incident, kind, **details)
            return replace(incident, sop={**incident.sop, step_id: step}), [event]

        return self.change(caller, incident_id, mutate, expected_version)

    def _open(self, incident: Incident, what: str) -> None:
        if incident.status == CLOSED:
            raise Conflict(
                f"cannot {what} incident {incident.id}: it is closed (reopen it first)",
                allowed=allowed_actions(CLOSED),
            )


def related_union(first: Sequence[str], more: Sequence[str]) -> tuple[str, ...]:
    """Return entity ids of both lists, in order, once each."""
    return tuple(dict.fromkeys([*first, *more]))


__all__ = ["IN_PROGRESS", "IncidentDraft", "IncidentService", "allowed_actions"]
