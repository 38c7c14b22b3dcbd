"""When rules are armed: weekdays, local hours, night (sunset to sunrise), calendars of days."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sunrise, sunset

from smartcity.rules.model import DAYS, Schedule


class Sun:
    """Sunrise and sunset at one place, per local date (cached: a date is asked many times)."""

    def __init__(self, location: tuple[float, float], zone: ZoneInfo) -> None:
        self.observer = Observer(latitude=location[1], longitude=location[0])
        self.zone = zone
        self._days: dict[date, tuple[float, float]] = {}

    def day(self, local_date: date) -> tuple[float, float]:
        """Return sunrise and sunset of a local date, as POSIX seconds."""
        found = self._days.get(local_date)
        if found is None:
            try:
                rise = sunrise(self.observer, local_date, tzinfo=self.zone).timestamp()
                fall = sunset(self.observer, local_date, tzinfo=self.zone).timestamp()
            except ValueError:  # the sun does not rise or set that day (polar places)
                rise, fall = 0.0, 0.0
            found = self._days[local_date] = (rise, fall)
        return found

    def is_night(self, seconds: float) -> bool:
        """Tell whether the sun is down at a moment."""
        local = datetime.fromtimestamp(seconds, self.zone)
        rise, fall = self.day(local.date())
        return seconds < rise or seconds >= fall


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class CompiledSchedule:
    """A schedule ready to test moments."""

    def __init__(
        self,
        schedule: Schedule,
        zone: ZoneInfo,
        sun: Sun,
        calendars: Mapping[str, Sequence[date]],
    ) -> None:
        self.zone = zone
        self.sun = sun
        self.days = frozenset(DAYS.index(day) for day in schedule.days) if schedule.days else None
        self.hours: tuple[int, int] | None = None
        if schedule.hours:
            start, end = schedule.hours.split("-")
            self.hours = (_minutes(start), _minutes(end))
        self.night = schedule.night
        self.calendar = frozenset(calendars[schedule.calendar]) if schedule.calendar else None
        self.not_calendar = (
            frozenset(calendars[schedule.not_calendar]) if schedule.not_calendar else None
        )

    def armed(self, seconds: float) -> bool:
        """Tell whether the schedule holds at a moment."""
        local = datetime.fromtimestamp(seconds, self.zone)
        day = local.date()
        if self.hours is not None:
            now = local.hour * 60 + local.minute
            start, end = self.hours
            inside = start <= now < end if start <= end else (now >= start or now < end)
            if not inside:
                return False
            if start > end and now < end:  # a span past midnight belongs to the day it began
                day -= timedelta(days=1)
        if self.days is not None and day.weekday() not in self.days:
            return False
        if self.calendar is not None and day not in self.calendar:
            return False
        if self.not_calendar is not None and day in self.not_calendar:
            return False
        return self.night is None or self.sun.is_night(seconds) == self.night


def utc_date(seconds: float) -> date:
    """Return the UTC date of a moment."""
    return datetime.fromtimestamp(seconds, UTC).date()
