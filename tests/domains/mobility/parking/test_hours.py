"""Weekly time windows in the openingHours grammar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.domains.mobility.parking.hours import DAYS, HoursError, parse_hours
from smartcity.domains.mobility.parking.tariff import KST

FRIDAY = datetime(2026, 11, 27, tzinfo=KST)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a KST moment `day` days after Friday 27 Nov 2026."""
    return FRIDAY + timedelta(days=day, hours=hour, minutes=minute)


def test_weekday_ranges_and_single_days() -> None:
    hours = parse_hours("Mo-Fr 09:00-18:00,Sa 10:00-14:00")
    assert hours.is_open(at(0, 9))
    assert not hours.is_open(at(0, 18))
    assert hours.is_open(at(1, 13, 59))
    assert not hours.is_open(at(2, 12))  # Sunday
    assert hours.covers(at(0, 9), at(0, 18))
    assert not hours.covers(at(0, 17), at(0, 19))


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    hours = parse_hours("Fr 22:00-06:00")
    assert hours.is_open(at(0, 23))
    assert hours.is_open(at(1, 5, 59))  # Saturday morning, still Friday's night
    assert not hours.is_open(at(1, 22, 30))
    assert hours.covers(at(0, 22), at(1, 6))


def test_ranges_wrap_over_the_week_and_days_list_with_commas() -> None:
    assert parse_hours("Sa-Mo 08:00-20:00").is_open(at(3, 12))  # Monday
    hours = parse_hours("Tu,Th 07:00-09:00; Sa-Su 00:00-24:00")
    assert hours.is_open(at(6, 8))  # Thursday
    assert hours.is_open(at(2, 23, 59))
    assert not hours.is_open(at(5, 8))  # Wednesday
    assert parse_hours("Mo-Su 00:00-24:00").always
    assert not parse_hours("Mo-Sa 00:00-24:00").always


def test_public_holidays_replace_the_weekday() -> None:
    hours = parse_hours("Mo-Fr 09:00-18:00,PH 10:00-12:00")
    holiday = {date(2026, 11, 27)}
    assert not hours.is_open(at(0, 9), holiday)
    assert hours.is_open(at(0, 11), holiday)
    assert hours.is_open(at(0, 9))


def test_intervals_are_merged_and_clipped() -> None:
    hours = parse_hours("Mo-Su 08:00-12:00,Mo-Su 11:00-14:00")
    assert list(hours.intervals(at(0, 9), at(0, 20))) == [(at(0, 9), at(0, 14))]


@pytest.mark.parametrize(
    "text",
    ["", "Mo-Fr", "Mo-Fr 9:00-18:00", "Xx 09:00-10:00", "Mo 25:00-26:00", "Mo 09:60-10:00",
     "Mo 24:00-24:30", "x" * 1001],
)  # fmt: skip
def test_texts_that_are_not_hours_are_refused(text: str) -> None:
    with pytest.raises(HoursError):
        parse_hours(text)


clock = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}")
day_range = st.tuples(st.sampled_from(DAYS), st.sampled_from(DAYS)).map(lambda d: f"{d[0]}-{d[1]}")
rule = st.tuples(day_range, clock, clock).map(lambda r: f"{r[0]} {r[1]}-{r[2]}")


@given(st.lists(rule, min_size=1, max_size=4), st.integers(0, 7 * 24 * 60))
def test_any_well_formed_text_parses_and_answers(rules: list[str], minute: int) -> None:
    hours = parse_hours(",".join(rules))
    moment = FRIDAY + timedelta(minutes=minute)
    open_now = hours.is_open(moment)
    assert open_now == any(True for _ in hours.intervals(moment, moment + timedelta(minutes=1)))
    if open_now:
        assert hours.covers(moment, moment + timedelta(minutes=1))


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        hours = parse_hours(text)
    except HoursError as error:
        problem = error.detail
    else:
        problem = "" if hours.spans else "parsed to nothing"
    assert problem != "parsed to nothing"


def test_clock_times_are_local_to_the_district() -> None:
    office = parse_hours("Mo-Fr 09:00-18:00")
    assert office.is_open(datetime(2026, 11, 27, 0, 30, tzinfo=UTC))  # 09:30 in Seoul
    assert not office.is_open(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))  # 19:00 in Seoul
    assert office.is_open(datetime(2026, 11, 27, 10, 0, tzinfo=UTC), zone=ZoneInfo("Europe/Paris"))
