"""Disaster response (재난 대응): an alert's affected area, what and who is in it, and the
messages to send.

For a disaster incident of a hazard (heavy rain, flood, earthquake, fine dust) the package
takes the affected area (a GeoJSON polygon the operator draws, else a circle around the scene
of the hazard's default radius), and lists from the platform's data what it holds: the
facilities at risk for that hazard (basement floors and underground car parks in rain and
floods, every building by its fire-safety class in an earthquake, schools and care facilities
in fine dust), the people-related assets (schools, care facilities, apartment complexes, crowd
counts, registered vulnerable persons last seen there: counted, never named), the sensors that
tell how bad it is (water levels of `FloodMonitoring` stations such as the Jungnangcheon's,
`AirQualityObserved` fine dust) and the messages to send, in Korean and English, per channel
(disaster text 재난문자, village broadcast 마을방송, road signs). Each message is queued as a
`message-queued` fact on the bus for the gateways that deliver them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.broker.changefeed import local_name
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import BadRequestData, Conflict
from smartcity.core.geo import geometry_bbox, parse_geometry
from smartcity.operations.assets import assets_near, name_of
from smartcity.operations.cameras import attribute
from smartcity.operations.dispatch import Dispatch
from smartcity.operations.fire import grade_json
from smartcity.operations.places import EARTH_RADIUS, distance_m, representative_point
from smartcity.storage.incidents import DispatchPackage, Incident
from smartcity.storage.sqlbase import SqlEntityStore


@dataclass(frozen=True, slots=True)
class Hazard:
    """A kind of disaster: its names, default reach, and what to tell people."""

    ko: str
    en: str
    radius: float
    """Metres around the scene when no area is drawn."""
    advice_ko: str
    advice_en: str


HAZARDS: Final = {
    "heavy-rain": Hazard(
        "호우",
        "Heavy rain",
        1500.0,
        "저지대·지하 공간 침수에 대비하고 하천변 산책로 출입을 자제하세요.",
        "Prepare for flooding of low ground and basements; keep off the riverside paths.",
    ),
    "flood": Hazard(
        "침수·홍수",
        "Flood",
        800.0,
        "하천변·지하차도·지하주차장에 접근하지 말고 높은 곳으로 대피하세요.",
        "Keep away from streams, underpasses and underground car parks; move to high ground.",
    ),
    "earthquake": Hazard(
        "지진",
        "Earthquake",
        3000.0,
        "흔들림이 멈추면 계단으로 건물 밖 넓은 공간으로 대피하세요.",
        "When the shaking stops, take the stairs out to an open space.",
    ),
    "fine-dust": Hazard(
        "미세먼지",
        "Fine dust",
        3000.0,
        "외출을 자제하고 외출 시 보건용 마스크를 착용하세요.",
        "Stay indoors where you can, and wear a KF94 mask outside.",
    ),
}
LEVELS: Final = {
    "advisory": ("주의보", "advisory"),
    "warning": ("경보", "warning"),
}
CHANNELS: Final = ("cell-broadcast", "village-broadcast", "road-sign")
PEOPLE_PLACES: Final = frozenset(
    {"school", "kindergarten", "daycare", "elderlyCare", "hospital", "apartment", "welfare"}
)
SENSOR_MARGIN: Final = 1000.0
"""Metres beyond the area within which its water-level stations still tell of it."""
MAX_AREA: Final = 10_000.0
"""Metres: the largest radius an area may have."""


@dataclass(frozen=True, slots=True)
class DisasterRequest:
    """What an operator declares: the hazard, its level, the area (or a radius)."""

    hazard: str
    level: str = "advisory"
    area: dict[str, Any] | None = None
    radius: float | None = None
    agency: str = ""


def circle(here: tuple[float, float], radius: float, sides: int = 32) -> dict[str, Any]:
    """Return a GeoJSON polygon approximating a circle of `radius` metres around (lon, lat)."""
    lat_step = math.degrees(radius / EARTH_RADIUS)
    lon_step = lat_step / math.cos(math.radians(here[1]))
    ring = [
        [
            round(here[0] + lon_step * math.sin(2 * math.pi * k / sides), 6),
            round(here[1] + lat_step * math.cos(2 * math.pi * k / sides), 6),
        ]
        for k in range(sides)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


class DisasterSupport:
    """Build and send disaster response packages."""

    def __init__(
        self,
        dispatch: Dispatch,
        entities: SqlEntityStore,
        timezone: str = "Asia/Seoul",
        wearables: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.entities = entities
        self.zone = ZoneInfo(timezone)
        self.wearables = wearables
        """Return a tenant's registered wearables and their person's kind (for counting)."""

    def _area(self, incident: Incident, request: DisasterRequest) -> dict[str, Any]:
        hazard = HAZARDS[request.hazard]
        if request.area is not None:
            area = parse_geometry(request.area)
            if area.get("type") not in ("Polygon", "MultiPolygon"):
                raise BadRequestData("area must be a GeoJSON Polygon or MultiPolygon")
            return area
        if incident.lon is None or incident.lat is None:
            raise Conflict(
                f"incident {incident.id} has no location: draw the affected area (`area`)"
            )
        radius = hazard.radius if request.radius is None else request.radius
        if not 0 < radius <= MAX_AREA:
            raise BadRequestData(f"radius must be above 0 and at most {MAX_AREA:g} m")
        return circle((incident.lon, incident.lat), radius)

    def package(
        self, caller: Caller, incident: Incident, request: DisasterRequest
    ) -> dict[str, Any]:
        """Return the package body: area, facilities, people, sensors, messages."""
        _check(request)
        area = self._area(incident, request)
        tenant = caller.tenant
        inside = assets_near(
            self.entities,
            tenant,
            ["Building", "PointOfInterest", "OffStreetParking", "CrowdFlowObserved"],
            geometry=area,
        )
        return {
            "hazard": request.hazard,
            "hazardName": {"ko": HAZARDS[request.hazard].ko, "en": HAZARDS[request.hazard].en},
            "level": request.level,
            "area": area,
            "at": self.dispatch.incidents.now(),
            "facilities": self._facilities(request.hazard, inside),
            "people": self._people(tenant, area, inside),
            "sensors": self._sensors(tenant, request.hazard, area),
            "messages": self._messages(incident, request),
        }

    def _facilities(self, hazard: str, inside: list[StoredEntity]) -> list[dict[str, Any]]:
        items = []
        for entity in inside:
            kind = _kind(entity)
            why = _at_risk(hazard, entity, kind)
            if why is None:
                continue
            items.append(
                {
                    "id": entity.id,
                    "type": kind,
                    "name": name_of(entity),
                    "reason": why,
                    "location": attribute(entity, "location"),
                    "fireRiskGrade": grade_json(attribute(entity, "fireRiskGrade")),
                }
            )
        return sorted(items, key=lambda f: (f["type"], f["id"]))

    def _people(
        self, tenant: str, area: dict[str, Any], inside: list[StoredEntity]
    ) -> dict[str, Any]:
        places = []
        crowd = 0
        for entity in inside:
            kind = _kind(entity)
            if kind == "CrowdFlowObserved":
                count = attribute(entity, "peopleCount")
                crowd += int(count) if isinstance(count, int | float) else 0
                continue
            categories = _categories(entity)
            if kind == "PointOfInterest" and PEOPLE_PLACES & set(categories):
                places.append({"id": entity.id, "name": name_of(entity), "category": categories})
        vulnerable: dict[str, int] = {}
        if self.wearables is not None:
            worn = self.wearables(tenant)
            if worn:
                for device in assets_near(self.entities, tenant, ["Device"], geometry=area):
                    if device.id in worn:
                        kind = worn[device.id]
                        vulnerable[kind] = vulnerable.get(kind, 0) + 1
        return {
            "places": sorted(places, key=lambda p: p["id"]),
            "peopleCounted": crowd,
            "vulnerablePersons": vulnerable,
        }

    def _sensors(self, tenant: str, hazard: str, area: dict[str, Any]) -> list[dict[str, Any]]:
        names = {
            "heavy-rain": ["FloodMonitoring"],
            "flood": ["FloodMonitoring"],
            "fine-dust": ["AirQualityObserved"],
        }.get(hazard, [])
        if not names:
            return []
        found = {e.id: e for e in assets_near(self.entities, tenant, names, geometry=area)}
        if "FloodMonitoring" in names:
            centre = representative_point(area)
            reach = _radius(area, centre) + SENSOR_MARGIN
            for e in assets_near(self.entities, tenant, names, centre, reach):
                found.setdefault(e.id, e)
        readings = []
        for sensor in sorted(found.values(), key=lambda e: e.id):
            fields = (
                ("currentLevel", "alertLevel", "dangerLevel", "floodLevelStatus")
                if _kind(sensor) == "FloodMonitoring"
                else ("pm10", "pm25")
            )
            readings.append(
                {
                    "id": sensor.id,
                    "type": _kind(sensor),
                    "name": name_of(sensor),
                    "location": attribute(sensor, "location"),
                    **{f: attribute(sensor, f) for f in fields},
                }
            )
        return readings

    def _messages(self, incident: Incident, request: DisasterRequest) -> list[dict[str, Any]]:
        hazard = HAZARDS[request.hazard]
        level_ko, level_en = LEVELS[request.level]
        moment = datetime.fromisoformat(self.dispatch.incidents.now()).astimezone(self.zone)
        where_ko = incident.zone or "해당 지역"
        where_en = incident.zone or "the area"
        ko = f"[통합관제센터] {moment:%H:%M} {where_ko} {hazard.ko} {level_ko}. {hazard.advice_ko}"
        en = f"[Operations center] {moment:%H:%M} {hazard.en} {level_en} for {where_en}. "
        en += hazard.advice_en
        return [{"channel": channel, "ko": ko, "en": en} for channel in CHANNELS]

    def preview(self, caller: Caller, incident_id: str, request: DisasterRequest) -> dict[str, Any]:
        """Return a disaster package without sending it (operators)."""
        require(caller, Permission.MANAGE_INCIDENTS)
        return self.package(caller, self.dispatch.incidents.get(caller, incident_id), request)

    def send(self, caller: Caller, incident_id: str, request: DisasterRequest) -> DispatchPackage:
        """Build a disaster incident's package, keep it, and queue its messages."""
        incident = self.dispatch.managed(caller, incident_id)
        _check(request)
        if incident.type != "disaster" and request.hazard != "fine-dust":
            raise Conflict(
                f"incident {incident_id} is {incident.type}: a disaster package is for disaster "
                "incidents"
            )
        body = self.package(caller, incident, request)
        queued = [
            self.dispatch.incidents.event(caller, incident, "message-queued", **message)
            for message in body["messages"]
        ]
        return self.dispatch.deliver(
            caller,
            incident,
            "disaster",
            body,
            request.agency,
            extra=queued,
            hazard=request.hazard,
            level=request.level,
            facilities=len(body["facilities"]),
        )


def _check(request: DisasterRequest) -> None:
    if request.hazard not in HAZARDS:
        raise BadRequestData(f"hazard must be one of {', '.join(HAZARDS)}")
    if request.level not in LEVELS:
        raise BadRequestData(f"level must be one of {', '.join(LEVELS)}")


def _kind(entity: StoredEntity) -> str:
    return local_name(entity.types[0]) if entity.types else ""


def _categories(entity: StoredEntity) -> list[str]:
    value = attribute(entity, "category")
    return [str(v) for v in value] if isinstance(value, list) else [str(value)] if value else []


def _at_risk(hazard: str, entity: StoredEntity, kind: str) -> dict[str, str] | None:
    """Return why a facility is at risk in a hazard (Korean and English), or None."""
    categories = set(_categories(entity))
    below = attribute(entity, "floorsBelowGround")
    basement = isinstance(below, int | float) and below > 0
    if hazard in ("heavy-rain", "flood"):
        if kind == "Building" and basement:
            return {"ko": "지하층 침수 우려", "en": "basement floors may flood"}
        if kind == "OffStreetParking" and "underground" in str(attribute(entity, "layout")):
            return {"ko": "지하주차장 침수 우려", "en": "underground car park may flood"}
        return None
    if hazard == "earthquake":
        if kind == "Building":
            return {"ko": "건물 안전 점검", "en": "check the building's safety"}
        if "school" in categories:
            return {"ko": "지진 옥외 대피장소", "en": "outdoor earthquake shelter"}
        return None
    if hazard == "fine-dust" and PEOPLE_PLACES & categories:
        return {"ko": "민감계층 이용 시설", "en": "used by sensitive groups"}
    return None


def _radius(area: dict[str, Any], centre: tuple[float, float]) -> float:
    min_lon, min_lat, max_lon, max_lat = geometry_bbox(area)
    return max(
        distance_m(centre, (lon, lat)) for lon in (min_lon, max_lon) for lat in (min_lat, max_lat)
    )
