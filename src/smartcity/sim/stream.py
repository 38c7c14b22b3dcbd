"""The water level of a stream at a gauge, from the scenario's rain: a simple linear reservoir.

Rain over the catchment reaches the gauge after `LAG` and drains away with a time constant
`DRAIN`; the level is the gauge's dry-weather level plus `RISE` metres per millimetre of the
rain still in the stream. It is computed from the scenario's rain spells alone (no state), so a
simulation that jumps ahead reads the same level. With the heavy-rain scenario (40 mm an hour
for three hours) Jungnangcheon at Changdong bridge passes its alert level in the evening.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

from smartcity.sim.scenario import Scenario

LAG: Final = timedelta(minutes=30)
DRAIN: Final = 4.0
"""Hours in which the rain still in the stream falls to 1/e."""
RISE: Final = 0.04
"""Metres of level per millimetre of rain still in the stream."""
WINDOW: Final = timedelta(hours=12)
STEP: Final = timedelta(minutes=10)


def water_level(scenario: Scenario, at: datetime, dry_level: float) -> float:
    """Return the level in metres at a gauge at a moment."""
    stored = 0.0
    moment = at - LAG - WINDOW
    end = at - LAG
    while moment < end:
        rain = max((s.intensity for s in scenario.rains if s.start <= moment < s.end), default=0.0)
        if rain:
            age = (end - moment).total_seconds() / 3600
            stored += rain * (STEP.total_seconds() / 3600) * math.exp(-age / DRAIN)
        moment += STEP
    return round(dry_level + RISE * stored, 2)


def level_status(level: float, alert: float, danger: float) -> str:
    """Return the gauge's status: normal, alert or danger."""
    if level >= danger:
        return "danger"
    return "alert" if level >= alert else "normal"
