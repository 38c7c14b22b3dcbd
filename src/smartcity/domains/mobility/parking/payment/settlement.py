"""Daily settlement per lot operator (일일 정산), revenue figures and occupancy trends.

A settlement takes the operator's charge and refund journals of one Asia/Seoul business day
that no settlement has taken yet, and posts one journal moving their net from revenue to what
the platform owes the operator (payable). Running it again finds nothing new and posts nothing;
an offline batch that arrives later for a settled day is taken by the next run as a new
revision, so nothing is counted twice and nothing is lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from smartcity.auth.policy import Permission
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.payment import ledger
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.storage.sqlbase import Cursor

SETTLED_KINDS = ("charge", "refund", "reversal")
"""Journals a settlement takes (a reversal undoes a charge paired with the wrong exit)."""


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One operator's money of one business day, in won."""

    operator_id: str
    business_day: str
    gross: int = 0
    discounts: int = 0
    refunds: int = 0
    charges: int = 0

    @property
    def net(self) -> int:
        """Return what the operator earned: gross less discounts and refunds."""
        return self.gross - self.discounts - self.refunds

    def plus(self, other: DayFigures) -> DayFigures:
        """Return the sum of two figures of the same operator and day."""
        return DayFigures(
            self.operator_id,
            self.business_day,
            self.gross + other.gross,
            self.discounts + other.discounts,
            self.refunds + other.refunds,
            self.charges + other.charges,
        )

    def as_json(self) -> dict[str, Any]:
        """Return the figures as JSON."""
        return {
            "operatorId": self.operator_id,
            "businessDay": self.business_day,
            "gross": self.gross,
            "discounts": self.discounts,
            "refunds": self.refunds,
            "net": self.net,
            "charges": self.charges,
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    """The settlement of one operator's business day, over all its revisions."""

    figures: DayFigures
    revisions: int
    posted_now: bool
    """True when this run found unsettled journals and posted a new revision."""

    def as_json(self) -> dict[str, Any]:
        """Return the settlement as JSON."""
        return {**self.figures.as_json(), "revisions": self.revisions, "postedNow": self.posted_now}


def _figures(operator_id: str, day: str, rows: Any) -> DayFigures:
    gross = discounts = refunds = 0
    charges: set[str] = set()
    reversals: set[str] = set()
    for journal_id, kind, account, amount in rows:
        if account == ledger.revenue_account(operator_id):
            gross -= int(amount)
        elif account == ledger.discount_account(operator_id):
            discounts += int(amount)
        elif account == ledger.refund_account(operator_id):
            refunds += int(amount)
        if kind == "charge":
            charges.add(journal_id)
        elif kind == "reversal":
            reversals.add(journal_id)
    return DayFigures(operator_id, day, gross, discounts, refunds, len(charges) - len(reversals))


def settle(service: PaymentService, caller: Caller, operator_id: str, day: date) -> Settlement:
    """Settle an operator's business day (again): post what is new, return the totals."""
    service.grants.require_operator(caller, operator_id, Permission.MANAGE_PARKING_PAYMENTS)
    p, tenant, day_text = service.p, caller.tenant, day.isoformat()
    with service.store.writing() as cursor:
        if service.store.dialect.name == "postgresql":
            # Two runs of the same day must not both take the same journals.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"parking-settlement|{tenant}|{operator_id}|{day_text}"],
            )
        cursor.execute(
            "SELECT j.journal_id, j.kind, t.account, t.amount FROM parking_pay_journals j "
            "JOIN parking_pay_postings t ON t.tenant = j.tenant AND t.journal_id = j.journal_id "
            f"WHERE j.tenant = {p} AND j.operator_id = {p} AND j.business_day = {p} "
            f"AND j.kind IN ({p}, {p}, {p}) AND j.settlement_id IS NULL",
            [tenant, operator_id, day_text, *SETTLED_KINDS],
        )
        rows = cursor.fetchall()
        new = _figures(operator_id, day_text, rows)
        before, revisions = _settled(cursor, p, tenant, operator_id, day_text)
        if not rows:
            return Settlement(before, revisions, posted_now=False)
        settlement_id = uuid.uuid4().hex
        journal = ledger.Journal(
            "settlement",
            service.clock.now(),
            operator_id=operator_id,
            day=day_text,
        )
        postings = [
            (ledger.revenue_account(operator_id), new.gross),
            (ledger.discount_account(operator_id), -new.discounts),
            (ledger.refund_account(operator_id), -new.refunds),
            (ledger.payable_account(operator_id), -new.net),
        ]
        journal_id = ledger.post(cursor, p, tenant, journal, postings, service.clock.now())
        for journal_ids in _chunks(sorted({row[0] for row in rows})):
            marks = ", ".join([p] * len(journal_ids))
            cursor.execute(
                f"UPDATE parking_pay_journals SET settlement_id = {p} "
                f"WHERE tenant = {p} AND journal_id IN ({marks})",
                [settlement_id, tenant, *journal_ids],
            )
        cursor.execute(
            "INSERT INTO parking_pay_settlements (tenant, settlement_id, operator_id, "
            "business_day, revision, gross, discounts, refunds, net, charges, journal_id, "
            f"created_at) VALUES ({', '.join([p] * 12)})",
            [
                tenant,
                settlement_id,
                operator_id,
                day_text,
                revisions + 1,
                new.gross,
                new.discounts,
                new.refunds,
                new.net,
                new.charges,
                journal_id,
                isoformat(service.clock.now()),
            ],
        )
    return Settlement(before.plus(new), revisions + 1, posted_now=True)


def _settled(
    cursor: Cursor, p: str, tenant: str, operator_id: str, day: str
) -> tuple[DayFigures, int]:
    cursor.execute(
        "SELECT COALESCE(SUM(gross), 0), COALESCE(SUM(discounts), 0), "
        "COALESCE(SUM(refunds), 0), COALESCE(SUM(charges), 0), COUNT(*) "
        f"FROM parking_pay_settlements WHERE tenant = {p} AND operator_id = {p} "
        f"AND business_day = {p}",
        [tenant, operator_id, day],
    )
    gross, discounts, refunds, charges, revisions = cursor.fetchone()
    figures = DayFigures(operator_id, day, int(gross), int(discounts), int(refunds), int(charges))
    return figures, int(revisions)


def settle_day(service: PaymentService, caller: Caller, day: date) -> list[Settlement]:
    """Settle one business day for every operator the caller may manage that had journals."""
    allowed = service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    p = service.p
    with service.store.reading() as cursor:
        cursor.execute(
            "SELECT DISTINCT operator_id FROM parking_pay_journals "
            f"WHERE tenant = {p} AND business_day = {p} AND kind IN ({p}, {p}, {p}) "
            "ORDER BY operator_id",
            [caller.tenant, day.isoformat(), *SETTLED_KINDS],
        )
        operators = [str(row[0]) for row in cursor.fetchall()]
    return [
        settle(service, caller, operator_id, day)
        for operator_id in operators
        if allowed is None or operator_id in allowed
    ]


def settlements(
    service: PaymentService, caller: Caller, first: date, last: date
) -> list[Settlement]:
    """Return what was settled per operator and business day (all revisions), newest first."""
    if last < first or (last - first).days > 366:
        raise BadRequestData("ask for at most a year of settlements, first day before last")
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    p = service.p
    with service.store.reading() as cursor:
        cursor.execute(
            "SELECT operator_id, business_day, SUM(gross), SUM(discounts), SUM(refunds), "
            "SUM(charges), COUNT(*) FROM parking_pay_settlements "
            f"WHERE tenant = {p} AND business_day >= {p} AND business_day <= {p} "
            "GROUP BY operator_id, business_day ORDER BY business_day DESC, operator_id",
            [caller.tenant, first.isoformat(), last.isoformat()],
        )
        rows = cursor.fetchall()
    return [
        Settlement(
            DayFigures(str(op), str(day), int(gross), int(discounts), int(refunds), int(charges)),
            int(revisions),
            posted_now=False,
        )
        for op, day, gross, discounts, refunds, charges, revisions in rows
        if allowed is None or op in allowed
    ]


def revenue(service: PaymentService, caller: Caller, first: date, last: date) -> list[DayFigures]:
    """Return gross, discounts, refunds, net and charges per operator and business day."""
    if last < first or (last - first).days > 366:
        raise BadRequestData("ask for at most a year of revenue, first day before last")
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    p = service.p
    with service.store.reading() as cursor:
        cursor.execute(
            "SELECT j.operator_id, j.business_day, t.account, SUM(t.amount), "
            "COUNT(DISTINCT CASE WHEN j.kind = 'charge' THEN j.journal_id END) - "
            "COUNT(DISTINCT CASE WHEN j.kind = 'reversal' THEN j.journal_id END) "
            "FROM parking_pay_journals j JOIN parking_pay_postings t "
            "ON t.tenant = j.tenant AND t.journal_id = j.journal_id "
            f"WHERE j.tenant = {p} AND j.business_day >= {p} AND j.business_day <= {p} "
            f"AND j.kind IN ({p}, {p}, {p}) GROUP BY j.operator_id, j.business_day, t.account",
            [caller.tenant, first.isoformat(), last.isoformat(), *SETTLED_KINDS],
        )
        rows = cursor.fetchall()
    figures: dict[tuple[str, str], DayFigures] = {}
    for operator_id, day, account, amount, charges in rows:
        if allowed is not None and operator_id not in allowed:
            continue
        current = figures.get((operator_id, day), DayFigures(operator_id, day))
        gross = -int(amount) if account == ledger.revenue_account(operator_id) else 0
        discounts = int(amount) if account == ledger.discount_account(operator_id) else 0
        refunds = int(amount) if account == ledger.refund_account(operator_id) else 0
        count = int(charges) if account == ledger.revenue_account(operator_id) else 0
        figures[(operator_id, day)] = current.plus(
            DayFigures(operator_id, day, gross, discounts, refunds, count)
        )
    return [figures[key] for key in sorted(figures)]


def occupancy_trend(
    service: PaymentService, caller: Caller, lot_id: str, day: date
) -> list[dict[str, int]]:
    """Return, per hour of a KST day, entries, exits and cars inside at the hour's end."""
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    start = datetime.combine(day, time(0), KST)
    end = start + timedelta(days=1)
    p = service.p
    with service.store.reading() as cursor:
        cursor.execute(
            "SELECT operator_id, entry_at, exit_at FROM parking_pay_sessions "
            f"WHERE tenant = {p} AND lot_id = {p} AND entry_at < {p} "
            f"AND (exit_at IS NULL OR exit_at >= {p}) AND status <> 'void'",
            [caller.tenant, lot_id, isoformat(end), isoformat(start)],
        )
        rows = cursor.fetchall()
    hours = [{"hour": hour, "entries": 0, "exits": 0, "occupied": 0} for hour in range(24)]
    for operator_id, entry_at, exit_at in rows:
        if allowed is not None and operator_id not in allowed:
            continue
        entered = _parse(entry_at)
        left = _parse(exit_at) if exit_at else None
        if entered >= start:
            hours[int((entered - start) // timedelta(hours=1))]["entries"] += 1
        if left is not None and left < end:
            hours[int((left - start) // timedelta(hours=1))]["exits"] += 1
        for hour in hours:
            boundary = start + timedelta(hours=hour["hour"] + 1)
            if entered < boundary and (left is None or left >= boundary):
                hour["occupied"] += 1
    return hours


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
