"""Dispatch packages: what the operations center sends a partner agency about an incident.

A package (escape routes for 112, a fire site package for 119, a disaster package, a
vulnerable person's trail) is built from the platform's data at the moment it is sent and kept
as it was sent, attached to its incident; sending it is a `package-sent` event on the timeline
(so a fact on the bus, `operations.incident.package-sent.<tenant>`) and in the audit log, and it
ticks the SOP step it does (`send-escape-routes`, `send-site-package`, ...) in the same change.

Sending a package to an agency principal shares the incident with it: the agency then sees the
incident, its lifecycle and comments, and the packages sent to it, never those sent to another
agency; any other incident or package id reads as missing (404), as for video.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any, Final

from smartcity.auth.policy import AccessControl, Permission, allowed, require
from smartcity.auth.principal import Caller, Role
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.operations.incidents import IncidentService, Mutation
from smartcity.storage.accounts import PrincipalRecord
from smartcity.storage.incidents import (
    CLOSED,
    DispatchPackage,
    Incident,
    SopStep,
    TimelineEvent,
)
from smartcity.storage.sqlincidents import IncidentWrite

KINDS: Final = {
    "escape-routes": (
        "112 출동 지원: 현장 스냅샷·도주 예상 경로",
        "112 dispatch: scene snapshots, escape routes",
    ),
    "fire-site": ("119 출동 지원: 현장 정보 패키지", "119 dispatch: site package"),
    "disaster": ("재난 대응 패키지", "Disaster response package"),
    "vulnerable-person": ("사회적 약자 긴급 지원", "Vulnerable-person SOS"),
}
"""Package kinds and their Korean and English labels."""
STEP_OF: Final = {
    "escape-routes": "send-escape-routes",
    "fire-site": "send-site-package",
    "disaster": "send-disaster-package",
    "vulnerable-person": "send-trail-police",
}
"""The SOP step (operations/data/sop.yaml) that sending a package of a kind does."""
PERSONAL: Final = frozenset({"vulnerable-person"})
"""Package kinds that hold a person's data: only operators and their recipient read them."""


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """The linked services' settings (`ops_escape_*`, `ops_hydrant_radius`, ...)."""

    escape_distance: float = 1500.0
    escape_routes: int = 4
    route_camera_distance: float = 50.0
    hydrant_radius: float = 200.0
    violation_minutes: float = 120.0
    trail_minutes: float = 60.0


class Dispatch:
    """Keep and show dispatch packages, on behalf of a caller."""

    def __init__(self, incidents: IncidentService, access: AccessControl) -> None:
        self.incidents = incidents
        self.store = incidents.store
        self.access = access

    def agency(self, caller: Caller, name: str) -> PrincipalRecord:
        """Return the agency principal of the caller's tenant with this name (else 400)."""
        principal = self.access.accounts.principal_by_name(name)
        if principal is None or Role.AGENCY.value not in self.access.accounts.roles(
            principal.id, caller.tenant
        ):
            raise BadRequestData(f"{name!r} is no agency principal of this tenant")
        return principal

    def managed(self, caller: Caller, incident_id: str) -> Incident:
        """Return an incident the caller manages, open (not closed)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        incident = self.incidents.get(caller, incident_id)
        if incident.status == CLOSED:
            raise Conflict(f"incident {incident_id} is closed: reopen it to send anything")
        return incident

    def deliver(
        self,
        caller: Caller,
        incident: Incident,
        kind: str,
        body: dict[str, Any],
        agency: str = "",
        extra: list[TimelineEvent] | None = None,
        **details: Any,
    ) -> DispatchPackage:
        """Keep a package on its incident (sent to an agency, if named) in one transaction."""
        principal = self.agency(caller, agency) if agency else None
        package = DispatchPackage(
            id=secrets.token_hex(8),
            tenant=caller.tenant,
            incident_id=incident.id,
            kind=kind,
            principal_id=principal.id if principal else "",
            principal_name=principal.name if principal else "",
            created_by=caller.subject,
            created_at=self.incidents.now(),
            body=body,
        )
        event = self.incidents.event(
            caller,
            incident,
            "package-sent",
            package=package.id,
            packageKind=kind,
            agency=package.principal_name or None,
            **details,
        )
        self.incidents.change(
            caller, incident.id, self._keep(caller, package, [event, *(extra or [])])
        )
        return package

    def _keep(
        self, caller: Caller, package: DispatchPackage, events: list[TimelineEvent]
    ) -> Mutation:
        """Return the change that keeps a package and ticks its SOP step, if the incident's
        checklist has one (sent is done; a step already done keeps who did it first)."""
        step = STEP_OF.get(package.kind, "")

        def keep(current: Incident, tx: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            tx.add_package(package)
            self.access.record_in(
                tx.cursor, caller, f"dispatch.{package.kind}", [(current.id, "ok")]
            )
            if step not in current.sop or current.sop[step].done:
                return current, events
            done = SopStep(True, caller.subject, self.incidents.now(), f"package {package.id}")
            ticked = self.incidents.event(caller, current, "sop-checked", step=step)
            return replace(current, sop={**current.sop, step: done}), [*events, ticked]

        return keep

    def tick(self, caller: Caller, incident: Incident, step: str, note: str) -> None:
        """Tick an SOP step of an incident if it has it and it is not done yet."""
        if step not in incident.sop or incident.sop[step].done:
            return

        def mutate(current: Incident, _: IncidentWrite) -> tuple[Incident, list[TimelineEvent]]:
            if step not in current.sop or current.sop[step].done:
                return current, []
            done = SopStep(True, caller.subject, self.incidents.now(), note)
            ticked = self.incidents.event(caller, current, "sop-checked", step=step)
            return replace(current, sop={**current.sop, step: done}), [ticked]

        self.incidents.change(caller, incident.id, mutate)

    def packages(self, caller: Caller, incident_id: str) -> list[DispatchPackage]:
        """Return an incident's packages: operators all of them; analysts all but those that
        hold a person's data; an agency those sent to it."""
        self.incidents.get(caller, incident_id)
        if allowed(caller, Permission.MANAGE_INCIDENTS):
            return self.store.packages(caller.tenant, incident_id)
        if caller.has(Role.ANALYST):
            found = self.store.packages(caller.tenant, incident_id)
            return [p for p in found if p.kind not in PERSONAL]
        return self.store.packages(caller.tenant, incident_id, caller.principal_id or "-")

    def package(self, caller: Caller, incident_id: str, package_id: str) -> DispatchPackage:
        """Return one package of an incident the caller may see (any other id: 404)."""
        for package in self.packages(caller, incident_id):
            if package.id == package_id:
                return package
        raise ResourceNotFound(f"incident {incident_id} has no package {package_id}")


def package_json(package: DispatchPackage) -> dict[str, Any]:
    """Return a package as JSON, with its kind's Korean and English labels."""
    ko, en = KINDS.get(package.kind, (package.kind, package.kind))
    return {
        "id": package.id,
        "incidentId": package.incident_id,
        "kind": package.kind,
        "kindName": {"ko": ko, "en": en},
        "agency": package.principal_name or None,
        "createdBy": package.created_by,
        "createdAt": package.created_at,
        "body": package.body,
    }
