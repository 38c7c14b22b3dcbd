"""Parking: each lot's occupancy from arrivals and departures, and its sensed spots.

Every lot follows a daily target occupancy for its use (shoppers, commuters at stations,
office staff, residents, riverside leisure); each minute cars arrive and leave at random
(Poisson, from the lot's turnover and the gap to its target). Event traffic parks at the lots
nearest the venue first and spills over to farther ones as they fill; those cars leave when the
show is over. In lots with spot sensors the occupied spaces are drawn one by one, so each spot
sensor reports exactly when its space changes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from smartcity.sim.geodesy import Position, distance
from smartcity.sim.model import ParkingLot
from smartcity.sim.patterns import hourly

Profile = tuple[float, ...]
USE_PROFILES: dict[str, dict[str, Profile]] = {
    "shopping": {
        "weekday": (
            0.05, 0.03, 0.03, 0.03, 0.03, 0.03, 0.05, 0.08, 0.15, 0.25, 0.40, 0.52,
            0.58, 0.60, 0.62, 0.64, 0.68, 0.72, 0.74, 0.70, 0.58, 0.40, 0.20, 0.08,
        ),
        "weekend": (
            0.05, 0.03, 0.03, 0.03, 0.03, 0.03, 0.05, 0.08, 0.18, 0.35, 0.58, 0.75,
            0.85, 0.90, 0.92, 0.92, 0.90, 0.86, 0.80, 0.72, 0.58, 0.40, 0.20, 0.08,
        ),
    },
    "station": {
        "weekday": (
            0.35, 0.33, 0.32, 0.32, 0.32, 0.35, 0.50, 0.75, 0.88, 0.90, 0.88, 0.86,
            0.86, 0.86, 0.86, 0.86, 0.84, 0.80, 0.70, 0.60, 0.52, 0.45, 0.40, 0.37,
        ),
        "weekend": (
            0.30, 0.28, 0.27, 0.27, 0.27, 0.28, 0.32, 0.40, 0.50, 0.62, 0.72, 0.78,
            0.80, 0.80, 0.80, 0.78, 0.75, 0.70, 0.62, 0.55, 0.48, 0.40, 0.35, 0.32,
        ),
    },
    "office": {
        "weekday": (
            0.08, 0.06, 0.06, 0.06, 0.06, 0.08, 0.15, 0.45, 0.82, 0.90, 0.90, 0.88,
            0.85, 0.88, 0.90, 0.88, 0.82, 0.60, 0.30, 0.18, 0.12, 0.10, 0.08, 0.08,
        ),
        "weekend": (
            0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.06, 0.08, 0.12, 0.15, 0.18, 0.18,
            0.18, 0.18, 0.16, 0.15, 0.12, 0.10, 0.08, 0.06, 0.05, 0.05, 0.05, 0.05,
        ),
    },
    "residential": {
        "weekday": (
            0.92, 0.93, 0.93, 0.93, 0.92, 0.88, 0.78, 0.62, 0.52, 0.48, 0.46, 0.46,
            0.47, 0.47, 0.48, 0.50, 0.55, 0.62, 0.72, 0.80, 0.86, 0.89, 0.91, 0.92,
        ),
        "weekend": (
            0.92, 0.93, 0.93, 0.93, 0.93, 0.92, 0.90, 0.85, 0.78, 0.70, 0.64, 0.60,
            0.58, 0.58, 0.60, 0.62, 0.66, 0.72, 0.78, 0.84, 0.88, 0.90, 0.91, 0.92,
        ),
    },
    "leisure": {
        "weekday": (
            0.05, 0.04, 0.04, 0.04, 0.04, 0.05, 0.08, 0.12, 0.15, 0.18, 0.22, 0.25,
            0.28, 0.30, 0.30, 0.30, 0.32, 0.34, 0.32, 0.26, 0.18, 0.12, 0.08, 0.06,
        ),
        "weekend": (
            0.06, 0.05, 0.05, 0.05, 0.05, 0.06, 0.10, 0.18, 0.30, 0.45, 0.62, 0.75,
            0.82, 0.85, 0.85, 0.82, 0.78, 0.70, 0.55, 0.40, 0.25, 0.15, 0.10, 0.07,
        ),
    },
    "event": {
        "weekday": (0.03,) * 24,
        "weekend": (0.04,) * 24,
    },
}  # fmt: skip
"""Target occupancy by hour, per use of a lot."""
TURNOVER = {"shopping": 0.006, "station": 0.004, "office": 0.002, "residential": 0.001}
"""Share of a lot's spaces that change hands each minute besides the move to the target."""
RELAXATION = 0.06
"""Share of the gap to the target that arrivals or departures close each minute."""
EVENT_RADIUS = 1500.0
"""Metres: event traffic parks no farther from the venue than this (else on the street)."""
EVENT_MARGIN = 0.02
"""Share of a lot's spaces event traffic leaves free (the last spaces are hard to find)."""


def lot_use(lot: ParkingLot) -> str:
    """Return what a lot mostly serves, from its id and categories."""
    if "forCustomers" in lot.category:
        return "shopping"
    name = lot.id
    if "arena" in name:
        return "event"
    if "office" in name:
        return "office"
    if "riverside" in name or "museum" in name or "culture" in name:
        return "leisure"
    if "station" in name or "market" in name or "shortTerm" in lot.category:
        return "station"
    return "residential"


def poisson(rng: random.Random, mean: float) -> int:
    """Return a Poisson draw (Knuth's method for small means, a rounded normal for large)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(slots=True)
class LotState:
    """One lot during the simulation."""

    lot: ParkingLot
    use: str
    occupied: int
    entries: int = 0
    """Cars in during the last minute."""
    exits: int = 0
    event_cars: float = 0.0
    spots: list[bool] = field(default_factory=list)
    """Occupied or not, per sensed space (empty without spot sensors)."""

    @property
    def free(self) -> int:
        """Return the free spaces."""
        return self.lot.total_spots - self.occupied


class ParkingModel:
    """The district's lots, minute by minute."""

    def __init__(self, lots: list[ParkingLot], venue: Position | None = None) -> None:
        self.states = [LotState(lot, lot_use(lot), 0) for lot in lots]
        self.by_id = {state.lot.id: state for state in self.states}
        self.unparked = 0.0
        """Event cars that found no space within reach (they park on the street)."""
        self.venue_order: list[LotState] = []
        if venue is not None:
            near = [(distance(venue, s.lot.position), s.lot.id, s) for s in self.states]
            self.venue_order = [s for metres, _, s in sorted(near) if metres <= EVENT_RADIUS]

    @staticmethod
    def target(state: LotState, local: datetime, weekend: bool) -> float:
        """Return the share of a lot's spaces usually taken at a local time."""
        profile = USE_PROFILES[state.use]["weekend" if weekend else "weekday"]
        return hourly(profile, local)

    def settle(self, rng: random.Random, local: datetime, weekend: bool, demand: float) -> None:
        """Fill every lot to its usual occupancy at a moment (the start of a simulation)."""
        for state in self.states:
            share = min(0.98, self.target(state, local, weekend) * demand)
            state.occupied = round(state.lot.total_spots * share)
            if state.lot.spot_sensors:
                taken = set(rng.sample(range(state.lot.total_spots), state.occupied))
                state.spots = [index in taken for index in range(state.lot.total_spots)]

    def step(
        self,
        rng: random.Random,
        local: datetime,
        weekend: bool,
        demand: float,
        event_arriving: float = 0.0,
        event_leaving_share: float = 0.0,
        lot_demand: Mapping[str, float] | None = None,
    ) -> list[tuple[str, int, bool]]:
        """Move one minute on; return the spot changes as (lot id, spot index, occupied).

        `event_arriving` cars look for space near the venue; `event_leaving_share` of the event
        cars still parked leave this minute; `lot_demand` scales the demand of single lots (a
        busier day at one market, rain keeping people from the riverside).
        """
        changes: list[tuple[str, int, bool]] = []
        event_in = self._event_arrivals(event_arriving)
        for state in self.states:
            spots = state.lot.total_spots
            factor = demand * (lot_demand.get(state.lot.id, 1.0) if lot_demand else 1.0)
            target = min(0.98, self.target(state, local, weekend) * factor) * spots
            usual = spots - state.event_cars
            gap = target - (state.occupied - state.event_cars)
            churn = TURNOVER.get(state.use, 0.001) * usual
            arriving = poisson(rng, churn + max(gap, 0.0) * RELAXATION)
            leaving = poisson(rng, churn + max(-gap, 0.0) * RELAXATION)
            event_out = 0
            if event_leaving_share > 0 and state.event_cars > 0:
                event_out = min(
                    round(state.event_cars * event_leaving_share), round(state.event_cars)
                )
                state.event_cars -= event_out
            arriving += event_in.get(state.lot.id, 0)
            leaving = min(leaving + event_out, state.occupied)
            arriving = min(arriving, spots - state.occupied + leaving)
            state.occupied += arriving - leaving
            state.entries, state.exits = arriving, leaving
            if state.spots:
                changes.extend(self._move_spots(rng, state, arriving, leaving))
        return changes

    def _event_arrivals(self, cars: float) -> dict[str, int]:
        """Send arriving event cars to the nearest lots with room; count those left over."""
        placed: dict[str, int] = {}
        remaining = cars
        for state in self.venue_order:
            if remaining <= 0:
                break
            room = state.free - round(state.lot.total_spots * EVENT_MARGIN)
            if room <= 0:
                continue
            taken = min(room, math.floor(remaining + 0.5))
            if taken <= 0:
                break
            placed[state.lot.id] = taken
            state.event_cars += taken
            remaining -= taken
        self.unparked += max(remaining, 0.0)
        return placed

    @staticmethod
    def _move_spots(
        rng: random.Random, state: LotState, arriving: int, leaving: int
    ) -> list[tuple[str, int, bool]]:
        changes = []
        occupied = [i for i, taken in enumerate(state.spots) if taken]
        for index in rng.sample(occupied, min(leaving, len(occupied))):
            state.spots[index] = False
            changes.append((state.lot.id, index, False))
        free = [i for i, taken in enumerate(state.spots) if not taken]
        for index in rng.sample(free, min(arriving, len(free))):
            state.spots[index] = True
            changes.append((state.lot.id, index, True))
        return changes
