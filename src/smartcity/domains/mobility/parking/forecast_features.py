"""The features of an occupancy forecast: the clock, the calendar, known events, recent readings.

Everything is a share of the lot's capacity, so one model serves lots of every size. A missing
reading stays NaN (the gradient-boosted trees route missing values on their own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt

from smartcity.domains.mobility.parking.forecast_series import FloatArray, OccupancySeries

IntArray = npt.NDArray[np.int64]
WEEK: Final = timedelta(days=7)
PEOPLE_PER_CAR: Final = 1.6
NO_EVENT_MINUTES: Final = 1440.0
NO_EVENT_KM: Final = 100.0
FEATURES: Final = (
    "horizon_minutes",
    "ratio_now",
    "ratio_15_min_ago",
    "ratio_30_min_ago",
    "ratio_60_min_ago",
    "trend_15_min",
    "trend_60_min",
    "last_week_at_target",
    "last_week_at_origin",
    "last_week_change",
    "yesterday_at_target",
    "usual_at_target",
    "usual_at_origin",
    "usual_change",
    "deviation_from_usual",
    "target_minute_of_day",
    "target_weekday",
    "target_day_off",
    "log_capacity",
    "event_minutes_since_start",
    "event_minutes_since_end",
    "event_cars_per_space",
    "event_distance_km",
)
"""The columns of a feature row, in order."""


@dataclass(frozen=True, slots=True)
class KnownEvent:
    """An event announced ahead (a concert at the arena), as a forecast sees it."""

    venue: tuple[float, float]
    """Longitude, latitude."""
    start: datetime
    end: datetime
    expected_visitors: int
    car_share: float = 0.2
    name: str = ""

    @property
    def cars(self) -> float:
        """Return the cars the event is expected to bring."""
        return self.expected_visitors * self.car_share / PEOPLE_PER_CAR


class EventCalendar(Protocol):
    """Where a forecast learns of the events a tenant expects."""

    def events_between(self, tenant: str, start: datetime, end: datetime) -> list[KnownEvent]:
        """Return the events that touch [start, end)."""
        ...


@dataclass(slots=True)
class StaticEvents:
    """An event calendar held in memory (tests, benchmarks, a calendar loaded from a file)."""

    events: dict[str, list[KnownEvent]] = field(default_factory=dict)

    def add(self, tenant: str, event: KnownEvent) -> None:
        """Announce an event for a tenant."""
        self.events.setdefault(tenant, []).append(event)

    def events_between(self, tenant: str, start: datetime, end: datetime) -> list[KnownEvent]:
        """Return the tenant's events that touch [start, end)."""
        return [e for e in self.events.get(tenant, []) if e.start < end and e.end > start]


@lru_cache(maxsize=8)
def _holidays(country: str, first_year: int, last_year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=range(first_year, last_year + 1)))


@dataclass(frozen=True, slots=True)
class LocalClock:
    """Local time of day, weekday and days off (weekends and public holidays) on a grid."""

    zone: ZoneInfo
    country: str = "KR"

    def describe(
        self, start: datetime, step: timedelta, indices: IntArray
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Return minute of day, weekday (Monday 0) and day off (0/1) at grid indices."""
        step_s = step.total_seconds()
        seconds = start.timestamp() + indices.astype(np.float64) * step_s
        days = np.floor(seconds / 86400).astype(np.int64)
        unique = np.unique(days) if len(days) else np.zeros(0, np.int64)
        offsets = np.array(
            [
                (
                    datetime.fromtimestamp(int(day) * 86400 + 43200, UTC)
                    .astimezone(self.zone)
                    .utcoffset()
                    or timedelta(0)
                ).total_seconds()
                for day in unique
            ]
        )
        local = seconds + (offsets[np.searchsorted(unique, days)] if len(unique) else 0.0)
        local_days = np.floor(local / 86400).astype(np.int64)
        minute = ((local - local_days * 86400) // 60).astype(np.int64)
        weekday = (local_days + 3) % 7  # 1970-01-01 was a Thursday
        off = weekday >= 5
        if len(local_days):
            first = date.fromordinal(int(local_days.min()) + 719163)
            last = date.fromordinal(int(local_days.max()) + 719163)
            closed = _holidays(self.country, first.year, last.year)
            ordinals = np.array([d.toordinal() - 719163 for d in closed], dtype=np.int64)
            off = off | np.isin(local_days, ordinals)
        return minute, weekday, off.astype(np.float64)


@dataclass(slots=True)
class UsualOccupancy:
    """The mean occupied share per weekday and time of day (the historical average)."""

    slots_per_day: int
    table: FloatArray
    """Shape (7, slots_per_day); NaN where the history had nothing."""
    overall: float

    @classmethod
    def fit(
        cls, series: OccupancySeries, clock: LocalClock, end: int | None = None
    ) -> UsualOccupancy:
        """Average a series' shares per weekday and slot, over its steps before `end`."""
        slots = round(timedelta(days=1) / series.step)
        ratio = series.ratio[:end]
        indices = np.arange(len(ratio), dtype=np.int64)
        minute, weekday, _ = clock.describe(series.start, series.step, indices)
        slot = minute * slots // 1440
        known = ~np.isnan(ratio)
        sums = np.zeros((7, slots))
        counts = np.zeros((7, slots))
        np.add.at(sums, (weekday[known], slot[known]), ratio[known])
        np.add.at(counts, (weekday[known], slot[known]), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            table = sums / counts
        overall = float(np.nanmean(ratio)) if known.any() else math.nan
        return cls(slots, table, overall)

    def at(self, minute: IntArray, weekday: IntArray) -> FloatArray:
        """Return the usual share at local minutes of day and weekdays."""
        values = self.table[weekday, minute * self.slots_per_day // 1440]
        return np.where(np.isnan(values), self.overall, values)


def _at(values: FloatArray, indices: IntArray) -> FloatArray:
    """Return values at indices, NaN where an index falls outside the series."""
    inside = (indices >= 0) & (indices < len(values))
    out = np.full(len(indices), np.nan)
    out[inside] = values[indices[inside]]
    return out


def last_known(values: FloatArray, indices: IntArray, max_age: int) -> FloatArray:
    """Return the latest value at or before each index, if at most `max_age` steps old."""
    positions = np.arange(len(values))
    seen = np.where(np.isnan(values), -1, positions)
    latest = np.maximum.accumulate(seen) if len(values) else seen
    out = np.full(len(indices), np.nan)
    inside = (indices >= 0) & (indices < len(values))
    found = latest[indices[inside]]
    fresh = (found >= 0) & (indices[inside] - found <= max_age)
    picked = np.full(int(inside.sum()), np.nan)
    picked[fresh] = values[found[fresh]]
    out[inside] = picked
    return out


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the great-circle distance between two longitude-latitude points, in km."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def event_features(
    series: OccupancySeries, targets: IntArray, events: Sequence[KnownEvent]
) -> FloatArray:
    """Return, per target step, the nearest event's timing, cars per space and distance.

    Without an event the timing reads a day away and the distance 100 km (values, not NaN:
    "no event" is known, not missing).
    """
    out = np.tile(
        np.array([NO_EVENT_MINUTES, NO_EVENT_MINUTES, 0.0, NO_EVENT_KM]), (len(targets), 1)
    )
    if not events or series.lot.position is None:
        return out
    seconds = series.start.timestamp() + targets.astype(np.float64) * series.step.total_seconds()
    best = np.full(len(targets), np.inf)
    for event in events:
        since_start = (seconds - event.start.timestamp()) / 60
        since_end = (seconds - event.end.timestamp()) / 60
        near = (since_start >= -360) & (since_end <= 180)
        closeness = np.abs(since_start)
        take = near & (closeness < best)
        best = np.where(take, closeness, best)
        out[take, 0] = since_start[take]
        out[take, 1] = since_end[take]
        out[take, 2] = event.cars / max(series.lot.capacity, 1)
        out[take, 3] = distance_km(series.lot.position, event.venue)
    return out


def build_features(
    series: OccupancySeries,
    origins: IntArray,
    horizons: IntArray,
    usual: UsualOccupancy,
    clock: LocalClock,
    events: Sequence[KnownEvent] = (),
) -> FloatArray:
    """Return one feature row (FEATURES) per origin step and horizon (in steps)."""
    ratio = series.ratio
    per_minute = series.step.total_seconds() / 60
    back = {minutes: round(minutes / per_minute) for minutes in (15, 30, 60)}
    week = round(WEEK / series.step)
    day = week // 7
    targets = origins + horizons
    now = last_known(ratio, origins, back[30])
    ago = {m: last_known(ratio, origins - s, back[15]) for m, s in back.items()}
    week_target = _at(ratio, targets - week)
    week_origin = _at(ratio, origins - week)
    t_minute, t_weekday, t_off = clock.describe(series.start, series.step, targets)
    o_minute, o_weekday, _ = clock.describe(series.start, series.step, origins)
    usual_target = usual.at(t_minute, t_weekday)
    usual_origin = usual.at(o_minute, o_weekday)
    columns = [
        horizons * per_minute,
        now,
        ago[15],
        ago[30],
        ago[60],
        now - ago[15],
        now - ago[60],
        week_target,
        week_origin,
        week_target - week_origin,
        _at(ratio, targets - day),
        usual_target,
        usual_origin,
        usual_target - usual_origin,
        now - usual_origin,
        t_minute,
        t_weekday,
        t_off,
        np.full(len(origins), math.log(max(series.lot.capacity, 1))),
    ]
    matrix = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    return np.hstack([matrix, event_features(series, targets, events)])
