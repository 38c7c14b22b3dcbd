"""Property test: any order of uploads, with duplicates, keeps the ledger sound on SQLite."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.auth.policy import AccessControl
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    Outcome,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import EXAMPLE_TARIFF, parking_fee
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.domains.mobility.parking.payment.conftest import START, SYSTEM

CARDS = ("card-a", "card-b", "card-c")

visits = st.lists(
    st.tuples(
        st.sampled_from(CARDS),
        st.integers(min_value=0, max_value=600),
        st.integers(min_value=1, max_value=3000),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(
    plan=visits,
    balance=st.integers(min_value=0, max_value=200).map(lambda n: n * 100),
    order=st.randoms(use_true_random=False),
    repeats=st.lists(st.integers(min_value=0, max_value=40), max_size=10),
    batch=st.integers(min_value=1, max_value=7),
)
def test_any_upload_order_with_duplicates_charges_each_stay_once(
    plan: list[tuple[str, int, int]],
    balance: int,
    order: object,
    repeats: list[int],
    batch: int,
) -> None:
    transactions: list[Transaction] = []
    free = dict.fromkeys(CARDS, START)
    counter = 0
    expected = 0
    for card, gap, stay in plan:
        entry = free[card] + timedelta(minutes=gap + 1)
        exit_at = entry + timedelta(minutes=stay)
        free[card] = exit_at
        for kind, at in ((TransactionKind.ENTRY, entry), (TransactionKind.EXIT, exit_at)):
            counter += 1
            transactions.append(Transaction(kind, "lot-1", "gate", counter, at, card))
        expected += parking_fee(EXAMPLE_TARIFF, entry, exit_at).total
    uploads = transactions + [transactions[i % len(transactions)] for i in repeats]
    order.shuffle(uploads)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteEntityStore(Path(folder) / "pay.db")
        try:
            clock = ManualClock(START)
            service = PaymentService(store, AccessControl(SqlAccountStore(store), clock), clock)
            service.register_lot(SYSTEM, "lot-1", "op-1", EXAMPLE_TARIFF)
            for card in CARDS:
                service.issue_card(SYSTEM, card, CardKind.PREPAID)
                if balance:
                    top = Transaction(
                        TransactionKind.TOPUP, "lot-1", "kiosk", 0, START, card, amount=balance
                    )
                    service.submit(SYSTEM, [top])
            outcomes = []
            for start in range(0, len(uploads), batch):
                results = service.submit(SYSTEM, uploads[start : start + batch])
                outcomes += [result.outcome for result in results]
            assert Outcome.REFUSED not in outcomes
            check = service.ledger_check(SYSTEM)
            assert (check["sum"], check["unbalancedJournals"], check["cardMismatches"]) == (
                0,
                [],
                [],
            )
            with store.reading() as cursor:
                cursor.execute(
                    "SELECT COUNT(*), COALESCE(SUM(fee), 0) FROM parking_pay_sessions "
                    "WHERE status IN ('paid', 'arrears')"
                )
                closed, charged = cursor.fetchone()
                cursor.execute("SELECT COUNT(*) FROM parking_pay_pending")
                (pending,) = cursor.fetchone()
            assert (closed, charged, pending) == (len(plan), expected, 0)
        finally:
            store.close()
