"""The simulated devices of a district: one per sensor, controller or lot, from its assets.

Each device has its kind (from the catalog), the entity it feeds, its place, the static
attributes its registration writes (where it stands, the road it watches) and a phase: the
second within its reporting interval at which it reports, drawn from the seed so that the
district's reports spread evenly instead of all arriving on the minute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from smartcity.sim.catalog import (
    AIR_QUALITY,
    BEACON,
    CCTV_ANALYTICS,
    FOOD_WASTE_BIN,
    NOISE,
    PARKING_ENFORCEMENT,
    PARKING_LOT,
    PARKING_SPOT,
    SIGNAL_CONTROLLER,
    SOS_WEARABLE,
    STREETLIGHT,
    TRAFFIC_DETECTOR,
    WATER_LEVEL,
    WEATHER_STATION,
    DeviceKind,
)
from smartcity.sim.generate import Asset
from smartcity.sim.geodesy import Position, rounded
from smartcity.sim.model import District
from smartcity.sim.safety import (
    enforcement_points,
    flood_gauges,
    safe_zone,
    signal_device_id,
    wearables,
    weather_stations,
)


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One simulated device."""

    number: int
    """Its place in the simulation's stable order."""
    id: str
    kind: DeviceKind
    entity_id: str
    position: Position
    subject: str
    """What the models know it by (asset id, lot id, directed link id, ...)."""
    phase: int
    """Second within its reporting interval at which it reports."""
    static: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def registration(self, api_key: str) -> dict[str, Any]:
        """Return the device registry's body for this device."""
        return self.kind.registration(self.id, self.entity_id, api_key, self.static)


def _location(position: Position) -> dict[str, Any]:
    return {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": list(rounded(position))},
    }


def build_devices(district: District, assets: list[Asset], seed: int) -> list[SimDevice]:
    """Return every simulated device of a district, in a stable order (kind, then asset)."""
    by_kind: dict[str, list[Asset]] = {}
    for asset in assets:
        by_kind.setdefault(asset.kind, []).append(asset)
    made: list[tuple[DeviceKind, str, str, Position, str, dict[str, Any], dict[str, Any]]] = []

    def add(
        kind: DeviceKind,
        device_id: str,
        local_id: str,
        position: Position,
        subject: str,
        static: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        entity_id = f"urn:ngsi-ld:{kind.entity_type}:{local_id}"
        made.append((kind, device_id, entity_id, position, subject, static or {}, extra or {}))

    for asset in by_kind.get("traffic_detectors", []):
        directed = str(asset.properties["segment"])
        link_id, way = directed.rsplit("-", 1)
        static = {
            "location": _location(asset.position),
            "refRoadSegment": {
                "type": "Relationship",
                "object": f"urn:ngsi-ld:RoadSegment:{district.id}-{link_id}",
            },
            "laneDirection": {"type": "Property", "value": way},
        }
        lanes = int(asset.properties.get("lanes", 1))
        add(
            TRAFFIC_DETECTOR, asset.id, asset.id, asset.position, directed, static, {"lanes": lanes}
        )
    for asset in by_kind.get("cctv_cameras", []):
        static = {"location": _location(asset.position)}
        add(CCTV_ANALYTICS, asset.id, asset.id, asset.position, asset.id, static)
    for lot in district.parking:
        add(PARKING_LOT, f"{district.id}-lot-{lot.id}", lot.id, lot.position, lot.id)
    for asset in by_kind.get("parking_spots", []):
        index = int(asset.properties["number"]) - 1
        subject = f"{asset.properties['lot']}#{index}"
        add(PARKING_SPOT, asset.id, asset.id, asset.position, subject)
    for asset in [*by_kind.get("streetlights", []), *by_kind.get("security_lights", [])]:
        height = float(asset.properties.get("height", 8.0))
        add(STREETLIGHT, asset.id, asset.id, asset.position, asset.id, extra={"height": height})
    for asset in by_kind.get("waste_bins", []):
        extra = {"complex": asset.properties["complex"]}
        add(FOOD_WASTE_BIN, asset.id, asset.id, asset.position, asset.id, extra=extra)
    for asset in by_kind.get("environment_sensors", []):
        static = {"location": _location(asset.position)}
        for kind in (AIR_QUALITY, NOISE):
            device_id = f"{asset.id}{kind.id_suffix}"
            add(kind, device_id, asset.id, asset.position, asset.id, static)
    for asset in by_kind.get("beacons", []):
        static = {"location": _location(asset.position)}
        add(BEACON, asset.id, asset.id, asset.position, asset.id, static)
    links = {link.id: link for link in district.links}
    for local_id, link_id, position in enforcement_points(district):
        static = {
            "location": _location(position),
            "refRoadSegment": {
                "type": "Relationship",
                "object": f"urn:ngsi-ld:RoadSegment:{district.id}-{link_id}",
            },
        }
        road = {"road_class": links[link_id].road_class}
        add(PARKING_ENFORCEMENT, local_id, local_id, position, link_id, static, road)
    for local_id, position, levels in flood_gauges(district):
        add(WATER_LEVEL, f"{local_id}-gauge", local_id, position, local_id, extra=levels)
    for local_id, position, names in weather_stations(district):
        static = {
            "location": _location(position),
            "name": {"type": "Property", "value": names["name_ko"]},
            "alternateName": {"type": "Property", "value": names["name_en"]},
        }
        add(WEATHER_STATION, local_id, local_id, position, local_id, static)
    for band in wearables(district):
        static = {
            "deviceCategory": {"type": "Property", "value": "wearable"},
            "safeZone": {
                "type": "GeoProperty",
                "value": safe_zone(band["position"], band["safe_zone"]),
            },
        }
        home = {"home": band["home"], "safe_zone": band["safe_zone"]}
        device_id = f"{band['id']}{SOS_WEARABLE.id_suffix}"
        add(SOS_WEARABLE, device_id, band["id"], band["position"], band["home"], static, home)
    for node in district.nodes.values():
        if node.signalised:
            device_id = signal_device_id(district, node.id)
            add(SIGNAL_CONTROLLER, device_id, f"{district.id}-{node.id}", node.position, node.id)

    devices = []
    for number, (kind, device_id, entity_id, position, subject, static, extra) in enumerate(made):
        phase = random.Random(f"{seed}:phase:{device_id}").randrange(kind.interval)
        devices.append(
            SimDevice(number, device_id, kind, entity_id, position, subject, phase, static, extra)
        )
    return devices
