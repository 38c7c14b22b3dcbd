"""Compute a Korean parking fee (주차요금) from a tariff: integer won, itemized, in KST.

The rules, in the order they apply (docs/parking-payment.md says why):

1. A stay no longer than the grace minutes (회차 시간) is free.
2. The first `base_minutes` cost `base_fee`, whatever the time of day.
3. The rest of the stay is cut at every KST midnight and at every night-window edge; each piece
   is charged per started unit (units round up). A night piece is charged at the night unit fee
   but never more than the flat night fee (야간 정액); a night belongs to the day it begins on.
4. What each KST calendar day collects is capped at `daily_cap` (일 최대 요금).
5. One discount class applies, the best one the tariff offers for the vehicle (감면 중복 불가:
   Seoul public lots apply only the highest rate); the discount is rounded down to 10 won.

Every amount in a tariff is a multiple of 10 won, so every fee is too and the fee never
decreases when the stay grows, with or without a discount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smartcity.core.errors import BadRequestData

KST = timezone(timedelta(hours=9), "KST")
"""Korea Standard Time: UTC+9 all year (no daylight-saving time since 1988)."""

Won = Annotated[int, Field(strict=True, ge=0, multiple_of=10)]
Percent = Annotated[int, Field(strict=True, ge=0, le=100)]
Minutes = Annotated[int, Field(strict=True, ge=0)]


class DiscountClass(StrEnum):
    """A reason a vehicle or its driver pays less (주차요금 감면 대상)."""

    LIGHT_CAR = "light-car"
    """경형자동차 (engine under 1,000 cc)."""
    LOW_EMISSION = "low-emission"
    """저공해·환경친화적 자동차 (a low-emission or eco-friendly vehicle sticker)."""
    DISABLED = "disabled"
    """장애인 (disabled-person vehicle sticker, the person aboard)."""
    NATIONAL_MERIT = "national-merit"
    """국가유공자 (a person of national merit)."""
    MULTI_CHILD = "multi-child"
    """다둥이 가족 (multi-child family card)."""
    RESIDENT = "resident"
    """거주자 (a resident of the district the lot serves)."""


DISCOUNT_LABELS: dict[DiscountClass, tuple[str, str]] = {
    DiscountClass.LIGHT_CAR: ("경차 감면", "Light car discount"),
    DiscountClass.LOW_EMISSION: ("저공해차 감면", "Low-emission car discount"),
    DiscountClass.DISABLED: ("장애인 감면", "Disabled driver discount"),
    DiscountClass.NATIONAL_MERIT: ("국가유공자 감면", "National merit discount"),
    DiscountClass.MULTI_CHILD: ("다둥이 감면", "Multi-child family discount"),
    DiscountClass.RESIDENT: ("거주자 감면", "Resident discount"),
}


class NightRate(BaseModel):
    """A night window (야간) with its own unit fee and a flat fee per night."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    unit_fee: Won | None = None
    """Fee per unit inside the window; None charges the day unit fee."""
    flat_fee: Won | None = None
    """Most one night costs (야간 정액); None leaves the night uncapped."""

    @model_validator(mode="after")
    def _check_window(self) -> NightRate:
        if self.start == self.end:
            raise ValueError("a night window needs different start and end times")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("night window times are KST wall-clock times, without a zone")
        return self

    @property
    def length(self) -> timedelta:
        """Return how long one night lasts."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return timedelta(minutes=(end - start) % (24 * 60))


class Tariff(BaseModel):
    """A lot's parking tariff (요금표): integer won, minutes, discount rates in percent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_minutes: Annotated[int, Field(strict=True, ge=1)] = 30
    base_fee: Won = 1000
    unit_minutes: Annotated[int, Field(strict=True, ge=1)] = 10
    unit_fee: Won = 500
    daily_cap: Won | None = None
    grace_minutes: Minutes = 0
    night: NightRate | None = None
    discounts: dict[DiscountClass, Percent] = Field(default_factory=dict)

    def best_discount(self, classes: Iterable[DiscountClass]) -> tuple[DiscountClass, int] | None:
        """Return the one discount that applies: the highest rate this tariff offers."""
        wanted = set(classes)
        offered = [
            (self.discounts[c], c) for c in DiscountClass if c in wanted and c in self.discounts
        ]
        offered = [(rate, c) for rate, c in offered if rate > 0]
        if not offered:
            return None
        rate, best = max(offered, key=lambda item: item[0])
        return best, rate


EXAMPLE_TARIFF = Tariff(
    base_minutes=30,
    base_fee=1000,
    unit_minutes=10,
    unit_fee=500,
    daily_cap=20000,
    grace_minutes=10,
    night=NightRate(start=time(22, 0), end=time(8, 0), flat_fee=5000),
    discounts={
        DiscountClass.LIGHT_CAR: 50,
        DiscountClass.LOW_EMISSION: 50,
        DiscountClass.DISABLED: 80,
        DiscountClass.NATIONAL_MERIT: 80,
        DiscountClass.MULTI_CHILD: 50,
        DiscountClass.RESIDENT: 30,
    },
)
"""A Seoul public-lot style tariff: 30 minutes 1,000원, then 500원 per 10 minutes."""


class FeeLineKind(StrEnum):
    """What a line of a fee quote charges or takes off."""

    GRACE = "grace"
    BASE = "base"
    UNITS = "units"
    NIGHT = "night"
    CAP = "cap"
    DISCOUNT = "discount"


LINE_LABELS: dict[FeeLineKind, tuple[str, str]] = {
    FeeLineKind.GRACE: ("회차 (무료)", "Grace period (free)"),
    FeeLineKind.BASE: ("기본요금", "Base fee"),
    FeeLineKind.UNITS: ("추가요금", "Additional time"),
    FeeLineKind.NIGHT: ("야간요금", "Night rate"),
    FeeLineKind.CAP: ("일 최대요금 적용", "Daily cap applied"),
    FeeLineKind.DISCOUNT: ("감면", "Discount"),
}


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One itemized line: a charge (positive) or a reduction (negative), in won."""

    kind: FeeLineKind
    amount: int
    day: date | None = None
    quantity: int = 1
    discount: DiscountClass | None = None

    @property
    def label_ko(self) -> str:
        """Return the Korean label."""
        if self.discount is not None:
            return DISCOUNT_LABELS[self.discount][0]
        return LINE_LABELS[self.kind][0]

    @property
    def label_en(self) -> str:
        """Return the English label."""
        if self.discount is not None:
            return DISCOUNT_LABELS[self.discount][1]
        return LINE_LABELS[self.kind][1]


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """What a stay costs: the itemized lines, the gross before discount and the total due."""

    entry: datetime
    exit: datetime
    lines: tuple[FeeLine, ...]
    gross: int
    discount: int
    total: int
    applied_discount: DiscountClass | None = None
    days: tuple[date, ...] = field(default=())

    @property
    def minutes(self) -> int:
        """Return the length of the stay in started minutes."""
        return _ceil_div(self.exit - self.entry, timedelta(minutes=1))


def parking_fee(
    tariff: Tariff,
    entry: datetime,
    exit: datetime,
    classes: Iterable[DiscountClass] = (),
) -> FeeQuote:
    """Return the itemized fee for a stay from `entry` to `exit` (both zone-aware)."""
    start, end = _kst(entry, "entry"), _kst(exit, "exit")
    if end < start:
        raise BadRequestData(f"exit {exit.isoformat()} is before entry {entry.isoformat()}")
    days = tuple(_days_between(start.date(), end.date()))
    if end - start <= timedelta(minutes=tariff.grace_minutes):
        line = FeeLine(FeeLineKind.GRACE, 0, start.date())
        return FeeQuote(start, end, (line,), 0, 0, 0, None, days)
    charges: dict[tuple[date, FeeLineKind], list[int]] = {}
    base_end = min(start + timedelta(minutes=tariff.base_minutes), end)
    charges[(start.date(), FeeLineKind.BASE)] = [1, tariff.base_fee]
    cursor = base_end
    while cursor < end:
        cursor = _charge_piece(tariff, cursor, end, charges)
    lines, gross = _capped_lines(tariff, charges)
    discount_amount = 0
    best = tariff.best_discount(classes)
    applied: DiscountClass | None = None
    if best is not None and gross > 0:
        applied, rate = best
        discount_amount = gross * rate // 100 // 10 * 10
        lines.append(FeeLine(FeeLineKind.DISCOUNT, -discount_amount, None, rate, applied))
    total = gross - discount_amount
    return FeeQuote(start, end, tuple(lines), gross, discount_amount, total, applied, days)


def _charge_piece(
    tariff: Tariff,
    cursor: datetime,
    end: datetime,
    charges: dict[tuple[date, FeeLineKind], list[int]],
) -> datetime:
    """Charge the piece of the stay that begins at `cursor`; return where it ends."""
    unit = timedelta(minutes=tariff.unit_minutes)
    night = tariff.night
    window = _night_containing(night, cursor) if night is not None else None
    if night is not None and window is not None:
        _, night_end = window
        piece_end = min(night_end, end)
        units = _ceil_div(piece_end - cursor, unit)
        unit_fee = night.unit_fee if night.unit_fee is not None else tariff.unit_fee
        amount = units * unit_fee
        if night.flat_fee is not None:
            amount = min(amount, night.flat_fee)
        _add(charges, cursor.date(), FeeLineKind.NIGHT, units, amount)
        return piece_end
    midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), KST)
    piece_end = min(midnight, end)
    if night is not None:
        piece_end = min(piece_end, _next_night_start(night, cursor))
    units = _ceil_div(piece_end - cursor, unit)
    _add(charges, cursor.date(), FeeLineKind.UNITS, units, units * tariff.unit_fee)
    return piece_end


def _capped_lines(
    tariff: Tariff, charges: dict[tuple[date, FeeLineKind], list[int]]
) -> tuple[list[FeeLine], int]:
    """Return the lines day by day with the daily cap applied, and the gross they add to."""
    lines: list[FeeLine] = []
    gross = 0
    order = (FeeLineKind.BASE, FeeLineKind.UNITS, FeeLineKind.NIGHT)
    for day in sorted({day for day, _ in charges}):
        day_total = 0
        for kind in order:
            entry = charges.get((day, kind))
            if entry is None:
                continue
            quantity, amount = entry
            lines.append(FeeLine(kind, amount, day, quantity))
            day_total += amount
        if tariff.daily_cap is not None and day_total > tariff.daily_cap:
            lines.append(FeeLine(FeeLineKind.CAP, tariff.daily_cap - day_total, day))
            day_total = tariff.daily_cap
        gross += day_total
    return lines, gross


def _add(
    charges: dict[tuple[date, FeeLineKind], list[int]],
    day: date,
    kind: FeeLineKind,
    units: int,
    amount: int,
) -> None:
    """Add units and won to the line of `kind` on `day`."""
    entry = charges.setdefault((day, kind), [0, 0])
    entry[0] += units
    entry[1] += amount


def _night_containing(night: NightRate, moment: datetime) -> tuple[datetime, datetime] | None:
    """Return the night window (start, end) that `moment` falls in, if any."""
    for offset in (0, -1):
        start = datetime.combine(moment.date() + timedelta(days=offset), night.start, KST)
        if start <= moment < start + night.length:
            return start, start + night.length
    return None


def _next_night_start(night: NightRate, moment: datetime) -> datetime:
    """Return the first night start after `moment`."""
    start = datetime.combine(moment.date(), night.start, KST)
    return start if start > moment else start + timedelta(days=1)


def _ceil_div(length: timedelta, unit: timedelta) -> int:
    """Return how many started units `length` spans."""
    return -(-length // unit)


def _kst(moment: datetime, name: str) -> datetime:
    """Return `moment` in KST; refuse a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadRequestData(f"{name} time {moment.isoformat()} has no time zone")
    return moment.astimezone(KST)


def _days_between(first: date, last: date) -> Iterable[date]:
    """Yield every calendar day from `first` to `last` inclusive."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
