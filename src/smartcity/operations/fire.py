"""119 dispatch support (119 출동 지원): the site package for fire and rescue, and green-wave
signal priority along its access route.

The package holds what the crews need on the way: the building at the scene (its use and its
fire-safety management grade, `fireRiskGrade`: special, 1, 2 or 3 as the Korean fire-safety
management classes 특급·1급·2급·3급 소방안전관리대상물), the hydrants within
`ops_hydrant_radius`, the access route from the fire station that reaches the scene fastest at
the live speeds (`TrafficFlowObserved`), its narrow streets (one lane a way) and the streets
blocked by illegally parked cars (`TrafficViolation` with `titleCode` illegalParking observed
within `ops_violation_minutes`: its `observationDateTime`, or the `observedAt` of an enforcement
camera's report), the cameras near the scene and the traffic signals along the route.

A green-wave request asks each signal controller along the route for priority: one `priority`
device command per signal (`TrafficSignal` entities name their controller in `refDevice`),
through the device-command path the rule engine uses, so each command is queued, delivered over
MQTT, acknowledged and expires as any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import BadRequestData, Conflict, SmartCityError
from smartcity.ingest.devices import DeviceService
from smartcity.operations.assets import assets_near, is_a, name_of, observed_at, position_of
from smartcity.operations.cameras import attribute, cameras_around
from smartcity.operations.dispatch import Dispatch, DispatchOptions
from smartcity.operations.places import distance_m
from smartcity.operations.plane import Plane
from smartcity.operations.roadnet import Path, RoadNetwork
from smartcity.operations.routes import along, nearby, road_network, route_json
from smartcity.storage.incidents import DispatchPackage, Incident
from smartcity.storage.sqlbase import SqlEntityStore

GRADES: Final = {
    "special": ("특급 소방안전관리대상물", "Special-class fire safety object"),
    "1": ("1급 소방안전관리대상물", "Class 1 fire safety object"),
    "2": ("2급 소방안전관리대상물", "Class 2 fire safety object"),
    "3": ("3급 소방안전관리대상물", "Class 3 fire safety object"),
}
BUILDING_RADIUS: Final = 150.0
"""Metres: the building at the scene is the nearest one within this."""
SCENE_CAMERAS: Final = 10
SIGNAL_DISTANCE: Final = 30.0
"""Metres from the route within which a traffic signal is on it."""
BLOCK_DISTANCE: Final = 20.0
"""Metres from a street within which a parked car blocks it."""
ILLEGAL_PARKING: Final = frozenset({"illegalParking", "illegal-parking"})
PRIORITY: Final = "priority"
HOLD_SECONDS: Final = 90
DEVICE_PREFIX: Final = "urn:ngsi-ld:Device:"


def grade_json(grade: object) -> dict[str, Any] | None:
    """Return a fire-risk grade with its Korean and English names (None when unknown)."""
    if not isinstance(grade, str | int) or str(grade) not in GRADES:
        return None
    ko, en = GRADES[str(grade)]
    return {"grade": str(grade), "ko": ko, "en": en}


class FireSupport:
    """Build and send 119 site packages; request green waves along their routes."""

    def __init__(
        self,
        dispatch: Dispatch,
        entities: SqlEntityStore,
        devices: DeviceService,
        options: DispatchOptions,
    ) -> None:
        self.dispatch = dispatch
        self.entities = entities
        self.devices = devices
        self.options = options

    def site(self, caller: Caller, incident: Incident) -> dict[str, Any]:
        """Return the site package body of an incident, as the platform knows it now."""
        if incident.lon is None or incident.lat is None:
            raise Conflict(f"incident {incident.id} has no location: it has no site package")
        here = (incident.lon, incident.lat)
        tenant = caller.tenant
        network = road_network(self.entities, tenant)
        station, route = self._fastest_station(tenant, network, here)
        body: dict[str, Any] = {
            "scene": {"type": "Point", "coordinates": [incident.lon, incident.lat]},
            "at": self.dispatch.incidents.now(),
            "building": self._building(tenant, here),
            "hydrants": self._hydrants(tenant, here),
            "cameras": [
                {"id": c.id, "name": c.name, "distance": c.distance, "location": c.location}
                for c in cameras_around(self.entities, tenant, here, BUILDING_RADIUS * 2)[
                    :SCENE_CAMERAS
                ]
            ],
            "station": None,
            "route": None,
            "signals": [],
        }
        if station is not None and route is not None:
            body["station"] = {"id": station.id, "name": name_of(station)}
            body["route"] = self._route(tenant, network.plane, route)
            body["signals"] = self._signals(tenant, network.plane, route)
        return body

    def _building(self, tenant: str, here: tuple[float, float]) -> dict[str, Any] | None:
        found = assets_near(self.entities, tenant, ["Building"], here, BUILDING_RADIUS)
        placed = [(distance_m(here, p), b) for b in found if (p := position_of(b)) is not None]
        if not placed:
            return None
        far, building = min(placed, key=lambda item: (item[0], item[1].id))
        use = attribute(building, "category")
        return {
            "id": building.id,
            "name": name_of(building),
            "distance": round(far, 1),
            "use": use if isinstance(use, list) else [use] if use else [],
            "fireRiskGrade": grade_json(attribute(building, "fireRiskGrade")),
            "floorsAboveGround": attribute(building, "floorsAboveGround"),
            "floorsBelowGround": attribute(building, "floorsBelowGround"),
            "location": attribute(building, "location"),
        }

    def _hydrants(self, tenant: str, here: tuple[float, float]) -> list[dict[str, Any]]:
        radius = self.options.hydrant_radius
        items = []
        for hydrant in assets_near(self.entities, tenant, ["FireHydrant"], here, radius):
            where = position_of(hydrant)
            if where is None:
                continue
            items.append(
                {
                    "id": hydrant.id,
                    "distance": round(distance_m(here, where), 1),
                    "hydrantType": attribute(hydrant, "hydrantType"),
                    "status": attribute(hydrant, "status") or "unknown",
                    "location": attribute(hydrant, "location"),
                }
            )
        return sorted(items, key=lambda h: (h["status"] != "ok", h["distance"], h["id"]))

    def _fastest_station(
        self, tenant: str, network: RoadNetwork, here: tuple[float, float]
    ) -> tuple[StoredEntity | None, Path | None]:
        best: tuple[StoredEntity | None, Path | None] = (None, None)
        for station in assets_near(self.entities, tenant, ["PointOfInterest", "FireStation"]):
            where = position_of(station)
            if where is None or not _is_fire_station(station):
                continue
            route = network.route_to(where, here)
            if route is not None and (best[1] is None or route.seconds < best[1].seconds):
                best = (station, route)
        return best

    def _route(self, tenant: str, plane: Plane, route: Path) -> dict[str, Any]:
        since = self.dispatch.incidents.clock.now() - timedelta(
            minutes=self.options.violation_minutes
        )
        parked = [
            (v, off, at)
            for v, off, at in nearby(
                self.entities, tenant, plane, route.line, ["TrafficViolation"], BLOCK_DISTANCE
            )
            if _recent_parking(v, since)
        ]
        streets = []
        for edge in route.edges:
            points = list(edge.points)
            blocking = [v.id for v, _, _ in parked if along(plane, points, [v], BLOCK_DISTANCE)]
            streets.append(
                {
                    "segment": edge.segment,
                    "name": edge.name,
                    "length": round(edge.length, 1),
                    "lanes": edge.lanes,
                    "speedLimit": edge.speed_limit,
                    "liveSpeed": None if edge.live_speed is None else round(edge.live_speed, 1),
                    "narrow": edge.lanes <= 1,
                    "blockedBy": blocking,
                }
            )
        free_flow = sum(e.length / (e.speed_limit / 3.6) for e in route.edges)
        return {
            **route_json(route),
            "freeFlowSeconds": round(free_flow, 1),
            "streets": streets,
            "narrowStreets": sorted({s["name"] for s in streets if s["narrow"]}),
            "illegalParking": [
                {
                    "id": v.id,
                    "location": attribute(v, "location"),
                    "observedAt": attribute(v, "observationDateTime")
                    or observed_at(v, "titleCode"),
                    "alongRoute": at,
                }
                for v, _, at in parked
            ],
        }

    def _signals(self, tenant: str, plane: Plane, route: Path) -> list[dict[str, Any]]:
        found = nearby(self.entities, tenant, plane, route.line, ["TrafficSignal"], SIGNAL_DISTANCE)
        signals = []
        for signal, _, at in found:
            device = attribute(signal, "refDevice")
            signals.append(
                {
                    "id": signal.id,
                    "name": name_of(signal),
                    "device": device.removeprefix(DEVICE_PREFIX)
                    if isinstance(device, str)
                    else None,
                    "alongRoute": at,
                    "etaSeconds": round(_seconds_to(route, at), 1),
                }
            )
        return signals

    def send(self, caller: Caller, incident_id: str, agency: str) -> DispatchPackage:
        """Build an incident's site package now and send it to a fire agency principal."""
        incident = self.dispatch.managed(caller, incident_id)
        if not agency:
            raise BadRequestData("name the fire agency principal to send the package to")
        self.dispatch.agency(caller, agency)
        body = self.site(caller, incident)
        return self.dispatch.deliver(caller, incident, "fire-site", body, agency)

    def preview(self, caller: Caller, incident_id: str) -> dict[str, Any]:
        """Return an incident's site package without sending it (operators)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        return self.site(caller, self.dispatch.incidents.get(caller, incident_id))

    def green_wave(self, caller: Caller, incident_id: str, package_id: str) -> dict[str, Any]:
        """Ask every signal along a site package's route for priority; return what each said."""
        require(caller, Permission.COMMAND_DEVICES)
        incident = self.dispatch.managed(caller, incident_id)
        package = self.dispatch.package(caller, incident_id, package_id)
        if package.kind != "fire-site" or not package.body.get("route"):
            raise Conflict(f"package {package_id} is no 119 site package with a route")
        now = self.dispatch.incidents.clock.now()
        results = []
        for signal in package.body.get("signals", []):
            results.append(self._ask(caller, incident, package, signal, now))
        requested = sum(r["outcome"] == "queued" for r in results)
        event = self.dispatch.incidents.event(
            caller,
            incident,
            "green-wave-requested",
            package=package_id,
            signals=len(results),
            queued=requested,
        )
        with self.dispatch.store.write() as tx:
            tx.append([event])
        if requested:
            self.dispatch.tick(caller, incident, "request-green-wave", f"package {package_id}")
        return {"package": package_id, "signals": results, "queued": requested}

    def _ask(
        self,
        caller: Caller,
        incident: Incident,
        package: DispatchPackage,
        signal: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        device = signal.get("device")
        result: dict[str, Any] = {"signal": signal["id"], "device": device}
        if not device:
            return {**result, "outcome": "failed", "reason": "the signal names no controller"}
        params = {
            "incident": incident.id,
            "eta": (now + timedelta(seconds=float(signal["etaSeconds"]))).isoformat(),
            "hold": HOLD_SECONDS,
        }
        try:
            command = self.devices.send_command(caller, str(device), PRIORITY, params)
        except SmartCityError as error:
            return {**result, "outcome": "failed", "reason": error.detail}
        return {**result, "outcome": "queued", "command": command.id, "eta": params["eta"]}


def _is_fire_station(entity: StoredEntity) -> bool:
    category = attribute(entity, "category")
    kinds = category if isinstance(category, list) else [category]
    return is_a(entity, "FireStation") or "fireStation" in kinds


def _recent_parking(violation: StoredEntity, since: datetime) -> bool:
    title = attribute(violation, "titleCode")
    observed = attribute(violation, "observationDateTime")
    if isinstance(observed, dict):
        observed = observed.get("@value")
    if observed is None:  # an enforcement camera's report: the time it saw the car
        observed = observed_at(violation, "titleCode")
    if title not in ILLEGAL_PARKING or not isinstance(observed, str):
        return False
    try:
        moment = datetime.fromisoformat(observed.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment >= since


def _seconds_to(route: Path, at: float) -> float:
    """Return the seconds from the route's start to `at` metres along it."""
    walked = seconds = 0.0
    for edge in route.edges:
        if walked + edge.length >= at:
            share = 0.0 if edge.length == 0 else (at - walked) / edge.length
            return seconds + share * edge.seconds()
        walked += edge.length
        seconds += edge.seconds()
    return seconds
