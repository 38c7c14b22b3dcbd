"""112 dispatch support (112 출동 지원): scene snapshots and a suspect's possible escape routes.

From the incident's scene the road network gives the k distinct routes out (up to
`ops_escape_distance` along the roads, or to where a road leaves the district), fastest first,
each with the cameras within `ops_route_camera_distance` metres of it in the order a fleeing
suspect passes them: where the police look next. The snapshots are stills, at the moment the
package is made, of the cameras nearest the scene that face it; the police open them through
the package (`.../packages/{id}/snapshots/{camera}`), and the video itself stays on the video
management system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.operations.cameras import cameras_around, is_camera
from smartcity.operations.dispatch import Dispatch, DispatchOptions
from smartcity.operations.roadnet import Mode, Path
from smartcity.operations.routes import cameras_along, road_network, route_json
from smartcity.storage.incidents import DispatchPackage, Incident
from smartcity.storage.sqlbase import SqlEntityStore

SNAPSHOTS: Final = 4
"""Cameras whose stills go with the package: the nearest ones that face the scene."""
SNAPSHOT_RADIUS: Final = 300.0
MODES: Final = ("vehicle", "foot")


@dataclass(frozen=True, slots=True)
class EscapeRequest:
    """What an operator asks for: how many routes, how far, by car or on foot."""

    count: int | None = None
    distance: float | None = None
    mode: str = "vehicle"


class PoliceSupport:
    """Build and send 112 dispatch packages."""

    def __init__(
        self, dispatch: Dispatch, entities: SqlEntityStore, options: DispatchOptions
    ) -> None:
        self.dispatch = dispatch
        self.entities = entities
        self.options = options

    def _checked(self, request: EscapeRequest) -> tuple[int, float, Mode]:
        count = self.options.escape_routes if request.count is None else request.count
        distance = self.options.escape_distance if request.distance is None else request.distance
        if not 1 <= count <= self.options.escape_routes:
            raise BadRequestData(f"count must be from 1 to {self.options.escape_routes}")
        if not 100 <= distance <= self.options.escape_distance:
            raise BadRequestData(
                f"distance must be from 100 to {self.options.escape_distance:g} metres"
            )
        if request.mode not in MODES:
            raise BadRequestData(f"mode must be one of {', '.join(MODES)}")
        return count, distance, "foot" if request.mode == "foot" else "vehicle"

    def escape_routes(
        self, caller: Caller, incident: Incident, request: EscapeRequest
    ) -> dict[str, Any]:
        """Return the package body for an incident: snapshots and escape routes."""
        count, distance, mode = self._checked(request)
        if incident.lon is None or incident.lat is None:
            raise Conflict(f"incident {incident.id} has no location: it has no escape routes")
        here = (incident.lon, incident.lat)
        network = road_network(self.entities, caller.tenant)
        routes = network.escape_routes(here, count=count, distance=distance, mode=mode)
        if not routes:
            raise Conflict(
                f"incident {incident.id} is not within reach of the tenant's road network "
                "(no RoadSegment within 300 m)"
            )
        return {
            "scene": {"type": "Point", "coordinates": [incident.lon, incident.lat]},
            "at": self.dispatch.incidents.now(),
            "mode": mode,
            "distance": distance,
            "snapshots": self._snapshots(caller.tenant, here),
            "routes": [
                self._route(caller.tenant, network.plane, rank, route)
                for rank, route in enumerate(routes, 1)
            ],
        }

    def _route(self, tenant: str, plane: Any, rank: int, route: Path) -> dict[str, Any]:
        within = self.options.route_camera_distance
        return {
            "rank": rank,
            **route_json(route),
            "cameras": cameras_along(self.entities, tenant, plane, route, within),
        }

    def _snapshots(self, tenant: str, here: tuple[float, float]) -> list[dict[str, Any]]:
        near = cameras_around(self.entities, tenant, here, SNAPSHOT_RADIUS)
        facing = [c for c in near if c.faces_incident is not False]
        return [
            {
                "camera": c.id,
                "name": c.name,
                "distance": c.distance,
                "viewDirection": c.view_direction,
                "at": self.dispatch.incidents.now(),
            }
            for c in facing[:SNAPSHOTS]
        ]

    def preview(self, caller: Caller, incident_id: str, request: EscapeRequest) -> dict[str, Any]:
        """Return the escape routes of an incident without sending them (operators)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        return self.escape_routes(caller, self.dispatch.incidents.get(caller, incident_id), request)

    def send(
        self, caller: Caller, incident_id: str, agency: str, request: EscapeRequest
    ) -> DispatchPackage:
        """Build an incident's 112 package now and send it to a police agency principal."""
        incident = self.dispatch.managed(caller, incident_id)
        if not agency:
            raise BadRequestData("name the police agency principal to send the package to")
        self.dispatch.agency(caller, agency)
        body = self.escape_routes(caller, incident, request)
        return self.dispatch.deliver(
            caller,
            incident,
            "escape-routes",
            body,
            agency,
            routes=len(body["routes"]),
            snapshots=len(body["snapshots"]),
        )

    def snapshot(
        self, caller: Caller, incident_id: str, package_id: str, camera_id: str
    ) -> tuple[StoredEntity, str, DispatchPackage]:
        """Return the camera of a package's snapshot, when it was taken, and the package.

        A camera that is not among the package's snapshots reads as missing, whatever its id.
        """
        package = self.dispatch.package(caller, incident_id, package_id)
        shot = next(
            (s for s in package.body.get("snapshots", []) if s.get("camera") == camera_id), None
        )
        camera = self.entities.get(caller.tenant, camera_id) if shot else None
        if shot is None or camera is None or not is_camera(camera):
            raise ResourceNotFound(f"package {package_id} has no snapshot of camera {camera_id}")
        incident = self.dispatch.incidents.get(caller, incident_id)
        with self.dispatch.store.write() as tx:
            tx.append(
                [
                    self.dispatch.incidents.event(
                        caller,
                        incident,
                        "camera-viewed",
                        camera=camera_id,
                        mode="snapshot",
                        package=package_id,
                        agency=package.principal_name or None,
                    )
                ]
            )
            self.dispatch.access.record_in(tx.cursor, caller, "video.view", [(camera_id, "ok")])
        return camera, str(shot["at"]), package
