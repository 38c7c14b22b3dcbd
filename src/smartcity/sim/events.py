"""What a scenario's events do over time: concert crowds arriving and leaving, incidents' reach.

Concert arrivals follow a triangular distribution from the first arrivals to ten minutes after
the show starts, peaking 40 minutes before it; departures one from the end of the show to the
end of `leave_within`, peaking eight minutes in. Visitors split into car drivers (1.6 people a
car), subway riders (from the two nearest stations, by distance) and walkers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.geodesy import Position, distance
from smartcity.sim.model import District
from smartcity.sim.scenario import Concert

PEOPLE_PER_CAR = 1.6


def triangular_cdf(moment: datetime, low: datetime, peak: datetime, high: datetime) -> float:
    """Return the share of a triangular distribution over time that lies before `moment`."""
    if moment <= low:
        return 0.0
    if moment >= high:
        return 1.0
    span = (high - low).total_seconds()
    rise = (peak - low).total_seconds()
    x = (moment - low).total_seconds()
    if x <= rise:
        return x * x / (span * rise) if rise > 0 else 0.0
    fall = span - rise
    return 1 - (span - x) ** 2 / (span * fall) if fall > 0 else 1.0


@dataclass(frozen=True, slots=True)
class ConcertFlows:
    """People moving for a concert during one minute, and how many are at the venue."""

    arriving: float
    leaving: float
    present: float
    cars_arriving: float
    cars_leaving: float
    riders_arriving: float
    """Subway riders walking from the stations to the venue."""
    riders_leaving: float

    @property
    def walking(self) -> float:
        """People on foot this minute, either way, between stations and the venue."""
        return self.riders_arriving + self.riders_leaving


class ConcertModel:
    """A concert's crowd over time, at its venue and on the way there."""

    def __init__(self, concert: Concert, district: District) -> None:
        self.concert = concert
        venue = next(place for place in district.places if place.id == concert.place)
        self.venue: Position = venue.anchor
        stations = sorted(
            district.places_of("station"),
            key=lambda station: distance(station.anchor, venue.anchor),
        )[:2]
        weights = [1 / max(distance(s.anchor, venue.anchor), 100.0) for s in stations]
        total = sum(weights) or 1.0
        self.stations: list[tuple[Position, float]] = [
            (station.anchor, weight / total)
            for station, weight in zip(stations, weights, strict=True)
        ]
        self._arrival_peak = concert.show_start - timedelta(minutes=40)
        self._arrival_end = concert.show_start + timedelta(minutes=10)
        self._leave_peak = concert.show_end + timedelta(minutes=8)

    def arrived(self, moment: datetime) -> float:
        """Return the share of visitors who have arrived by a moment."""
        low = self.concert.arrive_from
        peak = max(self._arrival_peak, low + timedelta(minutes=1))
        return triangular_cdf(moment, low, peak, self._arrival_end)

    def left(self, moment: datetime) -> float:
        """Return the share of visitors who have left by a moment."""
        concert = self.concert
        peak = min(self._leave_peak, concert.leave_until - timedelta(seconds=1))
        return triangular_cdf(moment, concert.show_end, peak, concert.leave_until)

    def flows(self, start: datetime, end: datetime) -> ConcertFlows:
        """Return the flows between two moments (a minute of the simulation)."""
        visitors = self.concert.visitors
        arriving = visitors * (self.arrived(end) - self.arrived(start))
        leaving = visitors * (self.left(end) - self.left(start))
        present = visitors * (self.arrived(end) - self.left(end))
        car = self.concert.car_share / PEOPLE_PER_CAR
        transit = self.concert.transit_share
        return ConcertFlows(
            arriving=arriving,
            leaving=leaving,
            present=present,
            cars_arriving=arriving * car,
            cars_leaving=leaving * car,
            riders_arriving=arriving * transit,
            riders_leaving=leaving * transit,
        )

    def active(self, moment: datetime) -> bool:
        """Tell whether the concert moves anyone at a moment."""
        return self.concert.arrive_from <= moment < self.concert.leave_until


def concert_entities(concerts: Sequence[Concert], district: District) -> list[dict[str, Any]]:
    """Return an `Event` entity per concert: where and when, so services can plan for it."""
    entities = []
    for concert in concerts:
        venue = next(place for place in district.places if place.id == concert.place)
        start = concert.show_start.isoformat()
        entities.append(
            {
                "@context": CHANGDONG_CONTEXT_URL,
                "id": f"urn:ngsi-ld:Event:{district.id}-{concert.place}-{start[:16]}",
                "type": "Event",
                "name": {"type": "Property", "value": f"{venue.name_ko} 공연"},
                "alternateName": {"type": "Property", "value": f"Concert at {venue.name_en}"},
                "eventType": {"type": "Property", "value": "concert"},
                "startDate": {"type": "Property", "value": start},
                "endDate": {"type": "Property", "value": concert.leave_until.isoformat()},
                "doorTime": {"type": "Property", "value": concert.arrive_from.isoformat()},
                "expectedAttendance": {"type": "Property", "value": concert.visitors},
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": list(venue.anchor)},
                },
            }
        )
    return entities
