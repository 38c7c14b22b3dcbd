"""Tests for settlement, refunds, reconciliation, receipts and postpaid bills."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.core.errors import Conflict, Forbidden
from smartcity.domains.mobility.parking.payment import operations, receipts, settlement
from smartcity.domains.mobility.parking.payment.model import (
    Outcome,
    SessionStatus,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from tests.domains.mobility.parking.payment.conftest import START, SYSTEM, minutes, tap
from tests.domains.mobility.parking.payment.test_service import assert_ledger_sound, top_up

ENTRY, EXIT = TransactionKind.ENTRY, TransactionKind.EXIT
DAY = START.date()


def park(
    service: PaymentService, card: str, counter: int, stay: int = 55, lot: str = "lot-changdong"
) -> str:
    """Park a car for `stay` minutes; return the session id."""
    batch = [
        tap(ENTRY, card, START, counter, lot=lot),
        tap(EXIT, card, START + minutes(stay), counter + 1, lot=lot),
    ]
    _, left = service.submit(SYSTEM, batch)
    assert left.outcome is Outcome.ACCEPTED
    assert left.session_id is not None
    return left.session_id


def test_settlement_counts_each_journal_once_and_takes_late_uploads_as_a_revision(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 50000)
    top_up(service, "card-light", 50000, counter=901)
    park(service, "card-1", 1)
    park(service, "card-light", 3)
    first = settlement.settle(service, SYSTEM, "op-dobong", DAY)
    assert first.figures.as_json() | {} == {
        "operatorId": "op-dobong",
        "businessDay": DAY.isoformat(),
        "gross": 5000,
        "discounts": 1250,
        "refunds": 0,
        "net": 3750,
        "charges": 2,
    }
    again = settlement.settle(service, SYSTEM, "op-dobong", DAY)
    assert (again.posted_now, again.revisions, again.figures) == (False, 1, first.figures)
    park(service, "card-1", 5)  # an offline batch of the same day, uploaded late
    late = settlement.settle(service, SYSTEM, "op-dobong", DAY)
    assert (late.posted_now, late.revisions, late.figures.gross) == (True, 2, 7500)
    assert [s.figures.operator_id for s in settlement.settle_day(service, SYSTEM, DAY)] == [
        "op-dobong"
    ]
    assert_ledger_sound(service)


def test_refunds_reverse_once_per_request_and_never_exceed_the_fee(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 10000)
    session_id = park(service, "card-1", 1)
    partial = operations.refund(service, SYSTEM, session_id, 1000, "r-1")
    assert (partial.amount, partial.to_card) == (1000, 1000)
    assert operations.refund(service, SYSTEM, session_id, 1000, "r-1").duplicate
    assert service.card(SYSTEM, "card-1").balance == 7500 + 1000
    with pytest.raises(Conflict, match="only 1500"):
        operations.refund(service, SYSTEM, session_id, 2000, "r-2")
    rest = operations.refund(service, SYSTEM, session_id, None, "r-3")
    assert rest.amount == 1500
    day = settlement.settle(service, SYSTEM, "op-dobong", DAY)
    assert (day.figures.gross, day.figures.refunds, day.figures.net) == (2500, 2500, 0)
    assert_ledger_sound(service)


def test_a_refund_first_writes_off_what_is_still_owed(service: PaymentService) -> None:
    top_up(service, "card-1", 1000)
    session_id = park(service, "card-1", 1)  # 2,500 due: 1,000 paid, 1,500 arrears
    done = operations.refund(service, SYSTEM, session_id, 2000, "r-1")
    assert (done.to_arrears, done.to_card) == (1500, 500)
    assert service.card(SYSTEM, "card-1").balance == 500
    assert_ledger_sound(service)


def test_reconciliation_flags_old_open_sessions_for_an_operator(
    service: PaymentService, clock: ManualClock
) -> None:
    top_up(service, "card-1", 50000)
    [entered] = service.submit(SYSTEM, [tap(ENTRY, "card-1", START, 1)])
    service.submit(SYSTEM, [tap(EXIT, "card-post", START, 2, lot="lot-arena")])
    clock.set(START + timedelta(hours=30))
    report = operations.reconcile(service, SYSTEM, timedelta(hours=24))
    assert report.flagged_now == 1
    assert [s.session_id for s in report.flagged] == [entered.session_id]
    assert [o["cardId"] for o in report.orphan_exits] == ["card-post"]
    assert operations.reconcile(service, SYSTEM, timedelta(hours=24)).flagged_now == 0
    assert entered.session_id is not None
    closed = operations.close_flagged(service, SYSTEM, entered.session_id)
    # Two KST days touched, each capped at 20,000.
    assert (closed.status, closed.fee) == (SessionStatus.PAID, 40000)
    with pytest.raises(Conflict):
        operations.void_session(service, SYSTEM, entered.session_id)
    assert_ledger_sound(service)


def test_void_closes_a_flagged_session_without_charge(service: PaymentService) -> None:
    [entered] = service.submit(SYSTEM, [tap(ENTRY, "card-1", START, 1)])
    assert entered.session_id is not None
    voided = operations.void_session(service, SYSTEM, entered.session_id)
    assert (voided.status, voided.fee) == (SessionStatus.VOID, 0)


def test_receipt_is_itemized_in_korean_and_english(service: PaymentService) -> None:
    top_up(service, "card-light", 10000)
    session_id = park(service, "card-light", 1)
    body = receipts.receipt(service, SYSTEM, session_id)
    assert [line["kind"] for line in body["lines"]] == ["base", "units", "discount"]
    assert sum(line["amount"] for line in body["lines"]) == body["total"] == 1250
    assert body["card"] == "******ight"
    text = receipts.render_receipt(body)
    assert "주차요금 영수증 Parking receipt" in text
    assert "경차 감면 Light car discount" in text
    assert "1,250원" in text


def test_postpaid_statement_and_payment(service: PaymentService) -> None:
    batch = [
        tap(ENTRY, None, START, 1, plate="12가3456"),
        tap(EXIT, None, START + minutes(55), 2, plate="12가3456"),
    ]
    service.submit(SYSTEM, batch)
    bill = receipts.postpaid_statement(service, SYSTEM, "card-post", DAY, DAY)
    assert (bill["charged"], bill["owed"]) == (2500, 2500)
    paid = receipts.record_postpaid_payment(service, SYSTEM, "card-post", 2500, "bank-1")
    assert paid["owed"] == 0
    assert receipts.record_postpaid_payment(service, SYSTEM, "card-post", 2500, "bank-1")[
        "duplicate"
    ]
    assert_ledger_sound(service)


def test_an_operator_sees_and_settles_only_its_own_lots(
    service: PaymentService, dobong_operator: Caller
) -> None:
    top_up(service, "card-1", 50000)
    mine = park(service, "card-1", 1)
    theirs = park(service, "card-1", 3, lot="lot-arena")
    rows = settlement.revenue(service, dobong_operator, DAY, DAY)
    assert [row.operator_id for row in rows] == ["op-dobong"]
    assert receipts.receipt(service, dobong_operator, mine)["total"] == 2500
    with pytest.raises(Forbidden):
        receipts.receipt(service, dobong_operator, theirs)
    with pytest.raises(Forbidden):
        settlement.settle(service, dobong_operator, "op-arena", DAY)
    with pytest.raises(Forbidden):
        operations.refund(service, dobong_operator, theirs, None, "r-1")
    assert [
        s.figures.operator_id for s in settlement.settle_day(service, dobong_operator, DAY)
    ] == ["op-dobong"]
    with pytest.raises(Forbidden):
        service.submit(dobong_operator, [tap(ENTRY, "card-1", START, 9)])


def test_occupancy_trend_counts_cars_per_hour(service: PaymentService) -> None:
    top_up(service, "card-1", 50000)
    park(service, "card-1", 1, stay=90)
    hours = settlement.occupancy_trend(service, SYSTEM, "lot-changdong", DAY)
    assert hours[9] == {"hour": 9, "entries": 1, "exits": 0, "occupied": 1}
    assert hours[10] == {"hour": 10, "entries": 0, "exits": 1, "occupied": 0}
