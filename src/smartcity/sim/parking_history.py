"""Weeks of parking-lot occupancy for forecasting: the simulator's lots, day after day.

The live simulator runs one scenario (a day or an evening); a forecaster needs weeks of history.
This runs the simulator's own parking model (`ParkingModel`: Poisson arrivals and departures
towards each lot's daily target, concert traffic filling the lots nearest the venue) minute by
minute over many days, and adds what makes real days differ from one another, so that a
forecast is not just the profile read back: a demand factor per day that persists from one day
to the next, a factor per lot and day, a slow drift within the day (an Ornstein-Uhlenbeck
process, about two hours long), rainy afternoons (more shoppers drive, fewer people go to the
riverside), Korean public holidays (parked like a Sunday), concerts at the arena on one or two
evenings a week with varying crowds and start times, and counters that go silent for hours (no
reading: a gap, never a free lot). Everything is drawn from the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from smartcity.core.clock import isoformat
from smartcity.sim.events import ConcertModel
from smartcity.sim.model import District, ParkingLot
from smartcity.sim.parking import ParkingModel
from smartcity.sim.scenario import Concert
from smartcity.storage.history import HistoryStore
from smartcity.storage.history_rows import EntityHeader, HistoryRow, instance_row, micros

MINUTE = timedelta(minutes=1)
VENUE = "seoul-arena"
RAIN_EFFECT = {"shopping": 1.12, "leisure": 0.45, "station": 1.05}
"""Demand factor per lot use while it rains."""


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """What to simulate: from which local date, for how many days, with which seed."""

    start: date
    days: int
    seed: int = 7
    step_minutes: int = 5
    """How often a lot's counter reports."""
    concerts_per_week: tuple[int, int] = (1, 2)
    day_sigma: float = 0.08
    """Spread of the district's demand from day to day (log scale)."""
    lot_day_sigma: float = 0.07
    drift_sigma: float = 0.06
    """Spread of the slow drift within a day (log scale)."""
    rain_days: float = 0.18
    """Share of days with a rainy spell."""
    outage_rate: float = 0.015
    """Chance per lot and day that its counter goes silent for 1-8 hours."""
    lots: tuple[str, ...] = ()
    """Only these lots (all when empty)."""


@dataclass(slots=True)
class LotHistory:
    """The occupied spaces a lot reported at each step (None: no reading)."""

    lot: ParkingLot
    occupied: list[int | None] = field(default_factory=list)


@dataclass(slots=True)
class SimulatedHistory:
    """Occupancy of every lot on a regular grid, and the days' circumstances."""

    start: datetime
    """The first reading, aware (UTC)."""
    step: timedelta
    lots: list[LotHistory]
    concerts: list[Concert]
    holidays: set[date]
    rainy: set[date]
    zone: ZoneInfo

    def times(self) -> Iterator[datetime]:
        """Yield the time of each reading."""
        count = len(self.lots[0].occupied) if self.lots else 0
        for index in range(count):
            yield self.start + index * self.step


def korean_holidays(first: date, last: date) -> set[date]:
    """Return the South Korean public holidays (substitutes included) between two dates."""
    calendar = holidays.country_holidays("KR", years=range(first.year, last.year + 1))
    return {day for day in calendar if first <= day <= last}


def _concerts(plan: HistoryPlan, rng: random.Random, zone: ZoneInfo) -> list[Concert]:
    """Draw the concerts: one or two a week, mostly Friday or Saturday evenings."""
    found: list[Concert] = []
    for week in range(math.ceil(plan.days / 7)):
        count = rng.randint(*plan.concerts_per_week)
        days = list(range(3, 7))  # Thursday .. Sunday
        weights = [1.0, 3.0, 3.0, 1.5]
        chosen: set[int] = set()
        while len(chosen) < count:
            chosen.add(rng.choices(days, weights)[0])
        monday = plan.start + timedelta(days=week * 7 - plan.start.weekday())
        for offset in sorted(chosen):
            day = monday + timedelta(days=offset)
            if not plan.start <= day < plan.start + timedelta(days=plan.days):
                continue
            start = datetime.combine(day, time(rng.choice((18, 19, 19, 20)), rng.choice((0, 30))))
            show_start = start.replace(tzinfo=zone).astimezone(UTC)
            length = timedelta(minutes=rng.randint(130, 180))
            found.append(
                Concert(
                    place=VENUE,
                    visitors=rng.randrange(6000, 18001, 500),
                    arrive_from=show_start - timedelta(minutes=rng.randint(100, 150)),
                    show_start=show_start,
                    show_end=show_start + length,
                    leave_until=show_start + length + timedelta(minutes=rng.randint(25, 45)),
                    car_share=round(rng.uniform(0.14, 0.26), 2),
                    transit_share=0.65,
                )
            )
    return found


def _leaving_share(models: list[ConcertModel], moment: datetime) -> float:
    share = 0.0
    for model in models:
        before = model.left(moment)
        if before < 1:
            share = max(share, (model.left(moment + MINUTE) - before) / (1 - before))
    return share


def simulate_history(district: District, plan: HistoryPlan) -> SimulatedHistory:
    """Simulate the lots of a district over the plan's days; deterministic by the seed."""
    zone = ZoneInfo(district.timezone)
    rng = random.Random(f"{plan.seed}:parking-history")
    last = plan.start + timedelta(days=plan.days - 1)
    days_off = korean_holidays(plan.start, last)
    lots = [
        replace(lot, spot_sensors=False)  # the lot totals are what is forecast: skip the spots
        for lot in district.parking
        if not plan.lots or lot.id in plan.lots
    ]
    venue = next((p.anchor for p in district.places if p.id == VENUE), None)
    model = ParkingModel(lots, venue)
    concerts = _concerts(plan, rng, zone) if venue is not None else []
    concert_models = [ConcertModel(concert, district) for concert in concerts]
    rainy = {
        plan.start + timedelta(days=d) for d in range(plan.days) if rng.random() < plan.rain_days
    }
    rain_hours = {day: (rng.randint(10, 17), rng.randint(2, 6)) for day in sorted(rainy)}
    begin = datetime.combine(plan.start, time(0, 0), zone).astimezone(UTC)
    history = SimulatedHistory(
        begin, timedelta(minutes=plan.step_minutes), [LotHistory(lot) for lot in lots],
        concerts, days_off, rainy, zone,
    )  # fmt: skip
    model.settle(rng, begin.astimezone(zone), plan.start.weekday() >= 5, 1.0)
    day_factor, drift = 0.0, {lot.id: 0.0 for lot in lots}
    lot_factor: dict[str, float] = {}
    silent: dict[str, tuple[int, int]] = {}
    decay = math.exp(-1 / 120)
    for minute in range(plan.days * 24 * 60):
        moment = begin + minute * MINUTE
        local = moment.astimezone(zone)
        if minute % 1440 == 0:
            day_factor = 0.5 * day_factor + rng.gauss(0, plan.day_sigma)
            for state in model.states:
                lot_factor[state.lot.id] = rng.gauss(0, plan.lot_day_sigma)
                if rng.random() < plan.outage_rate:
                    begins = minute + rng.randrange(0, 1440)
                    silent[state.lot.id] = (begins, begins + rng.randint(60, 480))
        weekend = local.weekday() >= 5 or local.date() in days_off
        raining = False
        if local.date() in rainy:
            hour, length = rain_hours[local.date()]
            raining = hour <= local.hour < hour + length
        demand: dict[str, float] = {}
        for state in model.states:
            key = state.lot.id
            drift[key] = drift[key] * decay + rng.gauss(0, plan.drift_sigma) * math.sqrt(
                1 - decay * decay
            )
            factor = math.exp(day_factor + lot_factor[key] + drift[key])
            if raining:
                factor *= RAIN_EFFECT.get(state.use, 1.0)
            demand[key] = factor
        arriving = sum(
            c.flows(moment, moment + MINUTE).cars_arriving
            for c in concert_models
            if c.active(moment)
        )
        if minute % plan.step_minutes == 0:
            for lot_history, state in zip(history.lots, model.states, strict=True):
                gap = silent.get(state.lot.id)
                reading = None if gap and gap[0] <= minute < gap[1] else state.occupied
                lot_history.occupied.append(reading)
        model.step(
            rng,
            local,
            weekend,
            1.0,
            event_arriving=arriving,
            event_leaving_share=_leaving_share(concert_models, moment),
            lot_demand=demand,
        )
    return history


PARKING = "https://smartdatamodels.org/dataModel.Parking/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"


def lot_entity_id(lot_id: str) -> str:
    """Return the entity id of a district lot (as the simulator's entities name it)."""
    return f"urn:ngsi-ld:OffStreetParking:{lot_id}"


def _property(value: object, observed: str) -> dict[str, object]:
    return {"type": "Property", "value": value, "observedAt": observed}


def history_rows(history: SimulatedHistory, lot: LotHistory) -> list[HistoryRow]:
    """Return the history rows a lot's counter would have written (free and used spaces)."""
    received = micros(isoformat(history.start))
    total = lot.lot.total_spots
    first = isoformat(history.start)
    rows = [
        instance_row(PARKING + "totalSpotNumber", _property(total, first), received),
        instance_row(
            LOCATION,
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": list(lot.lot.position)},
                "observedAt": first,
            },
            received,
        ),
    ]
    for moment, occupied in zip(history.times(), lot.occupied, strict=True):
        if occupied is None:
            continue
        stamp = isoformat(moment)
        rows.append(
            instance_row(PARKING + "occupiedSpotNumber", _property(occupied, stamp), received)
        )
        rows.append(
            instance_row(
                PARKING + "availableSpotNumber", _property(total - occupied, stamp), received
            )
        )
    return rows


def write_history(store: HistoryStore, tenant: str, history: SimulatedHistory) -> int:
    """Write every lot's readings into a history store, a lot per transaction; return the rows."""
    written = 0
    for lot in history.lots:
        header = EntityHeader(lot_entity_id(lot.lot.id), [PARKING + "OffStreetParking"], [])
        rows = history_rows(history, lot)
        store.add_many(tenant, [(header, rows)])
        written += len(rows)
    return written
