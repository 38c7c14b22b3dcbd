"""Tests for entries, exits, top-ups and their idempotency keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.errors import Forbidden
from smartcity.domains.mobility.parking.payment import settlement
from smartcity.domains.mobility.parking.payment.model import (
    InsufficientBalance,
    Outcome,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from tests.domains.mobility.parking.payment.conftest import START, SYSTEM, minutes, tap

ENTRY, EXIT, TOPUP = TransactionKind.ENTRY, TransactionKind.EXIT, TransactionKind.TOPUP


def top_up(service: PaymentService, card: str, amount: int, counter: int = 900) -> None:
    tx = tap(TOPUP, card, START - minutes(60), counter, terminal="kiosk", amount=amount)
    [result] = service.submit(SYSTEM, [tx], online=True)
    assert result.outcome is Outcome.ACCEPTED


def assert_ledger_sound(service: PaymentService) -> None:
    check = service.ledger_check(SYSTEM)
    assert check["sum"] == 0
    assert check["unbalancedJournals"] == []
    assert check["cardMismatches"] == []


def test_entry_then_exit_charges_the_prepaid_card(service: PaymentService) -> None:
    top_up(service, "card-1", 10000)
    [entered] = service.submit(SYSTEM, [tap(ENTRY, "card-1", START, 1)], online=True)
    [left] = service.submit(SYSTEM, [tap(EXIT, "card-1", START + minutes(55), 2)], online=True)
    assert entered.outcome is Outcome.ACCEPTED
    assert left.session_id == entered.session_id
    assert (left.fee, left.paid, left.arrears, left.balance) == (2500, 2500, 0, 7500)
    assert service.card(SYSTEM, "card-1").balance == 7500
    assert_ledger_sound(service)


def test_duplicate_upload_returns_the_first_result_and_charges_once(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 10000)
    batch = [tap(ENTRY, "card-1", START, 1), tap(EXIT, "card-1", START + minutes(55), 2)]
    first = service.submit(SYSTEM, batch)
    again = service.submit(SYSTEM, [*batch, batch[1]])
    assert [r.outcome for r in again] == [Outcome.DUPLICATE] * 3
    assert again[1].fee == first[1].fee == 2500
    assert again[1].journal_id == first[1].journal_id
    assert service.card(SYSTEM, "card-1").balance == 7500
    assert_ledger_sound(service)


def test_exit_before_its_entry_waits_and_closes_when_the_entry_arrives(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 10000)
    [pending] = service.submit(SYSTEM, [tap(EXIT, "card-1", START + minutes(40), 7)])
    assert pending.outcome is Outcome.PENDING
    assert service.card(SYSTEM, "card-1").balance == 10000
    [entered] = service.submit(SYSTEM, [tap(ENTRY, "card-1", START, 6)])
    closed = service.result(SYSTEM, pending.key)
    assert closed.outcome is Outcome.ACCEPTED
    assert closed.session_id == entered.session_id
    assert closed.fee == 1500
    assert service.card(SYSTEM, "card-1").balance == 8500
    assert_ledger_sound(service)


def test_a_batch_in_any_order_is_applied_in_time_order(service: PaymentService) -> None:
    top_up(service, "card-1", 10000)
    batch = [tap(EXIT, "card-1", START + minutes(40), 2), tap(ENTRY, "card-1", START, 1)]
    left, entered = service.submit(SYSTEM, batch)
    assert left.outcome is Outcome.ACCEPTED
    assert left.session_id == entered.session_id


def test_online_exit_without_enough_stored_value_is_refused_and_stays_open(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 1000)
    service.submit(SYSTEM, [tap(ENTRY, "card-1", START, 1)], online=True)
    exit_tap = tap(EXIT, "card-1", START + minutes(55), 2)
    with pytest.raises(InsufficientBalance, match="2500 won"):
        service.submit(SYSTEM, [exit_tap], online=True)
    assert service.card(SYSTEM, "card-1").balance == 1000
    top_up(service, "card-1", 5000, counter=901)
    [left] = service.submit(SYSTEM, [exit_tap], online=True)
    assert (left.fee, left.balance) == (2500, 3500)
    assert_ledger_sound(service)


def test_offline_exit_without_enough_stored_value_leaves_arrears_paid_by_the_next_top_up(
    service: PaymentService,
) -> None:
    top_up(service, "card-1", 1000)
    batch = [tap(ENTRY, "card-1", START, 1), tap(EXIT, "card-1", START + minutes(55), 2)]
    _, left = service.submit(SYSTEM, batch)
    assert (left.fee, left.paid, left.arrears, left.balance) == (2500, 1000, 1500, 0)
    top_up(service, "card-1", 5000, counter=901)
    assert service.card(SYSTEM, "card-1").balance == 3500
    assert_ledger_sound(service)


def test_registered_discount_and_postpaid_plate_payment(service: PaymentService) -> None:
    top_up(service, "card-light", 10000)
    batch = [
        tap(ENTRY, "card-light", START, 1),
        tap(EXIT, "card-light", START + minutes(55), 2),
        tap(ENTRY, None, START, 3, plate="12가3456", terminal="camera-in"),
        tap(EXIT, None, START + minutes(55), 4, plate="12가3456", terminal="camera-out"),
    ]
    results = service.submit(SYSTEM, batch)
    assert results[1].fee == 1250
    assert (results[3].fee, results[3].paid, results[3].arrears) == (2500, 2500, 0)
    assert_ledger_sound(service)


def test_bad_items_are_refused_one_by_one(service: PaymentService) -> None:
    batch = [
        tap(ENTRY, "card-unknown", START, 1),
        tap(ENTRY, "card-1", START, 1, lot="lot-nowhere"),
        tap(TOPUP, "card-post", START, 2, terminal="kiosk", amount=1000),
        tap(ENTRY, "card-1", START, 3),
    ]
    results = service.submit(SYSTEM, batch)
    assert [r.outcome for r in results] == [Outcome.REFUSED] * 3 + [Outcome.ACCEPTED]
    assert "no card" in results[0].detail
    assert "not registered" in results[1].detail
    assert "postpaid" in results[2].detail
    # A refused key was not kept: once the card exists, the same upload is accepted.
    assert service.submit(SYSTEM, [batch[0]])[0].outcome is Outcome.REFUSED


def test_concurrent_duplicate_uploads_charge_once(service: PaymentService) -> None:
    top_up(service, "card-1", 100000)
    batch = []
    for visit in range(20):
        at = START + minutes(visit * 90)
        batch += [
            tap(ENTRY, "card-1", at, 2 * visit),
            tap(EXIT, "card-1", at + minutes(55), 2 * visit + 1),
        ]
    outcomes: list[list[Outcome]] = []
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            outcomes.append([r.outcome for r in service.submit(SYSTEM, batch)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    accepted = sum(row.count(Outcome.ACCEPTED) for row in outcomes)
    assert accepted == len(batch)
    assert service.card(SYSTEM, "card-1").balance == 100000 - 20 * 2500
    assert_ledger_sound(service)


def test_a_terminal_posts_only_for_its_granted_lots(
    service: PaymentService, terminal_for_changdong: Caller
) -> None:
    caller = terminal_for_changdong
    [ok, refused] = service.submit(
        caller,
        [tap(ENTRY, "card-1", START, 1), tap(ENTRY, "card-1", START, 2, lot="lot-arena")],
    )
    assert ok.outcome is Outcome.ACCEPTED
    assert refused.outcome is Outcome.REFUSED
    with pytest.raises(Forbidden):
        service.submit(caller, [tap(ENTRY, "card-1", START, 3, lot="lot-arena")], online=True)


@pytest.mark.parametrize("order", [(0, 3, 1, 2), (0, 3, 2, 1), (3, 0, 1, 2), (2, 3, 0, 1)])
def test_two_stays_uploaded_out_of_order_are_paired_right(
    service: PaymentService, order: tuple[int, ...]
) -> None:
    top_up(service, "card-1", 10000)
    stays = [
        tap(ENTRY, "card-1", START, 1, terminal="in"),
        tap(EXIT, "card-1", START + minutes(30), 1, terminal="out"),
        tap(ENTRY, "card-1", START + minutes(60), 2, terminal="in"),
        tap(EXIT, "card-1", START + minutes(115), 2, terminal="out"),
    ]
    for index in order:  # each upload on its own, as two gates' logs arriving separately
        service.submit(SYSTEM, [stays[index]])
    first, second = service.result(SYSTEM, stays[1].key), service.result(SYSTEM, stays[3].key)
    assert (first.outcome, first.fee) == (Outcome.ACCEPTED, 1000)
    assert (second.outcome, second.fee) == (Outcome.ACCEPTED, 2500)
    assert first.session_id == service.result(SYSTEM, stays[0].key).session_id
    assert second.session_id == service.result(SYSTEM, stays[2].key).session_id
    assert service.card(SYSTEM, "card-1").balance == 10000 - 3500
    day = settlement.settle(service, SYSTEM, "op-dobong", START.date()).figures
    assert (day.gross, day.charges, day.net) == (3500, 2, 3500)
    assert_ledger_sound(service)
