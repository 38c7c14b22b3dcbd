"""Streetlights: on at dusk and off at dawn (each photocell a little early or late), dimmed at
night, switched on by dark skies in heavy rain, and a few broken lamps. A `brighten` command
(a rule brightening the lamps near a camera) burns a lamp at a level for a while; a broken lamp
cannot obey.

A lamp's state is a pure function of the time, the weather and its faults, so the simulation
asks for it at any moment; it reports every 15 minutes and whenever its state changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartcity.sim.patterns import SunTimes

DIM_FROM = 23
"""Local hour from which lamps dim (until DIM_UNTIL)."""
DIM_UNTIL = 5
DIM_LEVEL = 60
"""Percent of full output while dimmed."""
DARK_SKY_RAIN = 15.0
"""Millimetres per hour of rain that make a daytime sky dark enough to switch lamps on."""
BROKEN_SHARE = 0.004
"""Share of lamps broken from the start (a city replaces some every week)."""
STANDBY_WATTS = 1.5


@dataclass(frozen=True, slots=True)
class Lamp:
    """One streetlight as the model sees it."""

    id: str
    rated_watts: float
    photocell: timedelta
    """How much earlier (negative) or later than dusk its photocell switches."""


@dataclass(frozen=True, slots=True)
class LampState:
    """What a lamp reports."""

    power: str
    """'on' or 'off'."""
    dim: int
    """Percent of full output (0 when off)."""
    watts: float
    fault: int
    """0: fine; 1: defective lamp."""

    def values(self) -> dict[str, object]:
        """Return the lamp controller's native fields."""
        return {"pwr": self.power, "dim": self.dim, "w": self.watts, "lamp": self.fault}


def make_lamps(ids_and_heights: list[tuple[str, float]], seed: int) -> list[Lamp]:
    """Return lamps with their rated power (taller poles: main roads) and photocell offsets."""
    lamps = []
    for lamp_id, height in ids_and_heights:
        rng = random.Random(f"{seed}:lamp:{lamp_id}")
        offset = timedelta(seconds=round(rng.uniform(-360, 360)))
        lamps.append(Lamp(lamp_id, 150.0 if height >= 10 else 80.0, offset))
    return lamps


def broken_lamps(lamps: list[Lamp], seed: int) -> set[str]:
    """Return the ids of the lamps broken from the start, drawn from the seed."""
    rng = random.Random(f"{seed}:broken-lamps")
    count = round(len(lamps) * BROKEN_SHARE)
    return set(rng.sample(sorted(lamp.id for lamp in lamps), count))


@dataclass(frozen=True, slots=True)
class Boost:
    """A `brighten` command in force: the lamp burns at `level` percent from `start` to `end`."""

    start: datetime
    end: datetime
    level: int

    def at(self, moment: datetime) -> int | None:
        """Return the level in force at a moment, or None outside the boost."""
        return self.level if self.start <= moment < self.end else None


def lamp_state(
    lamp: Lamp,
    moment: datetime,
    local_hour: float,
    sun: SunTimes,
    rain: float,
    broken: bool,
    boost: int | None = None,
) -> LampState:
    """Return a lamp's state at a moment (`boost`: a commanded level in force, in percent)."""
    if boost is not None and not broken:
        return LampState("on", boost, round(lamp.rated_watts * boost / 100 + STANDBY_WATTS, 1), 0)
    dark = moment >= sun.dusk + lamp.photocell or moment < sun.dawn + lamp.photocell
    dark = dark or (rain >= DARK_SKY_RAIN and sun.sunrise <= moment < sun.sunset)
    if not dark:
        return LampState("off", 0, STANDBY_WATTS, 1 if broken else 0)
    if broken:
        return LampState("off", 0, STANDBY_WATTS, 1)
    dim = DIM_LEVEL if (local_hour >= DIM_FROM or local_hour < DIM_UNTIL) else 100
    return LampState("on", dim, round(lamp.rated_watts * dim / 100 + STANDBY_WATTS, 1), 0)
