"""Vulnerable-person support (사회적 약자 지원): an SOS from a registered child's or dementia
patient's wearable opens an incident with the person's location trail and the nearest cameras,
and notifies the guardian and the police.

Persons are registered by operators (personal data: only operators and admins read it; an
analyst or an agency never lists persons). The wearable is an entity like any device's, so its
`location` history is the trail: the last `ops_trail_minutes` before the SOS. An SOS comes from
the wearable service (`report-incidents`: an agency-role key of that service, or an operator);
a second SOS from the same wearable while its incident is open joins that incident. The police
(`ops_sos_agency`, if that names an agency principal) get a package with the trail, the
person's alias, kind and description, and the cameras near the last position; the guardian gets
a `guardian-notified` message, carried on the bus with the person's id, never the phone number:
the gateway that sends it reads the contact with its own operator credential.

A rule's alert about a registered wearable (the builtin `vulnerable-person-sos` and
`vulnerable-person-left-safe-zone` rules) takes the same path: the alert consumer hands it here
instead of opening a plain incident.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from smartcity.auth.policy import Permission, allowed, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.entity import LOCATION
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.core.geo import parse_geometry
from smartcity.operations.alerts import AlertFact, Intake
from smartcity.operations.assets import position_of
from smartcity.operations.cameras import cameras_around
from smartcity.operations.dispatch import Dispatch
from smartcity.operations.incidents import IncidentDraft, text
from smartcity.operations.places import representative_point
from smartcity.storage.history import InstanceWindow, SqlHistoryStore
from smartcity.storage.incidents import DispatchPackage, Incident
from smartcity.storage.persons import SqlPersonStore, VulnerablePerson
from smartcity.storage.sqlbase import SqlEntityStore

KINDS: Final = {
    "child": ("아동", "Child", "missing-child"),
    "dementia": ("치매 환자", "Person with dementia", "dementia-wandering"),
}
"""Person kinds: Korean and English names, and the incident subtype an SOS opens."""
PHONE: Final = re.compile(r"^\+?[0-9][0-9 -]{6,18}[0-9]$")
TRAIL_POINTS: Final = 500
SOS_CAMERAS: Final = 8
CAMERA_RADIUS: Final = 300.0


@dataclass(frozen=True, slots=True)
class PersonDraft:
    """What registering a person takes."""

    kind: str
    alias: str
    wearable: str
    guardian_name: str
    guardian_phone: str
    birth_year: int | None = None
    description: str = ""


def masked(phone: str) -> str:
    """Return a phone number with all but its last four digits hidden."""
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(0, len(digits) - 4) + "".join(digits[-4:])


def described(person: VulnerablePerson) -> dict[str, Any]:
    """Return who a person is, as responders see it in an SOS (no registration, no contact)."""
    ko, en, _ = KINDS.get(person.kind, (person.kind, person.kind, ""))
    return {
        "id": person.id,
        "kind": person.kind,
        "kindName": {"ko": ko, "en": en},
        "alias": person.alias,
        "birthYear": person.birth_year,
        "description": person.description,
    }


def person_json(person: VulnerablePerson, *, contact: bool) -> dict[str, Any]:
    """Return a person as JSON (with the guardian's contact only when asked)."""
    body = described(person) | {
        "wearable": person.wearable,
        "registeredBy": person.registered_by,
        "registeredAt": person.registered_at,
    }
    if contact:
        body["guardian"] = {"name": person.guardian_name, "phone": person.guardian_phone}
    return body


class VulnerableSupport:
    """Register vulnerable persons and take their wearables' SOS calls."""

    def __init__(
        self,
        dispatch: Dispatch,
        entities: SqlEntityStore,
        history: SqlHistoryStore,
        persons: SqlPersonStore,
        trail_minutes: float,
        agency: str = "",
    ) -> None:
        self.dispatch = dispatch
        self.entities = entities
        self.history = history
        self.persons = persons
        self.trail_minutes = trail_minutes
        self.agency = agency

    # -- the registry (operators and admins only) --------------------------------------------

    def register(self, caller: Caller, draft: PersonDraft) -> VulnerablePerson:
        """Register a person and their wearable."""
        require(caller, Permission.MANAGE_INCIDENTS)
        if draft.kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}")
        alias = text(draft.alias.strip(), "alias", 40)
        if not alias:
            raise BadRequestData("a person needs an alias (e.g. 김○○), never a full record")
        if not draft.wearable.strip():
            raise BadRequestData("a person needs the entity id of their wearable")
        if not PHONE.match(draft.guardian_phone.strip()):
            raise BadRequestData("guardianPhone must be a phone number (digits, spaces, dashes)")
        this_year = self.dispatch.incidents.clock.now().year
        if draft.birth_year is not None and not this_year - 120 <= draft.birth_year <= this_year:
            raise BadRequestData(f"birthYear must be from {this_year - 120} to {this_year}")
        person = VulnerablePerson(
            tenant=caller.tenant,
            id=f"VP-{secrets.token_hex(5)}",
            kind=draft.kind,
            alias=alias,
            birth_year=draft.birth_year,
            description=text(draft.description.strip(), "description", 300),
            wearable=text(draft.wearable.strip(), "wearable", 300),
            guardian_name=text(draft.guardian_name.strip(), "guardianName", 60),
            guardian_phone=draft.guardian_phone.strip(),
            registered_by=caller.subject,
            registered_at=self.dispatch.incidents.now(),
        )
        self.persons.add(person)
        self.dispatch.access.record(caller, "person.register", [(person.id, "ok")])
        return person

    def registered(self, caller: Caller) -> list[VulnerablePerson]:
        """Return the tenant's registered persons."""
        require(caller, Permission.MANAGE_INCIDENTS)
        return self.persons.all(caller.tenant)

    def get(self, caller: Caller, person_id: str) -> VulnerablePerson:
        """Return one person (its reading audited: it holds a guardian's contact)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        person = self.persons.get(caller.tenant, person_id)
        if person is None:
            raise ResourceNotFound(f"no person {person_id}")
        self.dispatch.access.record(caller, "person.read", [(person_id, "ok")])
        return person

    def remove(self, caller: Caller, person_id: str) -> None:
        """Remove a person's registration."""
        require(caller, Permission.MANAGE_INCIDENTS)
        if not self.persons.delete(caller.tenant, person_id):
            raise ResourceNotFound(f"no person {person_id}")
        self.dispatch.access.record(caller, "person.remove", [(person_id, "ok")])

    def worn(self, tenant: str) -> dict[str, str]:
        """Return the registered wearables of a tenant and their person's kind (for counts)."""
        return {p.wearable: p.kind for p in self.persons.all(tenant)}

    # -- SOS ---------------------------------------------------------------------------------

    def sos(
        self,
        caller: Caller,
        wearable: str,
        location: dict[str, Any] | None = None,
        at: str = "",
    ) -> tuple[Incident, str]:
        """Take an SOS from a wearable: open (or join) its incident, notify; return it and
        whether it was `created` or `joined`."""
        if not allowed(caller, Permission.REPORT_INCIDENTS):
            require(caller, Permission.MANAGE_INCIDENTS)
        person = self.persons.by_wearable(caller.tenant, wearable)
        if person is None:
            raise ResourceNotFound(f"no person is registered with wearable {wearable}")
        now = self.dispatch.incidents.clock.now()
        moment = _moment(at, now)
        where = self._where(caller.tenant, wearable, location)
        trail = self.trail(caller.tenant, wearable, moment)
        here = where or (trail[-1]["coordinates"] if trail else None)
        point = None if here is None else (float(here[0]), float(here[1]))
        system = Caller.system(caller.tenant)
        ko, en, subtype = KINDS[person.kind]
        draft = IncidentDraft(
            type="vulnerable-person",
            subtype=subtype,
            severity="high",
            title=f"SOS {ko} {person.alias}",
            description=f"SOS from the wearable of a registered {en.lower()}",
            location=None if point is None else {"type": "Point", "coordinates": list(point)},
            related=(wearable,),
        )
        # Look for the wearable's open incident and open one in the same (serialized) write,
        # so two SOS calls at once never open two incidents.
        with self.dispatch.store.write() as tx:
            open_one = next(
                (
                    i
                    for i in tx.open_of_type(caller.tenant, "vulnerable-person", "")
                    if i.source == "sos" and wearable in i.related
                ),
                None,
            )
            if open_one is not None:
                tx.append(
                    [
                        self.dispatch.incidents.event(
                            caller, open_one, "sos-received", person=person.id, at=isoformat(moment)
                        )
                    ]
                )
                return open_one, "joined"
            incident = self.dispatch.incidents.new_incident(system, draft, source="sos")
            tx.insert(incident)
            tx.append([self.dispatch.incidents.event(system, incident, "created", source="sos")])
        cameras = (
            []
            if point is None
            else [
                {"id": c.id, "name": c.name, "distance": c.distance, "location": c.location}
                for c in cameras_around(self.entities, caller.tenant, point, CAMERA_RADIUS)
            ][:SOS_CAMERAS]
        )
        body = {
            "person": described(person),
            "sosAt": isoformat(moment),
            "lastPosition": None
            if point is None
            else {"type": "Point", "coordinates": list(point)},
            "trail": trail,
            "cameras": cameras,
        }
        agency = self.agency if self._is_agency(system, self.agency) else ""
        then_ko = "경찰에 알렸습니다" if agency else "관제센터에서 확인하고 있습니다"
        then_en = "the police are told" if agency else "the operations center is on it"
        guardian = self.dispatch.incidents.event(
            system,
            incident,
            "guardian-notified",
            person=person.id,
            channel="sms",
            to=masked(person.guardian_phone),
            ko=f"[통합관제센터] {person.alias}님의 긴급 호출(SOS)이 접수되어 {then_ko}.",
            en=f"[Operations center] An SOS from {person.alias} came in; {then_en}.",
        )
        self.dispatch.deliver(
            system,
            incident,
            "vulnerable-person",
            body,
            agency,
            extra=[guardian],
            person=person.id,
            trailPoints=len(trail),
        )
        return incident, "created"

    def take_alert(self, caller: Caller, fact: AlertFact) -> Intake | None:
        """Take a rule's alert about a registered wearable (its SOS button, its wearer out of
        the safe zone) as that wearable's SOS; None when it is about no registered wearable."""
        for entity_id in fact.related:
            if self.persons.by_wearable(caller.tenant, entity_id) is not None:
                incident, outcome = self.sos(caller, entity_id, fact.location, fact.observed_at)
                return Intake(incident, "created" if outcome == "created" else "merged")
        return None

    def send(self, caller: Caller, incident_id: str, agency: str) -> DispatchPackage:
        """Send an SOS incident's latest package (with a fresh trail) to an agency."""
        incident = self.dispatch.managed(caller, incident_id)
        kept = [
            p for p in self.dispatch.packages(caller, incident_id) if p.kind == "vulnerable-person"
        ]
        if not kept:
            raise Conflict(f"incident {incident_id} came from no SOS: it has no person's trail")
        if not agency:
            raise BadRequestData("name the agency principal to send the package to")
        body = dict(kept[-1].body)
        person = self.persons.get(caller.tenant, str(body["person"]["id"]))
        if person is not None:
            body["trail"] = self.trail(
                caller.tenant, person.wearable, self.dispatch.incidents.clock.now()
            )
        return self.dispatch.deliver(
            caller, incident, "vulnerable-person", body, agency, trailPoints=len(body["trail"])
        )

    def _is_agency(self, caller: Caller, name: str) -> bool:
        if not name:
            return False
        try:
            self.dispatch.agency(caller, name)
        except BadRequestData:
            return False
        return True

    def _where(
        self, tenant: str, wearable: str, location: dict[str, Any] | None
    ) -> tuple[float, float] | None:
        if location is not None:
            return representative_point(parse_geometry(location))
        entity = self.entities.get(tenant, wearable)
        return None if entity is None else position_of(entity)

    def trail(self, tenant: str, wearable: str, until: datetime) -> list[dict[str, Any]]:
        """Return the wearable's positions over `ops_trail_minutes` up to a moment, oldest
        first, from its location history."""
        entity = self.history.entity(tenant, wearable)
        if entity is None:
            return []
        since = until - timedelta(minutes=self.trail_minutes)
        window = InstanceWindow(
            attrs=[LOCATION],
            lower=int(since.timestamp() * 1_000_000),
            upper=int(until.timestamp() * 1_000_000) + 1,
            limit=TRAIL_POINTS,
        )
        points = []
        for record in self.history.instances([entity.key], window).get(entity.key, []):
            value = record.instance.get("value")
            if isinstance(value, dict) and value.get("type") == "Point":
                at = datetime.fromtimestamp(record.at / 1_000_000, tz=until.tzinfo)
                points.append(
                    {
                        "type": "Point",
                        "coordinates": value["coordinates"][:2],
                        "at": isoformat(at),
                    }
                )
        return points


def _moment(at: str, now: datetime) -> datetime:
    if not at:
        return now
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"at must be an ISO 8601 date-time, not {at!r}") from None
    if moment.tzinfo is None:
        raise BadRequestData("at needs a time zone (Z or an offset)")
    return min(moment, now)


__all__ = ["KINDS", "PersonDraft", "VulnerableSupport", "masked", "person_json"]
