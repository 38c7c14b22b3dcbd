"""Daily and weekly patterns, the sun, and the weather at a moment of a scenario.

The profiles are shares of the day's peak hour, one value per hour of local time, read with
linear interpolation between hour midpoints. They follow the usual shape of Seoul's traffic
counts (two commute peaks on weekdays, a broad midday hump at weekends, a deep night trough) and
of footfall (stations at the commute, markets in the afternoon, eating places at lunch and
dinner); the numbers are a model's, not a survey's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sun

from smartcity.sim.scenario import Scenario

Profile = tuple[float, ...]

TRAFFIC: Final[dict[str, Profile]] = {
    # 0h ... 23h
    "weekday": (
        0.18, 0.11, 0.08, 0.07, 0.10, 0.25, 0.55, 0.92, 1.00, 0.80, 0.68, 0.70,
        0.74, 0.72, 0.70, 0.74, 0.82, 0.93, 0.97, 0.80, 0.62, 0.52, 0.42, 0.30,
    ),
    "saturday": (
        0.26, 0.17, 0.12, 0.09, 0.09, 0.15, 0.28, 0.45, 0.60, 0.72, 0.82, 0.88,
        0.90, 0.90, 0.88, 0.86, 0.85, 0.84, 0.80, 0.70, 0.58, 0.50, 0.42, 0.34,
    ),
    "sunday": (
        0.28, 0.18, 0.12, 0.09, 0.08, 0.11, 0.20, 0.32, 0.45, 0.58, 0.70, 0.78,
        0.82, 0.84, 0.84, 0.83, 0.82, 0.80, 0.74, 0.64, 0.52, 0.44, 0.36, 0.28,
    ),
}  # fmt: skip
"""Vehicle demand as a share of the weekday morning peak hour."""

FOOTFALL: Final[dict[str, Profile]] = {
    "weekday": (
        0.06, 0.03, 0.02, 0.02, 0.03, 0.10, 0.35, 0.85, 1.00, 0.60, 0.45, 0.55,
        0.75, 0.60, 0.50, 0.55, 0.65, 0.85, 0.95, 0.80, 0.60, 0.45, 0.30, 0.15,
    ),
    "saturday": (
        0.10, 0.06, 0.04, 0.03, 0.03, 0.05, 0.12, 0.25, 0.40, 0.55, 0.70, 0.85,
        0.95, 0.95, 0.92, 0.90, 0.88, 0.85, 0.80, 0.72, 0.60, 0.45, 0.32, 0.20,
    ),
    "sunday": (
        0.10, 0.06, 0.04, 0.03, 0.03, 0.04, 0.10, 0.20, 0.32, 0.48, 0.62, 0.78,
        0.88, 0.90, 0.88, 0.85, 0.82, 0.78, 0.70, 0.60, 0.48, 0.35, 0.24, 0.15,
    ),
}  # fmt: skip
"""People outdoors as a share of the busiest hour."""

FOOD_WASTE: Final[Profile] = (
    0.02, 0.01, 0.00, 0.00, 0.01, 0.03, 0.08, 0.12, 0.08, 0.05, 0.04, 0.04,
    0.05, 0.05, 0.04, 0.04, 0.05, 0.08, 0.14, 0.20, 0.16, 0.10, 0.06, 0.03,
)  # fmt: skip
"""Shares of the day's food-waste disposals by hour (evening peak after dinner)."""


def hourly(profile: Profile, local: datetime) -> float:
    """Return a profile's value at a local time, interpolated between hour midpoints."""
    position = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    below = math.floor(position)
    share = position - below
    return profile[below % 24] * (1 - share) + profile[(below + 1) % 24] * share


@dataclass(frozen=True, slots=True)
class SunTimes:
    """When it gets light and dark on a day (civil twilight), as aware datetimes."""

    dawn: datetime
    sunrise: datetime
    sunset: datetime
    dusk: datetime


@lru_cache(maxsize=64)
def sun_times(day: date, longitude: float, latitude: float, zone: str) -> SunTimes:
    """Return the civil dawn, sunrise, sunset and civil dusk of a day at a place."""
    times = sun(Observer(latitude=latitude, longitude=longitude), date=day, tzinfo=ZoneInfo(zone))
    return SunTimes(times["dawn"], times["sunrise"], times["sunset"], times["dusk"])


@dataclass(frozen=True, slots=True)
class Weather:
    """The weather at a moment."""

    temperature: float
    """°C."""
    humidity: float
    """Relative humidity, 0-1."""
    rain: float
    """Millimetres per hour (0: dry)."""
    rain_hours: float
    """How long it has been raining (hours; 0 when dry)."""


def warmth(hours: float) -> float:
    """Return where the day's temperature stands between its low (0, at 6:00) and high (1, at
    15:00), rising over 9 hours and falling over 15."""
    if 6 <= hours < 15:
        return 0.5 - 0.5 * math.cos(math.pi * (hours - 6) / 9)
    return 0.5 + 0.5 * math.cos(math.pi * ((hours - 15) % 24) / 15)


def weather_at(scenario: Scenario, moment: datetime, zone: ZoneInfo) -> Weather:
    """Return the weather of a scenario at a moment: a daily temperature wave, and its rain."""
    low, high = scenario.weather.temperature
    local = moment.astimezone(zone)
    wave = warmth(local.hour + local.minute / 60)
    temperature = low + (high - low) * wave
    rain, since = 0.0, 0.0
    for spell in scenario.rains:
        if spell.start <= moment < spell.end:
            rain = max(rain, spell.intensity)
            since = max(since, (moment - spell.start).total_seconds() / 3600)
    humidity = scenario.weather.humidity
    if rain > 0:
        humidity = min(0.97, 0.85 + rain / 200)
        temperature -= min(3.0, rain / 10)
    return Weather(round(temperature, 2), round(humidity, 3), rain, since)
