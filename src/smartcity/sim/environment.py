"""Air quality and noise: a regional background plus what the nearby roads, crowds and fires add.

Particles (PM10, PM2.5) and NO2 rise with the traffic on the links near a sensor (weighted by
distance), ozone with the afternoon sun; rain washes particles out over its first hours. A fire
sends a plume of fine particles to the sensors within about half a kilometre. Noise is a
logarithm of the nearby traffic, plus crowds at a concert, plus the sound of rain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from smartcity.sim.geodesy import Planar, Position
from smartcity.sim.patterns import Weather
from smartcity.sim.traffic import LinkState, TrafficModel

BACKGROUND_PM10 = 38.0
"""µg/m³: a late-autumn day's regional background in Seoul."""
PM25_SHARE = 0.55
EXPOSURE_RADIUS = 250.0
EXPOSURE_DECAY = 80.0
"""Metres over which a road's contribution falls by e."""


@dataclass(slots=True)
class Station:
    """An environment sensor and its nearby roads."""

    id: str
    xy: tuple[float, float]
    links: list[tuple[int, float]] = field(default_factory=list)
    """(link index, weight) of the roads near it."""
    venue_distance: float = math.inf


@dataclass(frozen=True, slots=True)
class Plume:
    """A fire's smoke: where, and how strong it is now (0-1)."""

    xy: tuple[float, float]
    strength: float


class EnvironmentModel:
    """Air and noise at each environment sensor."""

    def __init__(self, traffic: TrafficModel, planar: Planar) -> None:
        self.traffic = traffic
        self.planar = planar
        self.stations: dict[str, Station] = {}

    def add_station(self, station_id: str, position: Position, venue: Position | None) -> None:
        """Register a sensor at a position (near a concert venue or not)."""
        xy = self.planar.xy(position)
        station = Station(station_id, xy)
        for number, metres in self.traffic.near(position, EXPOSURE_RADIUS):
            station.links.append((number, math.exp(-metres / EXPOSURE_DECAY)))
        if venue is not None:
            station.venue_distance = math.dist(xy, self.planar.xy(venue))
        self.stations[station_id] = station

    def exposure(self, station: Station, links: list[LinkState]) -> float:
        """Return the nearby traffic, in thousands of vehicles per hour (distance-weighted)."""
        return sum(links[number].volume * weight for number, weight in station.links) / 1000

    def air(
        self,
        station_id: str,
        links: list[LinkState],
        weather: Weather,
        warmth: float,
        plumes: list[Plume],
        noise: tuple[float, float, float],
    ) -> dict[str, object]:
        """Return the air-quality sensor's native fields."""
        station = self.stations[station_id]
        exposure = self.exposure(station, links)
        washout = 1.0
        if weather.rain > 0:
            washout = max(0.3, math.exp(-weather.rain_hours * min(1.0, weather.rain / 10) * 0.8))
        pm10 = (BACKGROUND_PM10 * (0.85 + 0.3 * (1 - warmth)) + 9.0 * exposure) * washout
        pm25 = pm10 * PM25_SHARE
        for plume in plumes:
            metres = math.dist(station.xy, plume.xy)
            smoke = 260.0 * plume.strength * math.exp(-metres / 160.0)
            pm25 += smoke
            pm10 += smoke * 1.3
        pm10 *= noise[0]
        pm25 *= noise[1]
        no2 = (0.016 + 0.011 * exposure) * noise[2]
        o3 = max(0.002, 0.006 + 0.030 * warmth - 0.004 * exposure)
        co = 0.30 + 0.12 * exposure
        return {
            "pm10": round(pm10, 1),
            "pm25": round(pm25, 1),
            "no2": round(no2, 4),
            "o3": round(o3, 4),
            "co": round(co, 2),
            "t": round(weather.temperature + 0.4 * exposure, 1),
            "h": round(weather.humidity * 100, 1),
        }

    def noise(
        self,
        station_id: str,
        links: list[LinkState],
        weather: Weather,
        crowd: float,
        jitter: tuple[float, float],
    ) -> dict[str, object]:
        """Return the noise sensor's native fields: LAeq and LAmax of the last minute, dB(A)."""
        station = self.stations[station_id]
        exposure = self.exposure(station, links)
        level = 40.0 + 10 * math.log10(1 + 25 * exposure)
        if crowd > 0 and station.venue_distance < 600:
            level = 10 * math.log10(
                10 ** (level / 10)
                + 10 ** ((62 + 10 * math.log10(1 + crowd / 500)) / 10)
                * math.exp(-station.venue_distance / 150)
            )
        if weather.rain > 0:
            level = 10 * math.log10(10 ** (level / 10) + 10 ** ((45 + weather.rain / 5) / 10))
        laeq = level + jitter[0]
        return {"laeq": round(laeq, 1), "lamax": round(laeq + 7 + abs(jitter[1]), 1)}
