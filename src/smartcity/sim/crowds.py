"""People outdoors, as cameras and beacons count them.

Footfall gathers around places (stations at the commute, markets and shops in the afternoon,
schools when classes start and end) with a street baseline everywhere; each hotspot spreads its
people over a radius (a Gaussian). A camera counts what its view catches of that density; a
beacon gateway counts the phones that pass within its range in five minutes. Concert visitors
queue at the venue and walk between it and the nearest stations; rain keeps people indoors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from smartcity.sim.events import ConcertFlows, ConcertModel
from smartcity.sim.geodesy import Planar, Position, to_segment
from smartcity.sim.model import District

HOTSPOTS = {
    # kind: (people within the radius at the busiest hour, radius in metres)
    "station": (220.0, 140.0),
    "market": (150.0, 110.0),
    "shopping": (120.0, 120.0),
    "school": (80.0, 90.0),
    "culture": (40.0, 80.0),
    "landmark": (30.0, 120.0),
    "park": (50.0, 180.0),
    "office": (40.0, 80.0),
    "apartment": (30.0, 160.0),
}
STREET_BASELINE = 6.0
"""People in a camera's view on any street at the busiest hour."""
CAMERA_VIEW = 0.4
"""Share of a hotspot's people at the camera's spot that its view catches."""
CROWDED = 60
"""People in one camera's view from which it reports a crowd."""
FULL_VIEW = 150.0
"""People that fill a camera's view (occupancy 1)."""
PHONE_SHARE = 0.85
QUEUE_MINUTES = 15.0
"""How long arriving visitors stay outside the venue before going in."""
EGRESS_MINUTES = 8.0
WALK_MINUTES_PER_100M = 1.4


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A place where people gather, and when."""

    position: tuple[float, float]
    """Planar metres."""
    people: float
    radius: float
    kind: str


@dataclass(slots=True)
class Sensor:
    """A camera or beacon, with the weights of the hotspots it sees."""

    id: str
    xy: tuple[float, float]
    weights: list[tuple[int, float]]
    street: float
    venue_weight: float = 0.0
    corridor_weight: float = 0.0


class CrowdModel:
    """Footfall seen by each camera and beacon."""

    def __init__(
        self,
        district: District,
        planar: Planar,
        concerts: list[ConcertModel],
    ) -> None:
        self.planar = planar
        self.hotspots: list[Hotspot] = []
        for place in district.places:
            if place.kind in HOTSPOTS:
                people, radius = HOTSPOTS[place.kind]
                self.hotspots.append(Hotspot(planar.xy(place.anchor), people, radius, place.kind))
        self.concerts = concerts
        self.sensors: dict[str, Sensor] = {}

    def add_sensor(self, sensor_id: str, position: Position, reach: float) -> None:
        """Register a camera (reach about 40 m) or beacon (about 60 m) at a position."""
        xy = self.planar.xy(position)
        weights = []
        for number, spot in enumerate(self.hotspots):
            metres = math.dist(xy, spot.position)
            weight = math.exp(-((metres / max(spot.radius, reach)) ** 2))
            if weight > 0.01:
                weights.append((number, weight))
        sensor = Sensor(sensor_id, xy, weights, STREET_BASELINE * reach / 40)
        for concert in self.concerts:
            venue = self.planar.xy(concert.venue)
            metres = math.dist(xy, venue)
            sensor.venue_weight = max(sensor.venue_weight, math.exp(-((metres / 160.0) ** 2)))
            for station, _ in concert.stations:
                gap = to_segment(xy, self.planar.xy(station), venue)
                sensor.corridor_weight = max(
                    sensor.corridor_weight, math.exp(-((gap / max(reach, 30.0)) ** 2))
                )
        self.sensors[sensor_id] = sensor

    def people(
        self,
        sensor_id: str,
        footfall: float,
        school: float,
        rain: float,
        flows: list[ConcertFlows],
        extra: float = 0.0,
    ) -> float:
        """Return the people a sensor sees now (before its own noise and view share)."""
        sensor = self.sensors[sensor_id]
        total = sensor.street * footfall
        for number, weight in sensor.weights:
            spot = self.hotspots[number]
            level = school if spot.kind == "school" else footfall
            total += spot.people * level * weight
        for flow in flows:
            outside = flow.arriving * QUEUE_MINUTES + flow.leaving * EGRESS_MINUTES
            total += outside * sensor.venue_weight * 0.25
            total += flow.walking * WALK_MINUTES_PER_100M * sensor.corridor_weight
        total += extra
        if rain > 0:
            total *= max(0.35, 1 - rain / 40)
        return total


def camera_report(people: float, noise: float) -> tuple[int, float, bool]:
    """Return what a camera reports for the people around it: count, density, crowded."""
    count = max(0, round(people * CAMERA_VIEW * noise))
    return count, round(min(1.0, count / FULL_VIEW), 3), count >= CROWDED


def beacon_report(people: float, noise: float) -> int:
    """Return the phones a beacon gateway saw in five minutes for the people around it."""
    return max(0, round(people * PHONE_SHARE * 1.6 * noise))
