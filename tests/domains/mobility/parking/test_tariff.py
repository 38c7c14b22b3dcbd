"""Tests for the parking tariff and the fee it computes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.tariff import (
    EXAMPLE_TARIFF,
    KST,
    DiscountClass,
    FeeLineKind,
    NightRate,
    Tariff,
    parking_fee,
)

DAY = Tariff(base_minutes=30, base_fee=1000, unit_minutes=10, unit_fee=500)


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """Return a KST moment on 2026-03-`day`."""
    return datetime(2026, 3, day, hour, minute, tzinfo=KST)


def test_base_period_costs_the_base_fee() -> None:
    quote = parking_fee(DAY, at(10), at(10, 30))
    assert quote.total == 1000
    assert [line.kind for line in quote.lines] == [FeeLineKind.BASE]


def test_additional_units_round_up() -> None:
    quote = parking_fee(DAY, at(10), at(10, 41))
    units = [line for line in quote.lines if line.kind is FeeLineKind.UNITS]
    assert units[0].quantity == 2
    assert quote.total == 1000 + 2 * 500


def test_grace_minutes_are_free_and_then_the_whole_stay_counts() -> None:
    tariff = DAY.model_copy(update={"grace_minutes": 10})
    assert parking_fee(tariff, at(10), at(10, 10)).total == 0
    assert parking_fee(tariff, at(10), at(10, 11)).total == 1000


def test_daily_cap_applies_per_kst_calendar_day() -> None:
    tariff = DAY.model_copy(update={"daily_cap": 10000})
    quote = parking_fee(tariff, at(9), at(9, day=3))
    caps = [line for line in quote.lines if line.kind is FeeLineKind.CAP]
    assert [line.day for line in caps] == [at(9).date(), at(0, day=3).date()]
    # Day one: capped at 10,000; day two 00:00-09:00 = 54 units = 27,000, capped at 10,000.
    assert quote.total == 20000


def test_midnight_is_the_day_boundary_in_kst_not_utc() -> None:
    tariff = DAY.model_copy(update={"daily_cap": 3000})
    # 22:00-02:00 KST is 13:00-17:00 UTC: one UTC day, two KST days, each capped.
    entry = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    quote = parking_fee(tariff, entry, entry + timedelta(hours=4))
    assert quote.days == (at(0).date(), at(0, day=3).date())
    assert quote.total == 3000 + 3000


def test_night_flat_fee_caps_a_night() -> None:
    tariff = DAY.model_copy(update={"night": NightRate(start=time(22), end=time(8), flat_fee=5000)})
    quote = parking_fee(tariff, at(21, 30), at(9, day=3))
    kinds = [(line.kind, line.amount) for line in quote.lines]
    assert (FeeLineKind.NIGHT, 5000) in kinds
    # 21:30-22:00 base; 22:00-08:00 night flat 5,000 (belongs to day 2); 08:00-09:00 = 6 units.
    assert quote.total == 1000 + 5000 + 3000


def test_short_night_costs_units_below_the_flat_fee() -> None:
    tariff = DAY.model_copy(
        update={"night": NightRate(start=time(22), end=time(8), unit_fee=200, flat_fee=5000)}
    )
    quote = parking_fee(tariff, at(21, 30), at(22, 25))
    assert quote.total == 1000 + 3 * 200


def test_best_single_discount_applies_rounded_down_to_ten_won() -> None:
    tariff = DAY.model_copy(
        update={
            "discounts": {
                DiscountClass.LIGHT_CAR: 50,
                DiscountClass.DISABLED: 80,
                DiscountClass.RESIDENT: 33,
            }
        }
    )
    quote = parking_fee(tariff, at(10), at(11), [DiscountClass.LIGHT_CAR, DiscountClass.DISABLED])
    assert quote.gross == 2500
    assert quote.applied_discount is DiscountClass.DISABLED
    assert quote.discount == 2000
    assert quote.total == 500
    resident = parking_fee(tariff, at(10), at(11), [DiscountClass.RESIDENT])
    assert resident.discount == 820  # 33% of 2,500 = 825, rounded down to 820
    assert resident.lines[-1].label_ko == "거주자 감면"


def test_a_class_the_tariff_does_not_offer_changes_nothing() -> None:
    quote = parking_fee(DAY, at(10), at(11), [DiscountClass.LIGHT_CAR])
    assert quote.discount == 0
    assert quote.applied_discount is None


def test_naive_or_reversed_times_are_refused() -> None:
    with pytest.raises(BadRequestData):
        parking_fee(DAY, datetime(2026, 3, 2, 10), at(11))
    with pytest.raises(BadRequestData, match="before entry"):
        parking_fee(DAY, at(11), at(10))


def test_tariff_refuses_float_and_odd_won() -> None:
    with pytest.raises(ValidationError):
        Tariff.model_validate({"base_fee": 1000.0})
    with pytest.raises(ValidationError):
        Tariff(unit_fee=505)
    with pytest.raises(ValidationError):
        NightRate(start=time(22), end=time(22))


def test_example_tariff_round_trips_through_json() -> None:
    again = Tariff.model_validate_json(EXAMPLE_TARIFF.model_dump_json())
    assert again == EXAMPLE_TARIFF


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(KST)
)
stays = st.integers(min_value=0, max_value=4 * 24 * 60 * 60)
class_sets = st.sets(st.sampled_from(list(DiscountClass)))


@settings(max_examples=300, deadline=None)
@given(entry=moments, first=stays, second=stays, classes=class_sets)
def test_fee_is_monotone_in_duration(
    entry: datetime, first: int, second: int, classes: set[DiscountClass]
) -> None:
    short, long = sorted((first, second))
    a = parking_fee(EXAMPLE_TARIFF, entry, entry + timedelta(seconds=short), classes)
    b = parking_fee(EXAMPLE_TARIFF, entry, entry + timedelta(seconds=long), classes)
    assert a.total <= b.total
    assert a.gross <= b.gross


@settings(max_examples=300, deadline=None)
@given(entry=moments, seconds=stays, classes=class_sets)
def test_fee_is_integer_capped_and_discount_only_lowers_it(
    entry: datetime, seconds: int, classes: set[DiscountClass]
) -> None:
    exit = entry + timedelta(seconds=seconds)
    plain = parking_fee(EXAMPLE_TARIFF, entry, exit)
    quote = parking_fee(EXAMPLE_TARIFF, entry, exit, classes)
    assert EXAMPLE_TARIFF.daily_cap is not None
    assert 0 <= quote.total <= plain.total <= EXAMPLE_TARIFF.daily_cap * len(quote.days)
    assert all(type(line.amount) is int for line in quote.lines)
    assert sum(line.amount for line in quote.lines) == quote.total
    assert quote.total % 10 == 0
