"""Weekly time windows in the schema.org openingHours grammar: "Mo-Fr 09:00-18:00,Sa 10:00-14:00".

Lots publish their opening hours this way (the Seoul open-data adapter writes them so), and the
same grammar says when a shared lot is open to the public and when resident-priority permits
apply. A day range wraps over the week ("Sa-Mo"); a span may end at 24:00 or after midnight
("22:00-06:00": into the next day); "PH" is a public holiday, which replaces the weekday's rules
on the dates the caller names as holidays. Times are local (Asia/Seoul for Changdong).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from smartcity.core.errors import BadRequestData

DAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
HOLIDAY: Final = "PH"
_RULE: Final = re.compile(
    r"^(?P<days>(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)(?:-(?:Mo|Tu|We|Th|Fr|Sa|Su))?"
    r"(?:,(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)(?:-(?:Mo|Tu|We|Th|Fr|Sa|Su))?)*)?"
    r"\s*(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)
MAX_TEXT: Final = 1000
SEOUL: Final = ZoneInfo("Asia/Seoul")


class HoursError(BadRequestData):
    """A time-window text does not follow the openingHours grammar."""

    title = "Invalid opening hours"


@dataclass(frozen=True, slots=True)
class Span:
    """Open from `start` to `end` minutes after midnight on some days (end may pass 1440)."""

    days: frozenset[str]
    """Weekday codes ("Mo" ...) and "PH" for public holidays."""
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """A set of weekly spans; empty means never open."""

    spans: tuple[Span, ...]
    text: str

    @property
    def always(self) -> bool:
        """Tell whether it is open every minute of every day."""
        covered = {d for s in self.spans if s.start == 0 and s.end >= 1440 for d in s.days}
        return covered >= set(DAYS)

    def _day_code(self, day: date, holidays: Collection[date]) -> str:
        if day in holidays and any(HOLIDAY in s.days for s in self.spans):
            return HOLIDAY
        return DAYS[day.weekday()]

    def intervals(
        self,
        start: datetime,
        end: datetime,
        holidays: Collection[date] = (),
        zone: ZoneInfo = SEOUL,
    ) -> Iterator[tuple[datetime, datetime]]:
        """Yield the open intervals that meet [start, end), clipped to it, in time order (local
        to `zone`, where the spans' clock times are)."""
        start, end = start.astimezone(zone), end.astimezone(zone)
        day = start.date() - timedelta(days=1)  # a span after midnight began the day before
        found: list[tuple[datetime, datetime]] = []
        while day <= end.date():
            code = self._day_code(day, holidays)
            midnight = datetime.combine(day, time(0), tzinfo=zone)
            for span in self.spans:
                if code not in span.days:
                    continue
                low = max(start, midnight + timedelta(minutes=span.start))
                high = min(end, midnight + timedelta(minutes=span.end))
                if low < high:
                    found.append((low, high))
            day += timedelta(days=1)
        yield from _merged(sorted(found))

    def is_open(
        self, at: datetime, holidays: Collection[date] = (), zone: ZoneInfo = SEOUL
    ) -> bool:
        """Tell whether `at` falls inside a span."""
        return any(True for _ in self.intervals(at, at + timedelta(minutes=1), holidays, zone))

    def covers(
        self,
        start: datetime,
        end: datetime,
        holidays: Collection[date] = (),
        zone: ZoneInfo = SEOUL,
    ) -> bool:
        """Tell whether every moment of [start, end) is inside the spans."""
        if end <= start:
            return False
        spans = self.intervals(start, end, holidays, zone)
        return any(low <= start and high >= end for low, high in spans)


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for low, high in intervals:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def parse_hours(text: str) -> WeeklyHours:
    """Parse "Mo-Fr 09:00-18:00,Sa 10:00-14:00,PH 00:00-24:00" (comma or semicolon between)."""
    if len(text) > MAX_TEXT:
        raise HoursError(f"opening hours longer than {MAX_TEXT} characters")
    spans: list[Span] = []
    for raw in _rules(text):
        match = _RULE.match(raw)
        if match is None:
            raise HoursError(
                f"{raw!r} is not a time window such as 'Mo-Fr 09:00-18:00' or 'Sa 10:00-14:00'"
            )
        start, end = _minutes(match["start"], raw), _minutes(match["end"], raw)
        if end <= start:
            end += 1440  # "22:00-06:00" ends the next morning
        if start >= 1440:
            raise HoursError(f"{raw!r}: a window starts before 24:00")
        days = _days(match["days"]) if match["days"] else frozenset(DAYS)
        spans.append(Span(days, start, end))
    return WeeklyHours(tuple(spans), text)


def _rules(text: str) -> list[str]:
    """Split the text into rules; a comma between day codes stays inside its rule."""
    rules: list[str] = []
    for chunk in re.split(r"\s*;\s*", text.strip()):
        if not chunk:
            continue
        current = ""
        for part in re.split(r"\s*,\s*", chunk):
            current = f"{current},{part}" if current and not _has_time(current) else part
            if _has_time(current):
                rules.append(current)
                current = ""
        if current:
            rules.append(current)
    if not rules:
        raise HoursError("opening hours are empty: give windows such as 'Mo-Fr 09:00-18:00'")
    return rules


def _has_time(rule: str) -> bool:
    return re.search(r"\d{2}:\d{2}-\d{2}:\d{2}$", rule) is not None


def _minutes(clock: str, rule: str) -> int:
    hours, minutes = int(clock[:2]), int(clock[3:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise HoursError(f"{rule!r}: {clock} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _days(text: str) -> frozenset[str]:
    days: set[str] = set()
    for part in text.split(","):
        if part == HOLIDAY:
            days.add(HOLIDAY)
            continue
        first, _, last = part.partition("-")
        low = DAYS.index(first)
        high = DAYS.index(last) if last else low
        index = low
        while True:
            days.add(DAYS[index])
            if index == high:
                break
            index = (index + 1) % 7
    return frozenset(days)
