"""Illegal parking on the district's narrow streets, as enforcement cameras see it, and the
signal controllers: their time-of-day plans and how they take a green-wave priority request.

Whether a car stands illegally at an enforcement camera is drawn per 20-minute block from the
seed, the camera and the block, so a car stays a while, the same time always gives the same
answer, and a simulation that jumps ahead needs no history. Residential streets fill up in the
evening and at night (residents without a space); tertiary streets by the station and markets
at lunch and dinner time (deliveries, short stops).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Final

BLOCK_MINUTES: Final = 20


def parking_chance(road_class: str, local: datetime, day_type: str) -> float:
    """Return the chance that a car stands illegally on a street at a local time."""
    hour = local.hour
    weekend = 0.05 if day_type != "weekday" else 0.0
    if road_class == "residential":
        return (0.35 if hour >= 20 or hour < 7 else 0.12) + weekend
    if 11 <= hour < 14 or 18 <= hour < 22:
        return 0.30 + weekend
    return 0.08 + weekend


def illegally_parked(
    seed: int, device_id: str, road_class: str, local: datetime, day_type: str
) -> bool:
    """Tell whether a car stands illegally in an enforcement camera's view now."""
    block = int(local.timestamp()) // (BLOCK_MINUTES * 60)
    draw = random.Random(f"{seed}:parked:{device_id}:{block}").random()
    return draw < parking_chance(road_class, local, day_type)


def signal_plan(local: datetime, day_type: str) -> int:
    """Return the signal timing plan in force: 1 night, 2 morning peak, 3 evening peak,
    4 off-peak."""
    hour = local.hour
    if hour < 6 or hour >= 23:
        return 1
    if day_type == "weekday" and 7 <= hour < 9:
        return 2
    if day_type == "weekday" and 17 <= hour < 20:
        return 3
    return 4


def priority_answer(arguments: dict[str, Any]) -> tuple[bool, str]:
    """Return how a signal controller takes a `priority` request (incident, eta, hold): it
    grants green to the approach at the arrival time, or refuses a request it cannot place."""
    eta = arguments.get("eta")
    hold = arguments.get("hold", 60)
    if not isinstance(eta, str) or not isinstance(hold, int | float) or not 0 < hold <= 300:
        return False, "a priority request needs `eta` (ISO 8601) and `hold` (1-300 s)"
    try:
        moment = datetime.fromisoformat(eta.replace("Z", "+00:00"))
    except ValueError:
        return False, f"eta {eta!r} is not an ISO 8601 time"
    return True, f"green from {moment.isoformat(timespec='seconds')} for {round(hold)} s"
