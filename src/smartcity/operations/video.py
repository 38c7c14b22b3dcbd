"""112 emergency video support (112 긴급영상지원): cameras near an incident, shared with an agency
for a limited time, seen through signed links; every link and view on the timeline and audited.

Video stays on the video management system: cameras are `Camera` entities whose `streamURL`
names their stream; the platform only brokers access. For an incident of a qualifying type
(`ops_video_types`) an operator lists the cameras within `ops_video_radius` metres, nearest
first, with their view direction, and shares chosen ones with an agency principal until a time.
The share is also an access-control grant per camera (auth/policy.py), so the agency reads
exactly those Camera entities; a video link is issued only for a camera of one of its active
shares, and any other camera id reads as missing (404), so guessing ids tells nothing. Closing
the incident ends its shares at once, and their links stop opening.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from smartcity.auth.policy import AccessControl, Permission, allowed, require
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import isoformat
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound
from smartcity.operations.cameras import NearbyCamera, attribute, cameras_around, is_camera
from smartcity.operations.incidents import IncidentService, text
from smartcity.operations.links import LinkClaims, LinkSigner
from smartcity.operations.taxonomy import qualifies
from smartcity.storage.accounts import ShareRecord
from smartcity.storage.incidents import CLOSED, RESOLVED, Incident, TimelineEvent, VideoShare
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlincidents import IncidentWrite

MODES: Final = ("live", "recorded")


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """The video-access settings (`ops_video_*`)."""

    types: tuple[str, ...]
    radius: float
    max_cameras: int
    share_minutes: float
    link_seconds: float


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A signed link and until when it works."""

    token: str
    expires_at: str
    claims: LinkClaims


class VideoService:
    """Brokers access to cameras' video for incidents."""

    def __init__(
        self,
        incidents: IncidentService,
        entities: SqlEntityStore,
        access: AccessControl,
        signer: LinkSigner,
        options: VideoOptions,
    ) -> None:
        self.incidents = incidents
        self.store = incidents.store
        self.entities = entities
        self.access = access
        self.signer = signer
        self.options = options

    def qualifying(self, incident: Incident) -> bool:
        """Tell whether an incident's type qualifies for emergency video support."""
        return qualifies(incident.type, incident.subtype, list(self.options.types))

    def _qualified(self, caller: Caller, incident_id: str) -> Incident:
        incident = self.incidents.get(caller, incident_id)
        if not self.qualifying(incident):
            raise Conflict(
                f"incident {incident_id} is {incident.type}"
                + (f"/{incident.subtype}" if incident.subtype else "")
                + ", which does not qualify for emergency video support (qualifying: "
                + ", ".join(self.options.types)
                + ")"
            )
        return incident

    def cameras_near(
        self, caller: Caller, incident_id: str, radius: float | None = None
    ) -> list[NearbyCamera]:
        """Return the cameras within the radius of an incident, nearest first."""
        require(caller, Permission.SHARE_VIDEO)
        incident = self._qualified(caller, incident_id)
        if incident.lon is None or incident.lat is None:
            raise Conflict(f"incident {incident_id} has no location: no cameras can be near it")
        radius = self.options.radius if radius is None else radius
        if not 0 < radius <= self.options.radius:
            raise BadRequestData(f"radius must be above 0 and at most {self.options.radius} m")
        here = (incident.lon, incident.lat)
        cameras = cameras_around(self.entities, caller.tenant, here, radius)
        return cameras[: self.options.max_cameras]

    def shares(self, caller: Caller, incident_id: str) -> list[VideoShare]:
        """Return an incident's video shares (an agency: only its own active ones)."""
        self.incidents.get(caller, incident_id)
        shares = self.store.shares(caller.tenant, incident_id=incident_id)
        if allowed(caller, Permission.SHARE_VIDEO):
            return shares
        now = self.incidents.now()
        return [s for s in shares if s.principal_id == caller.principal_id and s.active_at(now)]

    def share(
        self,
        caller: Caller,
        incident_id: str,
        agency: str,
        camera_ids: list[str],
        minutes: float | None = None,
    ) -> VideoShare:
        """Share chosen cameras near an incident with an agency principal for a limited time."""
        require(caller, Permission.SHARE_VIDEO)
        incident = self._qualified(caller, incident_id)
        if incident.status in (RESOLVED, CLOSED):
            raise Conflict(f"incident {incident_id} is {incident.status}: nothing more to share")
        minutes = self.options.share_minutes if minutes is None else minutes
        if not 0 < minutes <= self.options.share_minutes:
            raise BadRequestData(
                f"minutes must be above 0 and at most {self.options.share_minutes:g}"
            )
        wanted = list(dict.fromkeys(camera_ids))
        if not wanted:
            raise BadRequestData("choose at least one camera to share")
        near = {c.id for c in self.cameras_near(caller, incident_id)}
        far = [c for c in wanted if c not in near]
        if far:
            raise BadRequestData(
                "only cameras listed near the incident can be shared; not near it: "
                + ", ".join(far)
            )
        principal = self.access.accounts.principal_by_name(agency)
        if principal is None or Role.AGENCY.value not in self.access.accounts.roles(
            principal.id, caller.tenant
        ):
            raise BadRequestData(f"{agency!r} is no agency principal of this tenant")
        now = self.incidents.clock.now()
        expires_at = isoformat(now + timedelta(minutes=minutes))
        grants = [
            ShareRecord(
                id=secrets.token_hex(8),
                tenant=caller.tenant,
                principal_id=principal.id,
                entity_id=camera,
                entity_type=None,
                expires_at=expires_at,
                created_at=isoformat(now),
                created_by=caller.subject,
            )
            for camera in wanted
        ]
        share = VideoShare(
            id=secrets.token_hex(8),
            tenant=caller.tenant,
            incident_id=incident_id,
            principal_id=principal.id,
            principal_name=principal.name,
            camera_ids=tuple(wanted),
            share_ids=tuple(g.id for g in grants),
            granted_by=caller.subject,
            granted_at=isoformat(now),
            expires_at=expires_at,
        )
        # The grants first: should the incident's transaction fail, they lapse on their own.
        for grant in grants:
            self.access.accounts.add_share(grant)
        with self.store.write() as tx:
            tx.add_share(share)
            event = self.incidents.event(
                caller,
                incident,
                "share-granted",
                share=share.id,
                agency=principal.name,
                cameras=list(wanted),
                until=expires_at,
            )
            tx.append([event])
            self.access.record_in(tx.cursor, caller, "video.share", [(c, "ok") for c in wanted])
        return share

    def end_share(self, caller: Caller, incident_id: str, share_id: str) -> None:
        """End one video share of an incident now."""
        require(caller, Permission.SHARE_VIDEO)
        incident = self.incidents.get(caller, incident_id)
        share = next(
            (s for s in self.store.shares(caller.tenant, incident_id) if s.id == share_id), None
        )
        if share is None:
            raise ResourceNotFound(f"incident {incident_id} has no share {share_id}")
        if share.ended_at is not None:
            return
        with self.store.write() as tx:
            tx.append(self._end(caller, incident, tx, [share], reason="ended by an operator"))
        self.withdraw(caller.tenant, share.share_ids)

    def end_all(
        self, caller: Caller, incident: Incident, tx: IncidentWrite, grants: list[str]
    ) -> list[TimelineEvent]:
        """End every share of an incident inside its closing transaction; return the events.

        The ids of their access-control grants are added to `grants`: `withdraw` them once
        the transaction has committed (the ended shares already stop every link).
        """
        shares = [s for s in self.store.shares(caller.tenant, incident.id) if s.ended_at is None]
        for share in shares:
            grants.extend(share.share_ids)
        return self._end(caller, incident, tx, shares, reason="the incident closed")

    def withdraw(self, tenant: str, grants: Sequence[str]) -> None:
        """Delete access-control grants of ended shares (the agency stops seeing the cameras)."""
        for grant in grants:
            self.access.accounts.delete_share(tenant, grant)

    def _end(
        self,
        caller: Caller,
        incident: Incident,
        tx: IncidentWrite,
        shares: list[VideoShare],
        reason: str,
    ) -> list[TimelineEvent]:
        now = self.incidents.now()
        events = []
        for share in shares:
            tx.end_shares(caller.tenant, incident.id, now, share.id)
            events.append(
                self.incidents.event(
                    caller,
                    incident,
                    "share-ended",
                    share=share.id,
                    agency=share.principal_name,
                    reason=reason,
                )
            )
        return events

    def link(
        self, caller: Caller, incident_id: str, camera_id: str, mode: str = "live", at: str = ""
    ) -> IssuedLink:
        """Issue a signed link to a camera's video for an incident (logged on its timeline)."""
        require(caller, Permission.VIEW_VIDEO)
        if mode not in MODES:
            raise BadRequestData(f"mode must be one of {', '.join(MODES)}")
        text(at, "at", 40)
        incident = self.incidents.get(caller, incident_id)
        now = self.incidents.clock.now()
        expires = now + timedelta(seconds=self.options.link_seconds)
        share_id = ""
        if allowed(caller, Permission.SHARE_VIDEO):
            camera = self.entities.get(caller.tenant, camera_id)
            if camera is None or not is_camera(camera):
                raise ResourceNotFound(f"no camera {camera_id}")
        else:
            share = self._share_for(caller, incident_id, camera_id)
            share_id = share.id
            expires = min(expires, datetime.fromisoformat(share.expires_at))
        claims = LinkClaims(
            tenant=caller.tenant,
            incident_id=incident_id,
            camera_id=camera_id,
            principal_id=caller.principal_id,
            subject=caller.subject,
            share_id=share_id,
            mode=mode,
            expires=int(expires.timestamp()),
            at=at,
        )
        token = self.signer.sign(claims)
        with self.store.write() as tx:
            tx.append(
                [
                    self.incidents.event(
                        caller,
                        incident,
                        "link-issued",
                        camera=camera_id,
                        mode=mode,
                        until=isoformat(expires),
                    )
                ]
            )
            self.access.record_in(tx.cursor, caller, "video.link", [(camera_id, "ok")])
        return IssuedLink(token, isoformat(expires), claims)

    def _share_for(self, caller: Caller, incident_id: str, camera_id: str) -> VideoShare:
        """Return the caller's active share of this camera for this incident; 404 otherwise."""
        now = self.incidents.now()
        for share in self.store.shares(caller.tenant, incident_id, caller.principal_id):
            if share.active_at(now) and camera_id in share.camera_ids:
                return share
        raise ResourceNotFound(f"no camera {camera_id} is shared with you for {incident_id}")

    def open(self, token: str) -> tuple[LinkClaims, StoredEntity, str]:
        """Check a link and that its grant still holds; log the view; return the camera and URL."""
        now = self.incidents.clock.now()
        claims = self.signer.verify(token, now)
        viewer = Caller(
            claims.subject,
            claims.tenant,
            frozenset(),
            PrincipalKind.USER,
            principal_id=claims.principal_id,
        )
        if not self.access.principal_may(claims.tenant, claims.principal_id, Permission.VIEW_VIDEO):
            self.access.record(viewer, "video.view", [(claims.camera_id, "denied")])
            raise Forbidden("the principal of this link may no longer view video")
        if claims.share_id:
            share = next(
                (
                    s
                    for s in self.store.shares(claims.tenant, claims.incident_id)
                    if s.id == claims.share_id
                ),
                None,
            )
            if share is None or not share.active_at(isoformat(now)):
                self.access.record(viewer, "video.view", [(claims.camera_id, "denied")])
                raise Forbidden("the video share behind this link has ended")
        camera = self.entities.get(claims.tenant, claims.camera_id)
        if camera is None or not is_camera(camera):
            raise ResourceNotFound(f"camera {claims.camera_id} no longer exists")
        incident = self.store.get(claims.tenant, claims.incident_id)
        if incident is None:
            raise ResourceNotFound(f"incident {claims.incident_id} no longer exists")
        with self.store.write() as tx:
            tx.append(
                [
                    TimelineEvent(
                        claims.tenant,
                        claims.incident_id,
                        isoformat(now),
                        claims.subject,
                        "camera-viewed",
                        {"camera": claims.camera_id, "mode": claims.mode},
                    )
                ]
            )
            self.access.record_in(tx.cursor, viewer, "video.view", [(claims.camera_id, "ok")])
        return claims, camera, str(attribute(camera, "streamURL") or "")
